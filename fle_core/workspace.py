"""The workspace: a folder holding the warehouse, the control store and config.

Resolution order for the folder: an explicit argument (``--workspace``), then
``$FLE_CORE_HOME``, then ``./.fle``. FLE itself writes its SQLite database to
``.fle/data.db``; when that file exists it is the default source ``local``, so
running the workbench next to FLE just works. FLE 0.4+ writes Inspect logs to
``.fle/inspect_logs``; when the workspace has that folder it is the source
``local_inspect`` (kind ``inspect``).

``config.toml`` (all keys optional)::

    default_source = "local"

    [sources.prod]
    url = "postgresql://eval@db.internal:5432/fle"   # no password here
    password_env = "FLE_PROD_PASSWORD"               # read from the environment
    # or: url_env = "FLE_PROD_URL"  (whole URL, secret included, from env)

    [sources.runs]
    kind = "inspect"                                 # a folder (or file) of Inspect logs
    path = "/data/fle/inspect_logs"                  # relative paths: to the workspace

    [sync]
    batch_rows = 50000
    copy_code = false          # also copy programs.code / programs.response

    [tasks.my_new_task_throughput]
    quota = 32

    [inspect]
    infrastructure_patterns = ["my cluster is down"]   # extra regexes: infrastructure failures

    [prices."openai/gpt-4o"]   # USD per million tokens, where a log records no cost
    input = 2.5
    output = 10.0

    [executors.fle]
    kind = "command"
    command = ["python", "-m", "fle.run", "--run-config", "{run_config}"]

    [wandb]
    project = "factorio-eval"

    [slurm]                    # runner pilots (fle-core runner --slurm N)
    partition = "eval"
    time = "4:00:00"

Secrets never live in ``config.toml``; they come from the environment or from
Streamlit secrets (passed in by the UI layer as ``secrets``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import tomli_w

from fle_core.errors import ConfigError
from fle_core.tasks import TaskRegistry

ENV_HOME = "FLE_CORE_HOME"
CONFIG_NAME = "config.toml"
LOCAL_SOURCE = "local"
LOCAL_INSPECT_SOURCE = "local_inspect"
INSPECT_LOG_SUFFIXES = (".eval", ".json")


@dataclass(frozen=True)
class SourceSpec:
    """A source as configured (or typed as ``--source``): a database URL, or the ``path`` of
    Inspect logs (a folder, one file, or an object-storage URL such as ``s3://bucket/logs``).

    ``url`` is secret-free; ``resolved_url()`` adds secrets. What kind of source this is,
    and what follows from that, is decided by ``fle_core.sources`` (one adapter per kind);
    ``adhoc`` marks a source given by location rather than by a configured name, whose
    ``name`` is then only a provisional label."""

    name: str
    url: str
    url_env: str | None = None
    password_env: str | None = None
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    path: str | None = None  # Inspect logs: a folder (searched recursively), one log file, or a URL
    adhoc: bool = False

    def scheme(self) -> str:
        """The URL scheme (``ConfigError`` for a malformed URL); ``""`` for a local path."""
        return split_url(self.resolved_url(), self.name).scheme

    def resolved_url(self) -> str:
        """The connectable URL, with any secret filled in. Never log this.

        A source of Inspect logs has no database URL: this is its path (or storage URL)."""
        if self.path is not None:
            return self.path
        url = self.url
        if self.url_env:
            url = self.secrets.get(self.url_env) or os.environ.get(self.url_env) or ""
            if not url:
                raise ConfigError(f"Source {self.name!r}: environment variable {self.url_env} is not set")
        if self.password_env:
            pw = self.secrets.get(self.password_env) or os.environ.get(self.password_env)
            if pw:
                url = _with_password(url, pw)
        return url

    def display_url(self) -> str:
        """The URL with any password masked, safe for the UI and logs."""
        if self.path is not None:
            return mask_url(self.path)
        try:
            return mask_url(self.resolved_url())
        except ConfigError:
            return f"${self.url_env} (not set)"


def split_url(url: str, name: str | None = None):
    """``urlsplit`` with a ``ConfigError`` (naming the source, never the URL, which may hold a
    secret) instead of a ``ValueError`` such as "Invalid IPv6 URL"."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parses the port, which raises for junk
    except ValueError as exc:
        raise ConfigError(
            f"{f'Source {name!r} has' if name else 'Found'} a malformed URL: {exc}",
            hint="check the brackets of an IPv6 host ([::1]) and the port",
        ) from None
    return parts


def mask_url(url: str) -> str:
    """Replace the password in a URL (and ``password=`` params) with ``***``.

    A malformed URL is shown as ``(malformed URL)``: it cannot be masked safely."""
    try:
        parts = split_url(url)
    except ConfigError:
        return "(malformed URL)"
    has_query_secret = "password=" in parts.query.lower()
    has_netloc_secret = "@" in parts.netloc and ":" in parts.netloc.rsplit("@", 1)[0]
    if not has_netloc_secret and not has_query_secret:
        return url  # nothing secret (e.g. sqlite:///x.db); keep it byte-for-byte
    netloc = parts.netloc
    if "@" in netloc:
        creds, host = netloc.rsplit("@", 1)
        if ":" in creds:
            creds = creds.split(":", 1)[0] + ":***"
        netloc = f"{creds}@{host}"
    query = (
        "&".join(
            "password=***" if kv.lower().startswith("password=") else kv for kv in parts.query.split("&")
        )
        if parts.query
        else ""
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _with_password(url: str, password: str) -> str:
    parts = split_url(url)
    if "@" not in parts.netloc:
        raise ConfigError("password_env needs a user in the URL, e.g. postgresql://user@host/db")
    creds, host = parts.netloc.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return urlunsplit(
        (parts.scheme, f"{user}:{quote(password, safe='')}@{host}", parts.path, parts.query, parts.fragment)
    )


def sqlite_url(path: Path | str) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def sqlite_path(url: str) -> Path:
    """``sqlite:///abs/path`` or ``sqlite:///rel/path`` (relative to cwd) → Path."""
    if not url.startswith("sqlite:///"):
        raise ConfigError(f"Not a sqlite URL: {url!r}")
    rest = url[len("sqlite:///") :]
    return (
        Path("/" + rest.lstrip("/")) if url.startswith("sqlite:////") or rest.startswith("/") else Path(rest)
    )


@dataclass
class Workspace:
    """A resolved workspace folder and its parsed config."""

    root: Path
    config: dict[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    read_only: bool = False  # create and change no file here (a viewer, a read-only mount)

    # ---- construction -------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike | None = None,
        *,
        create: bool = True,
        secrets: Mapping[str, str] | None = None,
        read_only: bool | None = None,
    ) -> Workspace:
        """Resolve and (unless read-only) create the folder.

        ``read_only=None`` means read-only exactly when the folder exists but
        cannot be written (a read-only mount); a read-only workspace creates no
        file or folder, and the stores it opens are opened read-only.
        """
        root = Path(path or os.environ.get(ENV_HOME) or ".fle").expanduser().resolve()
        if read_only is None:
            read_only = root.exists() and not os.access(root, os.W_OK)
        ws = cls(root, _load_config(root / CONFIG_NAME), dict(secrets or {}), bool(read_only))
        if create and not ws.read_only:
            ws.ensure_dirs()
        return ws

    def ensure_dirs(self) -> None:
        """Create the folder and its ``logs/`` (what a writer needs)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(exist_ok=True)

    # ---- well-known paths ----------------------------------------------
    @property
    def warehouse_path(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def warehouse_lock_path(self) -> Path:
        return self.root / "warehouse.lock"

    @property
    def control_path(self) -> Path:
        """The embedded (SQLite, WAL) sweep control store."""
        return self.root / "control.db"

    @property
    def local_source_path(self) -> Path:
        """FLE's default SQLite database; the simulate executor writes here too."""
        return self.root / "data.db"

    @property
    def inspect_logs_path(self) -> Path:
        """FLE's default Inspect log folder (``.fle/inspect_logs``): the ``local_inspect`` source."""
        return self.root / "inspect_logs"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    # ---- config sections ------------------------------------------------
    def sources(self) -> dict[str, SourceSpec]:
        """Configured sources, plus ``local`` (``data.db``) and ``local_inspect``
        (``inspect_logs/``) unless overridden."""
        out: dict[str, SourceSpec] = {
            LOCAL_SOURCE: SourceSpec(LOCAL_SOURCE, sqlite_url(self.local_source_path)),
            LOCAL_INSPECT_SOURCE: inspect_source(LOCAL_INSPECT_SOURCE, self.inspect_logs_path),
        }
        for name, spec in (self.config.get("sources") or {}).items():
            if isinstance(spec, Mapping) and spec.get("kind") == "inspect":
                if not spec.get("path"):
                    raise ConfigError(f'[sources.{name}] kind = "inspect" needs path = "FOLDER or FILE"')
                out[name] = inspect_source(name, str(spec["path"]), relative_to=self.root)
                continue
            if isinstance(spec, Mapping) and spec.get("kind") not in (None, "sqlite", "postgres"):
                raise ConfigError(
                    f"[sources.{name}] has an unknown kind {spec.get('kind')!r}",
                    hint='use kind = "inspect" with path = ..., or url = "sqlite:///..." / "postgresql://..."',
                )
            if not isinstance(spec, Mapping) or not (spec.get("url") or spec.get("url_env")):
                raise ConfigError(f"[sources.{name}] needs url or url_env")
            out[name] = SourceSpec(
                name, str(spec.get("url", "")), spec.get("url_env"), spec.get("password_env"), self.secrets
            )
        return out

    def source(self, name_or_url: str | None = None) -> SourceSpec:
        """A source by name, or an ad-hoc one from a URL; default: ``default_source``."""
        name_or_url = name_or_url or self.config.get("default_source") or LOCAL_SOURCE
        if "://" in name_or_url:
            return SourceSpec(mask_url(name_or_url), name_or_url, adhoc=True)
        sources = self.sources()
        if name_or_url not in sources and _looks_like_log_path(name_or_url):
            return replace(inspect_source(name_or_url, name_or_url), adhoc=True)
        if name_or_url not in sources:
            raise ConfigError(
                f"Unknown source {name_or_url!r}", hint=f"configured: {', '.join(sorted(sources))}"
            )
        return sources[name_or_url]

    def task_registry(self) -> TaskRegistry:
        return TaskRegistry.from_config(self.config.get("tasks"))

    def section(self, name: str) -> dict[str, Any]:
        value = self.config.get(name) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}] in {self.config_path} must be a table")
        return value

    def add_source_entry(self, name: str, entry: Mapping[str, Any]) -> None:
        """Add ``[sources.NAME]`` to ``config.toml``: re-read under a lock (so a concurrent
        edit is not lost) and written atomically. ``ConfigError`` if the name is taken."""
        import filelock

        with filelock.FileLock(str(self.config_path) + ".lock", timeout=30):
            self.config = _load_config(self.config_path)
            table = self.config.setdefault("sources", {})
            if name in table:
                raise ConfigError(f"A source named {name!r} already exists", hint="pick another name")
            table[name] = dict(entry)
            self.save_config()

    def save_config(self) -> None:
        """Write ``config.toml`` atomically (tmp + rename)."""
        tmp = self.config_path.with_suffix(".toml.tmp")
        tmp.write_text(tomli_w.dumps(self.config))
        tmp.replace(self.config_path)


def inspect_source(name: str, path: Path | str, relative_to: Path | None = None) -> SourceSpec:
    """A source of Inspect logs: a folder (recursive), one log file, or a storage URL
    (``s3://bucket/prefix``, kept as written). A relative path is taken relative to
    ``relative_to`` (the workspace, for config entries), else to the current folder."""
    text = str(path)
    if "://" in text:
        return SourceSpec(name, "", path=text)
    local = Path(text).expanduser()
    if relative_to is not None and not local.is_absolute():
        local = relative_to / local
    return SourceSpec(name, "", path=str(local.resolve()))


def _looks_like_log_path(text: str) -> bool:
    """``--source DIR`` / ``--source FILE.eval``: an existing folder or Inspect log file."""
    path = Path(text).expanduser()
    return path.is_dir() or (path.is_file() and path.suffix in INSPECT_LOG_SUFFIXES)


def _load_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
