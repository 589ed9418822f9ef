"""The control store on the team's Postgres (shared mode): several runners, one queue.

Same schema and contract as the SQLite store (``control_store.SqlControlStore``
holds the SQL); this module supplies psycopg connections, transactions and the
claim. The claim locks the sweep row ``FOR UPDATE`` (so the per-sweep
concurrency limit holds across hosts), picks a cell with ``FOR UPDATE SKIP
LOCKED``, and reserves a version under a transaction-scoped advisory lock keyed
by the source, so two sweeps writing to one source never get the same version.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from fle_core.errors import QueueError
from fle_core.sweeps.store.base import _CELL_COLS, SqlControlStore, _row
from fle_core.sweeps.store.records import CellRecord, Claim
from fle_core.workspace import mask_url

_MIGRATION_LOCK = 0x464C4553  # "FLES": one advisory lock id for schema migrations


class PostgresControlStore(SqlControlStore):
    """Control store in Postgres. ``url`` is the resolved (secret-bearing) URL."""

    dialect = "postgres"

    def __init__(self, url: str, connect_timeout_s: int = 10):
        self._url, self._timeout = url, connect_timeout_s
        self._closed = False
        self._con = self._connect()
        self._migrate()

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self._url, autocommit=True, connect_timeout=self._timeout)
        except psycopg.OperationalError as exc:
            raise QueueError(
                f"Cannot connect to the control store at {mask_url(self._url)}",
                hint=str(exc).splitlines()[0] if str(exc) else None,
            ) from None

    def _live(self) -> psycopg.Connection:
        """The connection, reopened if the server dropped it (a runner outlives restarts);
        never after ``close()``."""
        if self._closed:
            raise QueueError("The control store was closed", hint="open it again with open_store(ws)")
        if self._con.closed or self._con.broken:  # OperationalError here: the runner retries
            self._con = psycopg.connect(self._url, autocommit=True, connect_timeout=self._timeout)
        return self._con

    @staticmethod
    def _pg(sql: str) -> str:
        return sql.replace("?", "%s")

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        con = self._live()
        with con.transaction():
            yield lambda sql, params=(): con.execute(self._pg(sql), params)

    @contextmanager
    def _read(self) -> Iterator[Any]:
        con = self._live()
        yield lambda sql, params=(): con.execute(self._pg(sql), params)

    def _migration_lock(self, ex) -> None:
        ex("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))

    def claim(self, runner_id, host, now, lease_s, sources, sweep_ids=None):
        with self._read() as ex:
            candidates = self._candidate_sweeps(ex, sources, sweep_ids)
        for sweep in candidates:
            claim = self._claim_in(sweep.sweep_id, runner_id, host, now, lease_s, sources)
            if claim is not None:
                return claim
        return None

    def _claim_in(self, sweep_id, runner_id, host, now, lease_s, sources) -> Claim | None:
        cols = ", ".join(_CELL_COLS)
        with self._tx() as ex:
            # The sweep row lock serializes claims per sweep, so max_concurrent holds.
            row = ex(
                "SELECT max_concurrent FROM sweeps WHERE sweep_id = ? AND status = 'active' FOR UPDATE",
                (sweep_id,),
            ).fetchone()
            if row is None:
                return None
            running = ex(
                "SELECT COUNT(*) FROM cells WHERE sweep_id = ? AND status = 'running'", (sweep_id,)
            ).fetchone()[0]
            if running >= row[0]:
                return None
            pick = ex(
                "SELECT cell_id FROM cells WHERE sweep_id = ? AND status = 'pending'"
                " AND not_before <= ? ORDER BY order_index LIMIT 1 FOR UPDATE SKIP LOCKED",
                (sweep_id, now),
            ).fetchone()
            if pick is None:
                return None
            cell_row = ex(
                f"UPDATE cells SET status = 'running', attempts = attempts + 1, updated_at = ?"
                f" WHERE cell_id = ? AND status = 'pending' RETURNING {cols}",
                (now, pick[0]),
            ).fetchone()
            cell = _row(CellRecord, _CELL_COLS, cell_row)
            sweep = self._sweep(ex, sweep_id)
            key, floor = sources[sweep.source]
            ex("SELECT pg_advisory_xact_lock(hashtext(?))", (key,))
            attempt = self._start_attempt(ex, cell, sweep, runner_id, host, now, lease_s, key, floor)
            return Claim(cell=cell, attempt=attempt, sweep=sweep)

    def close(self) -> None:
        self._closed = True
        self._con.close()
