"""The embedded control store: one SQLite file (``control.db``) in WAL mode."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fle_core.errors import QueueError
from fle_core.sweeps.store.base import _CELL_COLS, MIGRATIONS, SqlControlStore, _row
from fle_core.sweeps.store.records import CellRecord, Claim


# ---- SQLite --------------------------------------------------------------------------
class SqliteControlStore(SqlControlStore):
    """The embedded store: one SQLite file in WAL mode; each write in BEGIN IMMEDIATE."""

    dialect = "sqlite"

    def __init__(self, path: str | Path, busy_timeout_ms: int = 30_000, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        if read_only and self.path.exists():
            self._con = _open_read_only(self.path, busy_timeout_ms)
            return
        if read_only:  # nothing to read yet: an empty store in memory, and no file created
            self._con = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            self._migrate()
            return
        self._busy_ms = int(busy_timeout_ms)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = self._open()
        self._migrate()

    def _open(self) -> sqlite3.Connection:
        con = sqlite3.connect(
            str(self.path), timeout=self._busy_ms / 1000, isolation_level=None, check_same_thread=False
        )
        con.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        con.execute("PRAGMA foreign_keys = ON")
        return con

    def reconnect(self) -> None:
        """A fresh connection. SQLite opens a file it cannot write read-only and keeps it
        so for the connection's life; a runner that (re)started while the store was
        read-only must reopen it to write again once it is writable."""
        if self.read_only:
            return
        con = self._open()
        old, self._con = self._con, con
        old.close()

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con.execute
        except BaseException:
            con.execute("ROLLBACK")
            raise
        try:
            con.execute("COMMIT")
        except sqlite3.Error:
            if con.in_transaction:  # a COMMIT that failed may leave it open: never keep it so
                con.execute("ROLLBACK")
            raise

    @contextmanager
    def _read(self) -> Iterator[Any]:
        yield self._con.execute

    def claim(self, runner_id, host, now, lease_s, sources, sweep_ids=None):
        cols = ", ".join(_CELL_COLS)
        with self._tx() as ex:
            for sweep in self._candidate_sweeps(ex, sources, sweep_ids):
                row = ex(
                    f"UPDATE cells SET status = 'running', attempts = attempts + 1, updated_at = ?"
                    f" WHERE cell_id = (SELECT cell_id FROM cells WHERE sweep_id = ? AND status = 'pending'"
                    f" AND not_before <= ? AND (SELECT COUNT(*) FROM cells r WHERE r.sweep_id = ?"
                    f" AND r.status = 'running') < ? ORDER BY order_index LIMIT 1) RETURNING {cols}",
                    (now, sweep.sweep_id, now, sweep.sweep_id, sweep.max_concurrent),
                ).fetchone()
                if row is None:
                    continue
                cell = _row(CellRecord, _CELL_COLS, row)
                key, floor = sources[sweep.source]
                attempt = self._start_attempt(ex, cell, sweep, runner_id, host, now, lease_s, key, floor)
                return Claim(cell=cell, attempt=attempt, sweep=sweep)
        return None

    def close(self) -> None:
        self._con.close()


def _open_read_only(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """A connection to an existing ``control.db`` that writes nothing (no WAL pragma, no
    migration). On a read-only mount a WAL database without its ``-shm`` file can only
    be opened as immutable (a snapshot), so that is the fallback. A store whose schema
    is older than this code needs one read-write open to migrate.
    """
    uri = "file:" + quote(str(path.resolve()))
    try:
        con = sqlite3.connect(
            uri + "?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=busy_timeout_ms / 1000,
        )
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        con = sqlite3.connect(uri + "?immutable=1", uri=True, isolation_level=None, check_same_thread=False)
    con.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    try:
        row = con.execute("SELECT MAX(version) FROM schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise QueueError(
            f"The control store {path} cannot be read: {exc}",
            hint="is it a control store of fle-core? Open the workspace read-write once to create it",
        ) from None
    if (row[0] or 0) < max(v for v, _ in MIGRATIONS):
        raise QueueError(
            f"The control store {path} has an older schema and this workspace is read-only",
            hint="open the workspace read-write once (any `fle-core sweep list`) to upgrade it",
        )
    return con
