"""What every syncer shares: the ``[sync]`` settings and the writer's session.

The session holds the warehouse's read-write connection for at most
``[sync] writer_hold_s`` seconds at a time, so readers get in between batches.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from fle_core.errors import ConfigError
from fle_core.warehouse import store as warehouse
from fle_core.workspace import Workspace

if TYPE_CHECKING:
    import polars as pl

#: ``progress(done, total)``, called after each committed batch (in the source's unit).
Progress = Callable[[int, "int | None"], None]
# The sweep facts sync needs, owned by the warehouse so that it never imports the
# sweeps layer: one row per sweep attempt, with ``_runs.ATTEMPT_COLUMNS``. The sweeps
# layer supplies them (``fle_core.sweeps.facts.attempts_for_sync``).
AttemptsProvider = Callable[[], "pl.DataFrame | None"]

# DuckDB's row group: a batch that fills exactly one new row group is written to the
# file compressed, once, instead of through the WAL and again at checkpoint (about half
# the write CPU). Sync also aligns its first batch to the table's row groups.
ROW_GROUP_ROWS = 122_880
DEFAULT_BATCH_ROWS = ROW_GROUP_ROWS
DEFAULT_PG_OVERLAP_IDS = 1_000
DEFAULT_WRITER_HOLD_S = 5.0
# Parallel chunk reads did not pay on the 2-core benchmark machine (the writer already
# keeps both cores busy); more workers can help where cores are spare.
DEFAULT_READ_WORKERS = 1
# DuckDB threads of the writer. The reader thread (and, for Postgres, the server backend)
# keeps the other core busy; a single-threaded insert used ~15% less CPU than two
# threads and was no slower (bench/RESULTS-sync.md).
DEFAULT_WRITER_THREADS = 1


@dataclass
class Options:
    batch_rows: int = DEFAULT_BATCH_ROWS
    copy_code: bool = False
    pg_overlap_ids: int = DEFAULT_PG_OVERLAP_IDS
    writer_hold_s: float = DEFAULT_WRITER_HOLD_S
    read_workers: int = DEFAULT_READ_WORKERS
    writer_threads: int = DEFAULT_WRITER_THREADS

    @classmethod
    def from_workspace(cls, ws: Workspace) -> Options:
        """The ``[sync]`` settings; a value out of range is a ``ConfigError`` (not clamped:
        ``batch_rows = -5`` silently meant one-row batches and a minute-long sync)."""
        sec = ws.section("sync")
        return cls(
            _setting(ws, sec, "batch_rows", int, DEFAULT_BATCH_ROWS, 1),
            _setting(ws, sec, "copy_code", bool, False),
            _setting(ws, sec, "pg_overlap_ids", int, DEFAULT_PG_OVERLAP_IDS, 0),
            float(_setting(ws, sec, "writer_hold_s", float, DEFAULT_WRITER_HOLD_S, 0)),
            _setting(ws, sec, "read_workers", int, DEFAULT_READ_WORKERS, 1),
            _setting(ws, sec, "writer_threads", int, DEFAULT_WRITER_THREADS, 1),
        )


def _setting(ws: Workspace, sec: dict, key: str, kind: type, default, lowest: float | None = None):
    value = sec.get(key, default)
    ok = (
        isinstance(value, bool)
        if kind is bool
        else (isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool))
    )
    if not ok:
        raise ConfigError(
            f"[sync] {key} in {ws.config_path} must be {'true or false' if kind is bool else f'a {kind.__name__}'}"
            f", got {value!r}",
            hint="see docs/sync.md for the [sync] settings",
        )
    if lowest is not None and value < lowest:
        raise ConfigError(
            f"[sync] {key} in {ws.config_path} must be at least {lowest:g}, got {value!r}",
            hint="see docs/sync.md for the [sync] settings",
        )
    return value


@dataclass
class Context:
    """One ``sync()`` call's settings, handed to the syncer of each source."""

    ws: Workspace
    full: bool
    progress: Progress | None
    options: Options
    attempts: AttemptsProvider | None


class Session:
    """The warehouse's read-write connection, held at most ``hold_s`` at a time.

    DuckDB lets no reader in while a read-write connection is open, so sync
    releases it after at most ``hold_s`` seconds of batches (then reopens for
    the next batch). Reopening costs ~0.1 s, so it is not done per batch.
    """

    def __init__(self, ws: Workspace, hold_s: float, threads: int = DEFAULT_WRITER_THREADS):
        self.ws, self.hold_s, self.threads = ws, hold_s, threads
        self._con: duckdb.DuckDBPyConnection | None = None
        self._since = 0.0
        self._cm: contextlib.AbstractContextManager[duckdb.DuckDBPyConnection] | None = None

    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._cm = warehouse.rw_connection(self.ws)
            self._con = con = self._cm.__enter__()
            con.execute(f"SET threads = {int(self.threads)}")
            self._since = time.monotonic()
            return con
        return self._con

    def maybe_release(self) -> None:
        if self._con is not None and time.monotonic() - self._since >= self.hold_s:
            self.close()

    def close(self) -> None:
        if self._cm is not None:
            cm, self._cm, self._con = self._cm, None, None
            cm.__exit__(None, None, None)
