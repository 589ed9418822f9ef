"""Shared W&B plumbing: mode, init, tags, config scrubbing, tables (private)."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import netrc
import os
import re
import time
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import polars as pl

from fle_core.tracking.offline import _log_records
from fle_core.workspace import mask_url

log = logging.getLogger(__name__)

DEFAULT_PROJECT = "fle-eval"
MAX_TAG_LEN = 64  # W&B rejects longer tags
_SECRET_KEY = re.compile(r"pass|secret|token|api[_-]?key|credential|auth", re.IGNORECASE)


# ---------------------------------------------------------------------------
# Mode, settings, safety helpers
# ---------------------------------------------------------------------------


def has_api_key() -> bool:
    """True when W&B could authenticate: ``WANDB_API_KEY`` or a netrc login for its host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or ""
    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    try:
        return bool(netrc.netrc(path).authenticators(host))
    except (OSError, netrc.NetrcParseError):
        return False


WandbMode = Literal["online", "offline", "disabled", "shared"]


def resolve_mode(mode: str | None = None) -> WandbMode:
    """``mode`` if given, else ``$WANDB_MODE``, else online with a key, offline without."""
    chosen = mode or os.environ.get("WANDB_MODE")
    if chosen:
        return cast(WandbMode, chosen)  # wandb.init validates it (a bad value becomes a warning)
    return "online" if has_api_key() else "offline"


def _settings():
    import wandb

    timeout = float(os.environ.get("FLE_WANDB_INIT_TIMEOUT", "60"))
    return wandb.Settings(
        console="off",
        save_code=False,
        disable_git=True,
        x_disable_meta=True,
        x_disable_stats=True,
        x_disable_machine_info=True,
        silent=True,
        init_timeout=timeout,
    )


def safe_config(value: Any) -> Any:
    """A JSON-friendly copy of ``value`` with URL passwords and secret-looking keys masked."""
    if isinstance(value, Mapping):
        return {str(k): ("***" if _SECRET_KEY.search(str(k)) else safe_config(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [safe_config(v) for v in value]
    if isinstance(value, str):  # only URLs with credentials are rewritten
        return mask_url(value) if "://" in value and "@" in value else value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


def _tags(*groups: Iterable[str] | None) -> list[str]:
    """De-duplicated tags, each cut to W&B's 64-character limit (full values are in config)."""
    out: list[str] = []
    for group in groups:
        for tag in group or ():
            tag = str(tag)[:MAX_TAG_LEN]
            if tag and tag not in out:
                out.append(tag)
    return out


def _init(
    *,
    project: str | None,
    name: str | None,
    tags: list[str],
    config: dict,
    mode: str | None,
    wandb_dir: str | os.PathLike | None,
    group: str | None = None,
    job_type: str | None = None,
    entity: str | None = None,
    resume: bool | str | None = None,
):
    """``wandb.init`` with our settings; raises (callers catch) on any failure."""
    import wandb

    kwargs: dict[str, Any] = {}
    if entity:
        kwargs["entity"] = entity
    if resume:
        kwargs["resume"] = "allow" if resume is True else resume
    if wandb_dir is not None:
        Path(wandb_dir).mkdir(parents=True, exist_ok=True)
        kwargs["dir"] = str(wandb_dir)
    return wandb.init(
        project=project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
        name=name,
        tags=tags,
        config=config,
        mode=resolve_mode(mode),
        group=group,
        job_type=job_type,
        reinit="create_new",
        settings=_settings(),
        **kwargs,
    )


def _run_dir(run) -> str:
    sync_dir = getattr(run.settings, "sync_dir", None)
    return str(sync_dir) if sync_dir else str(Path(run.dir).parent)


def _warn(what: str, exc: BaseException) -> None:
    text = mask_url(str(exc)) if "://" in str(exc) else str(exc)
    log.warning("W&B %s failed (%s: %s); continuing without it", what, type(exc).__name__, text[:300])


class quietly(contextlib.ContextDecorator):
    """W&B's one rule: it never raises into the caller. An ``Exception`` inside the
    ``with`` block (or the decorated function, which then returns None) becomes one
    warning naming ``what``; W&B is then skipped and the work goes on."""

    def __init__(self, what: str):
        self.what = what

    def __enter__(self) -> quietly:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if not isinstance(exc, Exception):
            return False  # no error, or a KeyboardInterrupt / SystemExit: not ours to keep
        _warn(self.what, exc)
        return True


def _finish_quietly(run) -> None:
    """Finish, then wait (bounded) until the run file holds its exit record.

    wandb-core writes the ``.wandb`` file asynchronously: ``finish()`` can
    return before the last records are on disk. Waiting here means that when a
    logging call returns, its values are durable (and a runner may exit).
    """
    run_dir: str | None = None
    with quietly("finish"):
        where = _run_dir(run)
        run.finish()
        run_dir = where  # set only once finish() returned
    if run_dir is None:
        return
    deadline = time.monotonic() + float(os.environ.get("FLE_WANDB_FLUSH_TIMEOUT", "15"))
    while not _has_exit_record(run_dir):
        if time.monotonic() > deadline:
            log.warning("W&B run file in %s not flushed yet; it may be incomplete", run_dir)
            return
        time.sleep(0.05)


def _has_exit_record(run_dir: str) -> bool:
    from wandb.proto import wandb_internal_pb2 as pb

    try:
        files = list(Path(run_dir).glob("run-*.wandb"))
        if not files:
            return False
        for data in _log_records(files[0].read_bytes()):
            rec = pb.Record()
            rec.ParseFromString(data)
            if rec.WhichOneof("record_type") == "exit":
                return True
    except Exception:  # noqa: BLE001 - a run file still being written reads as "not yet"
        return False
    return False


def _cell(value: Any) -> Any:
    """A table cell W&B can serialize: lists → text, NaN/inf → None, dates → ISO."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def to_wandb_table(frame: pl.DataFrame):
    """A ``wandb.Table`` with the frame's columns and rows (cells made serializable)."""
    import wandb

    rows = [[_cell(v) for v in row] for row in frame.iter_rows()]
    return wandb.Table(columns=list(frame.columns), data=rows)


def _key(part: Any) -> str:
    """One segment of a metric key: ``/`` would start a new W&B section, so it becomes ``_``."""
    return str(part).replace("/", "_")
