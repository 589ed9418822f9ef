"""Permalinks for the app: a saved view is a page, its URL state and a data version.

The Share button stores the page's query parameters (filters *and* metric
settings such as k values or bootstrap reps) together with the warehouse data
version they were computed from, and hands back a short random id. Opening
``?view=ID`` restores those parameters and pins the analysis to that data
version (``as_of_sync``), so a colleague sees the same numbers even after more
data has been synced.

Views live in ``views.db`` in the workspace: a small SQLite file in WAL mode,
separate from the DuckDB warehouse so that saving a view never contends with a
running sync. Nothing here imports streamlit.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from fle_core.errors import ConfigError, ViewNotFound
from fle_core.workspace import Workspace

SCHEMA_VERSION = 1
VIEWS_DB = "views.db"
_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o/1/l: ids get read aloud
_ID_LEN = 10
_ID_RE = re.compile(rf"^[{_ID_ALPHABET}]{{{_ID_LEN}}}$")
_MAX_PARAMS_BYTES = 64_000

_DDL = """
CREATE TABLE IF NOT EXISTS views (
    id TEXT PRIMARY KEY,
    page TEXT NOT NULL,
    params_json TEXT NOT NULL,   -- {key: str | [str, ...]}, the page's query parameters
    data_version INTEGER NOT NULL,
    created_at TEXT NOT NULL,    -- ISO 8601, UTC
    schema_version INTEGER NOT NULL
)
"""

ParamValue = str | list[str]


@dataclass(frozen=True)
class SavedView:
    """One permalink. ``params`` are the page's query parameters, already serialized."""

    id: str
    page: str
    params: dict[str, ParamValue]
    data_version: int
    created_at: datetime


def _path(ws: Workspace):
    return ws.root / VIEWS_DB


@contextlib.contextmanager
def _connect(ws: Workspace) -> Iterator[sqlite3.Connection]:
    """Read-write (creates ``views.db``); only ``save_view`` needs it. Sharing is an explicit
    action, so it works in the app's read-only mode too, unless the folder cannot be written."""
    try:
        con = sqlite3.connect(_path(ws), timeout=10.0)
        con.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as exc:
        raise ConfigError(
            f"Cannot save a view in {ws.root}: {exc}",
            hint="the workspace folder must be writable to save shared views; "
            "share the page's URL instead (its query parameters hold the filters)",
        ) from None
    try:
        con.execute("PRAGMA busy_timeout=10000")
        con.execute(_DDL)
        yield con
        con.commit()
    finally:
        con.close()


@contextlib.contextmanager
def _read(ws: Workspace) -> Iterator[sqlite3.Connection]:
    """A connection that writes nothing: opening a view works on a read-only mount too
    (a WAL file without its ``-shm`` there opens as an immutable snapshot)."""
    uri = "file:" + quote(str(_path(ws).resolve()))
    try:
        con = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=10.0)
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        con = sqlite3.connect(uri + "?immutable=1", uri=True)
    try:
        con.execute("PRAGMA busy_timeout=10000")
        yield con
    finally:
        con.close()


def _new_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LEN))


def _clean_params(params: Mapping[str, object]) -> dict[str, ParamValue]:
    """Keep only str / list-of-str values; reject anything else loudly."""
    out: dict[str, ParamValue] = {}
    for key, value in params.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"View parameter names must be non-empty strings, got {key!r}")
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            out[key] = list(value)
        else:
            raise ConfigError(f"View parameter {key!r} must be a string or a list of strings")
    return out


def save_view(ws: Workspace, page: str, params: Mapping[str, object], data_version: int) -> str:
    """Store a view and return its new id (10 characters from a 32-letter alphabet)."""
    if not page:
        raise ConfigError("A saved view needs a page name")
    if int(data_version) < 0:
        raise ConfigError(f"Data version must be ≥ 0, got {data_version}")
    clean = _clean_params(params)
    payload = json.dumps(clean, sort_keys=True)
    if len(payload.encode()) > _MAX_PARAMS_BYTES:
        raise ConfigError(
            "This view has too many parameters to save", hint="narrow the selection before sharing"
        )
    created = datetime.now(UTC).isoformat(timespec="seconds")
    with _connect(ws) as con:
        for _ in range(5):
            view_id = _new_id()
            try:
                con.execute(
                    "INSERT INTO views VALUES (?, ?, ?, ?, ?, ?)",
                    [view_id, page, payload, int(data_version), created, SCHEMA_VERSION],
                )
                return view_id
            except sqlite3.IntegrityError:  # id collision: astronomically rare, try again
                continue
    raise ConfigError("Could not allocate a unique view id")  # pragma: no cover


def app_url(ws: Workspace) -> str | None:
    """The app's address (``[app] url``), for links made outside the app; None if unset."""
    url = ws.section("app").get("url")
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise ConfigError("[app] url must be an http(s) address", hint='e.g. url = "https://fle.example.org"')
    return url.rstrip("/") if url else None


def pinned_link(ws: Workspace, page: str, params: Mapping[str, object], data_version: int) -> str | None:
    """Save a view and return its full link (``<[app] url>/<page>?view=ID``), for the gate's
    PR comment and the leaderboard export; None when no app URL is configured."""
    base = app_url(ws)
    if base is None:
        return None
    return f"{base}/{page}?view={save_view(ws, page, params, data_version)}"


def load_view(ws: Workspace, view_id: str) -> SavedView:
    """The view with this id; ``ViewNotFound`` when the id is malformed or unknown."""
    view_id = (view_id or "").strip()
    if not _ID_RE.match(view_id):
        raise ViewNotFound(
            f"{view_id[:40]!r} is not a valid shared-view id", hint="check that the whole link was copied"
        )
    if not _path(ws).exists():
        raise _not_found(view_id)
    with _read(ws) as con:
        row = con.execute(
            "SELECT id, page, params_json, data_version, created_at FROM views WHERE id = ?", [view_id]
        ).fetchone()
    if row is None:
        raise _not_found(view_id)
    return _row_to_view(row)


def list_views(ws: Workspace, limit: int = 50) -> list[SavedView]:
    """Most recent views first."""
    if not _path(ws).exists():
        return []
    with _read(ws) as con:
        rows = con.execute(
            "SELECT id, page, params_json, data_version, created_at FROM views "
            "ORDER BY created_at DESC, rowid DESC LIMIT ?",
            [int(limit)],
        ).fetchall()
    return [_row_to_view(r) for r in rows]


def _not_found(view_id: str) -> ViewNotFound:
    return ViewNotFound(
        f"No shared view {view_id!r} in this workspace",
        hint="the link may come from another workspace, or the view was deleted",
    )


def _row_to_view(row) -> SavedView:
    view_id, page, params_json, version, created = row
    return SavedView(view_id, page, json.loads(params_json), int(version), datetime.fromisoformat(created))
