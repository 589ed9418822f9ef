"""A new ``[sources.NAME]`` entry, checked on the server before it is written.

What someone types (in the app's "Add a log folder or database", or ``fle-core source
add``) is never trusted: the name is a plain identifier; a password is never accepted in
the text (it comes from an environment variable named in ``password_env``); a local path
must lie under a root the server allows (``[app] source_roots``, default: the workspace's
folder and FLE's ``.fle/inspect_logs`` in the current folder), symlinks resolved first; the
source must exist and be readable now; and it must not overlap a configured source.
The warehouse's identity rules are checked by ``warehouse.identity.add_source``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fle_core.errors import ConfigError
from fle_core.sources import configured, open_source
from fle_core.sources.base import Source
from fle_core.sources.log_store import LOG_SUFFIXES, is_remote
from fle_core.sources.programs_schema import DIALECTS
from fle_core.workspace import LOCAL_INSPECT_SOURCE, LOCAL_SOURCE, SourceSpec, Workspace, inspect_source

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def allowed_roots(ws: Workspace) -> list[Path]:
    """Folders under which a new source's path may lie (``[app] source_roots``; relative
    entries are relative to the workspace). Default: the workspace and ``./.fle/inspect_logs``."""
    roots = ws.section("app").get("source_roots")
    if roots is None:
        return [ws.root.resolve(), (Path.cwd() / ".fle" / "inspect_logs").resolve()]
    if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
        raise ConfigError(f"[app] source_roots in {ws.config_path} must be a list of folders")
    return [(ws.root / Path(r).expanduser()).resolve() for r in roots]


def checked_entry(
    ws: Workspace, name: str, where: str, password_env: str | None = None
) -> tuple[Source, dict]:
    """The source a new entry would be, and the entry (``ConfigError`` when it is refused)."""
    if ws.read_only:
        raise ConfigError("This workspace is read-only: sources cannot be added here")
    _check_name(ws, name)
    entry = _entry(ws, where.strip(), password_env)
    spec = _spec(ws, name, entry)
    source = open_source(spec)
    source.check_readable()
    for other_name, other in configured(ws).items():
        if other_name not in (LOCAL_SOURCE, LOCAL_INSPECT_SOURCE) and source.overlaps(other):
            raise ConfigError(
                f"{source.display} overlaps the configured source {other_name!r} ({other.display})",
                hint=f"use {other_name!r}: its trajectories would be counted twice",
            )
    return source, entry


def _check_name(ws: Workspace, name: str) -> None:
    if not _NAME.match(name or ""):
        raise ConfigError(
            f"{name!r} is not a usable source name",
            hint="a letter, then letters, digits, '-' or '_' (at most 63)",
        )
    if name in ws.sources():
        raise ConfigError(f"A source named {name!r} already exists", hint="pick another name")


def _entry(ws: Workspace, where: str, password_env: str | None) -> dict[str, Any]:
    if not where:
        raise ConfigError("Say where the source is: a folder, a log file, an s3:// URL or a database URL")
    if password_env is not None and not _ENV.match(password_env):
        raise ConfigError(
            f"{password_env!r} is not an environment variable name", hint="e.g. FLE_PROD_PASSWORD"
        )
    if "://" not in where:
        return _local_entry(ws, Path(where).expanduser())
    parts = urlsplit(where)
    if parts.password or any(k.lower() == "password" for k, _ in parse_qsl(parts.query)):
        raise ConfigError(
            "Never type a password here: it would be stored in config.toml",
            hint="put it in an environment variable and give that variable's name (password_env)",
        )
    scheme = parts.scheme.lower()
    if is_remote(where):
        return {"kind": "inspect", "path": where}
    if DIALECTS.get(scheme) == "sqlite":
        path = Path(where[len("sqlite:///") :]) if where.startswith("sqlite:///") else Path("?")
        _under_roots(ws, path if path.is_absolute() else ws.root / path)
        return {"url": where}
    if scheme in DIALECTS:
        return {"url": where, **({"password_env": password_env} if password_env else {})}
    raise ConfigError(
        f"Unsupported location {scheme}://…",
        hint="a folder or log file, s3:// (or gs://, az://), sqlite:///PATH or postgresql://…",
    )


def _local_entry(ws: Workspace, path: Path) -> dict[str, Any]:
    full = _under_roots(ws, path if path.is_absolute() else ws.root / path)
    if not full.exists():
        raise ConfigError(f"Nothing at {full}", hint="check the path")
    if not os.access(full, os.R_OK):
        raise ConfigError(f"{full} cannot be read by the user running fle-core")
    if full.is_file() and full.suffix in _SQLITE_SUFFIXES:
        return {"url": f"sqlite:///{full}"}
    if full.is_dir() or full.suffix in LOG_SUFFIXES:
        return {"kind": "inspect", "path": str(full)}
    raise ConfigError(
        f"{full} is neither a folder of Inspect logs, a log file, nor an SQLite database",
        hint=f"SQLite files end in {', '.join(_SQLITE_SUFFIXES)}; logs in .eval or .json",
    )


def _under_roots(ws: Workspace, path: Path) -> Path:
    """``path`` resolved (symlinks followed), if it lies under an allowed root."""
    full = path.resolve()
    roots = allowed_roots(ws)
    if not any(full == root or full.is_relative_to(root) for root in roots):
        raise ConfigError(
            f"{full} is outside the folders this server may read",
            hint="allowed: " + ", ".join(str(r) for r in roots) + " ([app] source_roots in config.toml)",
        )
    return full


def _spec(ws: Workspace, name: str, entry: dict[str, Any]) -> SourceSpec:
    if "path" in entry:
        return inspect_source(name, entry["path"], relative_to=ws.root)
    return SourceSpec(name, entry["url"], password_env=entry.get("password_env"), secrets=ws.secrets)
