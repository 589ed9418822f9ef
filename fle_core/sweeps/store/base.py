"""The durable sweep control store: the storage layer under the runner and the API.

Layers point one way: this module stores rows (no processes, no executors);
``sweeps.operations`` is the API; ``sweeps.runner`` is the consumer. ``ControlStore``
states each method's contract; ``SqlControlStore`` implements them once in
portable SQL (``?`` placeholders), and the two backends differ only in
connections, transactions and the claim:

* ``SqliteControlStore`` (embedded default, ``control.db`` in the workspace):
  WAL, ``busy_timeout``, every write in ``BEGIN IMMEDIATE``, claim with one
  atomic ``UPDATE … WHERE cell_id = (SELECT …) RETURNING``.
* ``PostgresControlStore`` (``postgres.py``, shared mode): the sweep row
  is locked ``FOR UPDATE``, the cell picked ``FOR UPDATE SKIP LOCKED``.

Times are epoch seconds (``time.time()``), because leases cross processes and
hosts. Every write happens in one transaction, so a crash never leaves half a
state change. Schema changes are ordered, idempotent migrations recorded in
``schema_version`` (see ``MIGRATIONS`` and docs/sweeps.md).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Self

from pydantic import BaseModel

from fle_core.errors import QueueError
from fle_core.sweeps.store.records import (
    MAX_LOST,
    TERMINAL_CELL,
    AttemptRecord,
    CellRecord,
    Claim,
    Finish,
    Outcome,
    PilotSubmission,
    RunnerRecord,
    SweepRecord,
    SweepStatus,
)


# ---- schema -------------------------------------------------------------------
def _ddl(dialect: str) -> list[str]:
    real = "REAL" if dialect == "sqlite" else "DOUBLE PRECISION"
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    big = "INTEGER" if dialect == "sqlite" else "BIGINT"
    return [
        f"""CREATE TABLE IF NOT EXISTS sweeps (
            sweep_id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,
            config_json TEXT NOT NULL, executor TEXT NOT NULL, source TEXT NOT NULL,
            max_concurrent INTEGER NOT NULL, max_retries INTEGER NOT NULL,
            retry_backoff_s {real} NOT NULL, retry_backoff_max_s {real} NOT NULL,
            early_stop INTEGER NOT NULL, wandb INTEGER NOT NULL,
            created_at {real} NOT NULL, updated_at {real} NOT NULL, completed_at {real})""",
        f"""CREATE TABLE IF NOT EXISTS cells (
            cell_id TEXT PRIMARY KEY, sweep_id TEXT NOT NULL REFERENCES sweeps(sweep_id),
            model TEXT NOT NULL, task TEXT NOT NULL, env_id TEXT NOT NULL,
            params_json TEXT NOT NULL, trial INTEGER NOT NULL, order_index INTEGER NOT NULL,
            status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0, lost INTEGER NOT NULL DEFAULT 0,
            not_before {real} NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,
            updated_at {real} NOT NULL,
            UNIQUE (sweep_id, model, task, params_json, trial))""",
        "CREATE INDEX IF NOT EXISTS cells_claim ON cells (sweep_id, status, order_index)",
        f"""CREATE TABLE IF NOT EXISTS attempts (
            attempt_id TEXT PRIMARY KEY, cell_id TEXT NOT NULL REFERENCES cells(cell_id),
            sweep_id TEXT NOT NULL, attempt INTEGER NOT NULL, version {big} NOT NULL,
            source TEXT NOT NULL, source_key TEXT NOT NULL, status TEXT NOT NULL, outcome TEXT,
            exit_code INTEGER, started_at {real} NOT NULL, ended_at {real}, log_path TEXT,
            error TEXT, runner_id TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER,
            proc_start TEXT, lease_until {real} NOT NULL, UNIQUE (cell_id, attempt))""",
        "CREATE INDEX IF NOT EXISTS attempts_running ON attempts (status, lease_until)",
        "CREATE INDEX IF NOT EXISTS attempts_sweep ON attempts (sweep_id)",
        f"""CREATE TABLE IF NOT EXISTS events (
            event_id {serial}, at {real} NOT NULL, sweep_id TEXT, cell_id TEXT,
            attempt_id TEXT, kind TEXT NOT NULL, message TEXT)""",
        "CREATE INDEX IF NOT EXISTS events_sweep ON events (sweep_id, event_id)",
        f"""CREATE TABLE IF NOT EXISTS runners (
            runner_id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL,
            started_at {real} NOT NULL, heartbeat_at {real} NOT NULL, lease_s {real} NOT NULL,
            status TEXT NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS version_reservations (
            source_key TEXT NOT NULL, version {big} NOT NULL, sweep_id TEXT NOT NULL,
            attempt_id TEXT NOT NULL, reserved_at {real} NOT NULL,
            PRIMARY KEY (source_key, version))""",
    ]


def _v2_slurm_and_charges(dialect: str) -> list[str]:
    """Runners record Slurm facts and jobs run; cells count drains apart from lost attempts
    (``requeues``, ``lost_charge``); Slurm pilot submissions. Applied in the migration's
    transaction (SQLite and Postgres DDL are transactional), so a crash leaves version 1."""
    real = "REAL" if dialect == "sqlite" else "DOUBLE PRECISION"
    guard = "" if dialect == "sqlite" else "IF NOT EXISTS "
    columns = [
        ("runners", "slurm_job_id TEXT"),
        ("runners", "slurm_array_task_id INTEGER"),
        ("runners", "node TEXT"),
        ("runners", "jobs_run INTEGER NOT NULL DEFAULT 0"),
        ("runners", "log_path TEXT"),
        ("cells", "requeues INTEGER NOT NULL DEFAULT 0"),
        ("cells", f"lost_charge {real} NOT NULL DEFAULT 0"),
    ]
    return [f"ALTER TABLE {table} ADD COLUMN {guard}{col}" for table, col in columns] + [
        f"""CREATE TABLE IF NOT EXISTS pilot_submissions (
            job_id TEXT PRIMARY KEY, submitted_at {real} NOT NULL, pilots INTEGER NOT NULL,
            sweep_ids TEXT, log_dir TEXT NOT NULL, status TEXT NOT NULL, cancelled_at {real})"""
    ]


# Ordered migrations: (version, statements). Each statement is idempotent, and a
# store applies the ones above its recorded version in one transaction.
MIGRATIONS: list[tuple[int, Any]] = [(1, _ddl), (2, _v2_slurm_and_charges)]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def cell_id_for(sweep_id: str, cell: Mapping[str, Any]) -> str:
    """Stable id of a cell from its natural key (sweep, model, task, params, trial)."""
    key = json.dumps([sweep_id, cell["model"], cell["task"], cell["params_json"], cell["trial"]])
    return hashlib.sha1(key.encode()).hexdigest()[:16]


# ---- the contract --------------------------------------------------------------
class ControlStore(ABC):
    """Storage contract shared by the SQLite and Postgres stores (one contract test)."""

    @abstractmethod
    def create_sweep(self, sweep: SweepRecord, cells: Sequence[Mapping[str, Any]]) -> None:
        """Insert the sweep and all its cells (``pending``) in one transaction."""

    @abstractmethod
    def add_missing_cells(self, sweep_id: str, cells: Sequence[Mapping[str, Any]], now: float) -> int:
        """Insert cells not yet present (by natural key); return how many were added."""

    @abstractmethod
    def get_sweep(self, sweep_id: str) -> SweepRecord:
        """The sweep; ``QueueError`` if unknown."""

    @abstractmethod
    def list_sweeps(self) -> list[SweepRecord]:
        """All sweeps, newest first."""

    @abstractmethod
    def set_sweep_status(self, sweep_id: str, status: SweepStatus, now: float) -> None:
        """Change a sweep's status (``QueueError`` if unknown)."""

    @abstractmethod
    def requeue_cells(self, sweep_id: str, statuses: Sequence[str], now: float) -> int:
        """Cells in ``statuses`` → ``pending`` with a fresh retry budget; return the count."""

    @abstractmethod
    def cancel_sweep(self, sweep_id: str, now: float) -> int:
        """Sweep → cancelled; pending cells → cancelled; running cells get
        ``cancel_requested`` (their runner kills them). Returns cells touched."""

    @abstractmethod
    def claim(
        self,
        runner_id: str,
        host: str,
        now: float,
        lease_s: float,
        sources: Mapping[str, tuple[str, int]],
        sweep_ids: Sequence[str] | None = None,
    ) -> Claim | None:
        """Atomically take one runnable cell and start an attempt for it.

        Runnable: cell ``pending`` with ``not_before <= now``, sweep ``active``,
        the sweep's running cells below its ``max_concurrent``, the sweep's source
        in ``sources`` (name → (source_key, max version already in the source)).
        The attempt gets version ``max(floor, reserved versions for the key) + 1``,
        recorded in ``version_reservations``. No two callers get the same cell."""

    @abstractmethod
    def set_attempt_process(self, attempt_id: str, pid: int, proc_start: str | None, log_path: str) -> None:
        """Record the job's process (pid = process group id) and log file."""

    @abstractmethod
    def heartbeat(self, runner: RunnerRecord) -> None:
        """Upsert the runner row and extend the leases of its running attempts."""

    @abstractmethod
    def finish_attempt(
        self,
        attempt_id: str,
        runner_id: str,
        outcome: Outcome,
        now: float,
        exit_code: int | None = None,
        error: str | None = None,
        charge: float = 1.0,
    ) -> Finish:
        """End a running attempt and move its cell on (retry, fail, succeed, requeue).

        Only the runner holding the attempt may finish it; otherwise ``stale=True``
        and nothing changes. ``succeeded`` → cell succeeded (+ early stop);
        ``failed``/``timed_out``/``empty`` → retry with backoff (attempt
        ``superseded``) or cell/attempt ``failed`` once ``max_retries`` is used;
        ``requeued`` (the runner drained) → cell pending again, counted in ``requeues``,
        never charged; ``lost`` → pending again without using a retry, the cell charged
        ``charge`` (failed once ``lost_charge`` reaches ``MAX_LOST``); ``cancelled`` →
        cell and attempt cancelled."""

    @abstractmethod
    def expire_leases(self, now: float) -> list[AttemptRecord]:
        """Finish as ``lost`` every running attempt of each runner with an ended lease
        (a runner extends all its leases at once, so one ended lease means it died);
        return them. Each is charged 1/K, K = how many jobs that runner lost: a runner
        that died running four jobs is not any one job's fault."""

    @abstractmethod
    def running_attempt_ids(self, runner_id: str) -> list[str]:
        """Ids of the attempts the store holds as ``running`` for ``runner_id``."""

    @abstractmethod
    def stop_requests(self, attempt_ids: Sequence[str]) -> dict[str, str]:
        """Which of a runner's ``attempt_ids`` it must stop: ``"cancelled"`` (the cell has
        ``cancel_requested``) or ``"lost"`` (no longer running: another runner expired it)."""

    @abstractmethod
    def complete_if_done(self, sweep_id: str, now: float) -> bool:
        """Active sweep whose cells are all terminal → ``completed``. True only for the
        one caller that made the change."""

    @abstractmethod
    def add_event(
        self,
        kind: str,
        message: str,
        now: float,
        sweep_id: str | None = None,
        cell_id: str | None = None,
        attempt_id: str | None = None,
    ) -> None:
        """Append to the event log (never fails the caller's state change)."""

    @abstractmethod
    def events(self, sweep_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Newest events first."""

    @abstractmethod
    def cells(self, sweep_id: str) -> list[CellRecord]:
        """A sweep's cells in claim order."""

    @abstractmethod
    def attempts(self, sweep_id: str | None = None) -> list[AttemptRecord]:
        """Attempts (all sweeps when ``sweep_id`` is None), oldest first."""

    @abstractmethod
    def runners(self) -> list[RunnerRecord]:
        """Runner rows, newest heartbeat first."""

    @abstractmethod
    def counts(self, sweep_id: str | None = None) -> dict[str, dict[str, int]]:
        """sweep_id → {cell status: count} (only statuses present), for one or all sweeps."""

    @abstractmethod
    def runnable_count(self, now: float | None, sweep_ids: Sequence[str] | None = None) -> int:
        """Pending cells of active sweeps (due by ``now`` unless None) plus running cells."""

    @abstractmethod
    def add_submission(self, submission: PilotSubmission) -> None:
        """Record an ``sbatch`` of runner pilots (with an event)."""

    @abstractmethod
    def submissions(self, limit: int = 50) -> list[PilotSubmission]:
        """Pilot submissions, newest first."""

    @abstractmethod
    def set_submission_cancelled(self, job_id: str, now: float) -> None:
        """Mark a submission ``cancelled`` (its pilots were ``scancel``ed)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Self:
        """``with open_store(ws) as store:`` closes the store's connection when the block ends."""
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reconnect(self) -> None:
        """Open the connection afresh after a fault (a runner calls it while the store is
        down). Stores that reconnect by themselves need nothing here."""
        return None


# ---- portable SQL implementation --------------------------------------------------
_SWEEP_COLS = list(SweepRecord.model_fields)
_CELL_COLS = list(CellRecord.model_fields)
_ATTEMPT_COLS = list(AttemptRecord.model_fields)
_RUNNER_COLS = list(RunnerRecord.model_fields)
_SUBMISSION_COLS = list(PilotSubmission.model_fields)


def _row(model: type[BaseModel], cols: list[str], row: Sequence[Any]) -> Any:
    return model(**dict(zip(cols, row, strict=True)))


class SqlControlStore(ControlStore):
    """Everything but connections, transactions and the claim, in portable SQL."""

    dialect = "sqlite"

    @abstractmethod
    def _tx(self) -> Any:
        """Context manager: a write transaction yielding ``ex(sql, params) -> cursor``."""

    @abstractmethod
    def _read(self) -> Any:
        """Context manager: a read yielding ``ex(sql, params) -> cursor``."""

    def _migration_lock(self, ex) -> None:
        """Serialize concurrent migrations (SQLite: BEGIN IMMEDIATE already does)."""

    # -- schema
    def _migrate(self) -> None:
        with self._tx() as ex:
            self._migration_lock(ex)
            ex("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", ())
            row = ex("SELECT MAX(version) FROM schema_version", ()).fetchone()
            current = row[0] or 0
            for version, statements in MIGRATIONS:
                if version > current:
                    for sql in statements(self.dialect):
                        ex(sql, ())
                    ex("INSERT INTO schema_version (version) VALUES (?)", (version,))

    # -- sweeps
    def create_sweep(self, sweep, cells):
        with self._tx() as ex:
            if ex("SELECT 1 FROM sweeps WHERE sweep_id = ?", (sweep.sweep_id,)).fetchone():
                raise QueueError(f"Sweep {sweep.sweep_id!r} already exists")
            vals = {k: int(v) if isinstance(v, bool) else v for k, v in sweep.model_dump().items()}
            ex(
                f"INSERT INTO sweeps ({', '.join(_SWEEP_COLS)}) VALUES ({', '.join('?' * len(_SWEEP_COLS))})",
                tuple(vals[c] for c in _SWEEP_COLS),
            )
            self._insert_cells(ex, sweep.sweep_id, cells, sweep.created_at)
            self._event(ex, "launched", f"{len(cells)} cells", sweep.created_at, sweep.sweep_id)

    def _insert_cells(self, ex, sweep_id, cells, now) -> int:
        added = 0
        for c in cells:
            cur = ex(
                "INSERT INTO cells (cell_id, sweep_id, model, task, env_id, params_json, trial,"
                " order_index, status, updated_at) VALUES (?,?,?,?,?,?,?,?,'pending',?)"
                " ON CONFLICT DO NOTHING",
                (
                    cell_id_for(sweep_id, c),
                    sweep_id,
                    c["model"],
                    c["task"],
                    c["env_id"],
                    c["params_json"],
                    c["trial"],
                    c["order_index"],
                    now,
                ),
            )
            added += max(cur.rowcount, 0)
        return added

    def add_missing_cells(self, sweep_id, cells, now):
        with self._tx() as ex:
            self._sweep(ex, sweep_id)
            added = self._insert_cells(ex, sweep_id, cells, now)
            if added:
                self._event(ex, "cells_added", f"{added} missing cells", now, sweep_id)
            return added

    def _sweep(self, ex, sweep_id: str) -> SweepRecord:
        row = ex(f"SELECT {', '.join(_SWEEP_COLS)} FROM sweeps WHERE sweep_id = ?", (sweep_id,)).fetchone()
        if row is None:
            raise QueueError(f"Unknown sweep {sweep_id!r}", hint="see `fle-core sweep list`")
        return _row(SweepRecord, _SWEEP_COLS, row)

    def get_sweep(self, sweep_id):
        with self._read() as ex:
            return self._sweep(ex, sweep_id)

    def list_sweeps(self):
        with self._read() as ex:
            rows = ex(
                f"SELECT {', '.join(_SWEEP_COLS)} FROM sweeps ORDER BY created_at DESC, sweep_id", ()
            ).fetchall()
        return [_row(SweepRecord, _SWEEP_COLS, r) for r in rows]

    def set_sweep_status(self, sweep_id, status, now):
        with self._tx() as ex:
            old = self._sweep(ex, sweep_id)
            ex(
                "UPDATE sweeps SET status = ?, updated_at = ?, completed_at = NULL WHERE sweep_id = ?",
                (status, now, sweep_id),
            )
            if old.status != status:
                self._event(ex, status, f"{old.status} -> {status}", now, sweep_id)

    def requeue_cells(self, sweep_id, statuses, now):
        if not statuses:
            return 0
        marks = ", ".join("?" * len(statuses))
        with self._tx() as ex:
            self._sweep(ex, sweep_id)
            cur = ex(
                f"UPDATE cells SET status = 'pending', failures = 0, lost = 0, lost_charge = 0,"
                f" not_before = 0, cancel_requested = 0, updated_at = ?"
                f" WHERE sweep_id = ? AND status IN ({marks})",
                (now, sweep_id, *statuses),
            )
            n = max(cur.rowcount, 0)
            if n:
                self._event(ex, "requeued", f"{n} cells ({', '.join(statuses)})", now, sweep_id)
            return n

    def cancel_sweep(self, sweep_id, now):
        with self._tx() as ex:
            self._sweep(ex, sweep_id)
            ex("UPDATE sweeps SET status = 'cancelled', updated_at = ? WHERE sweep_id = ?", (now, sweep_id))
            a = ex(
                "UPDATE cells SET status = 'cancelled', updated_at = ? WHERE sweep_id = ?"
                " AND status = 'pending'",
                (now, sweep_id),
            ).rowcount
            b = ex(
                "UPDATE cells SET cancel_requested = 1, updated_at = ? WHERE sweep_id = ?"
                " AND status = 'running'",
                (now, sweep_id),
            ).rowcount
            self._event(ex, "cancelled", f"{a} pending cancelled, {b} running to kill", now, sweep_id)
            return max(a, 0) + max(b, 0)

    # -- claim helpers (the claim itself is per backend)
    def _start_attempt(
        self,
        ex,
        cell: CellRecord,
        sweep: SweepRecord,
        runner_id: str,
        host: str,
        now: float,
        lease_s: float,
        source_key: str,
        floor: int,
    ) -> AttemptRecord:
        """Reserve a version and insert the attempt (inside the claim's transaction)."""
        row = ex(
            "SELECT MAX(version) FROM version_reservations WHERE source_key = ?", (source_key,)
        ).fetchone()
        version = max(int(floor or 0), int(row[0] or 0)) + 1
        n = cell.attempts  # already incremented by the claim
        attempt = AttemptRecord(
            attempt_id=f"{cell.cell_id}.{n}",
            cell_id=cell.cell_id,
            sweep_id=cell.sweep_id,
            attempt=n,
            version=version,
            source=sweep.source,
            source_key=source_key,
            status="running",
            started_at=now,
            runner_id=runner_id,
            host=host,
            lease_until=now + lease_s,
        )
        vals = attempt.model_dump()
        ex(
            f"INSERT INTO attempts ({', '.join(_ATTEMPT_COLS)}) VALUES ({', '.join('?' * len(_ATTEMPT_COLS))})",
            tuple(vals[c] for c in _ATTEMPT_COLS),
        )
        ex(
            "INSERT INTO version_reservations (source_key, version, sweep_id, attempt_id, reserved_at)"
            " VALUES (?,?,?,?,?)",
            (source_key, version, cell.sweep_id, attempt.attempt_id, now),
        )
        return attempt

    def _candidate_sweeps(self, ex, sources, sweep_ids) -> list[SweepRecord]:
        rows = ex(
            f"SELECT {', '.join(_SWEEP_COLS)} FROM sweeps WHERE status = 'active'"
            " ORDER BY created_at, sweep_id",
            (),
        ).fetchall()
        out = [_row(SweepRecord, _SWEEP_COLS, r) for r in rows]
        return [s for s in out if s.source in sources and (sweep_ids is None or s.sweep_id in sweep_ids)]

    # -- attempts
    def set_attempt_process(self, attempt_id, pid, proc_start, log_path):
        with self._tx() as ex:
            ex(
                "UPDATE attempts SET pid = ?, proc_start = ?, log_path = ? WHERE attempt_id = ?",
                (pid, proc_start, log_path, attempt_id),
            )

    def heartbeat(self, runner):
        vals = runner.model_dump()
        with self._tx() as ex:
            ex(
                f"INSERT INTO runners ({', '.join(_RUNNER_COLS)}) VALUES ({', '.join('?' * len(_RUNNER_COLS))})"
                " ON CONFLICT (runner_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,"
                " status = excluded.status, lease_s = excluded.lease_s, jobs_run = excluded.jobs_run",
                tuple(vals[c] for c in _RUNNER_COLS),
            )
            ex(
                "UPDATE attempts SET lease_until = ? WHERE runner_id = ? AND status = 'running'",
                (runner.heartbeat_at + runner.lease_s, runner.runner_id),
            )

    def finish_attempt(self, attempt_id, runner_id, outcome, now, exit_code=None, error=None, charge=1.0):
        with self._tx() as ex:
            return self._finish(ex, attempt_id, runner_id, outcome, now, exit_code, error, charge)

    def _finish(self, ex, attempt_id, runner_id, outcome, now, exit_code, error, charge=1.0) -> Finish:
        row = ex(
            f"SELECT {', '.join(_ATTEMPT_COLS)} FROM attempts WHERE attempt_id = ?"
            " AND status = 'running' AND runner_id = ?",
            (attempt_id, runner_id),
        ).fetchone()
        if row is None:
            return Finish(stale=True)
        att = _row(AttemptRecord, _ATTEMPT_COLS, row)
        cell = self._cell(ex, att.cell_id)
        sweep = self._sweep(ex, att.sweep_id)
        if cell.cancel_requested and outcome in ("requeued", "lost"):
            outcome = "cancelled"  # stopped while its cancel was pending (scancel, a dying runner)
        out = _decide(outcome, cell, sweep, now, charge)
        ex(
            "UPDATE attempts SET status = ?, outcome = ?, exit_code = ?, ended_at = ?, error = ?"
            " WHERE attempt_id = ?",
            (out.attempt_status, outcome, exit_code, now, error, attempt_id),
        )
        failed = outcome in ("failed", "timed_out", "empty")
        lost = outcome == "lost"
        ex(
            "UPDATE cells SET status = ?, failures = failures + ?, lost = lost + ?, requeues = requeues + ?,"
            " lost_charge = lost_charge + ?, not_before = ?, cancel_requested = 0, updated_at = ?"
            " WHERE cell_id = ?",
            (
                out.cell_status,
                int(failed),
                int(lost),
                int(outcome == "requeued"),
                float(charge) if lost else 0.0,
                out.retry_at or 0,
                now,
                cell.cell_id,
            ),
        )
        if out.cell_status == "succeeded" and sweep.early_stop:
            out.early_stopped = max(
                ex(
                    "UPDATE cells SET status = 'early_stopped', updated_at = ? WHERE sweep_id = ? AND model = ?"
                    " AND task = ? AND params_json = ? AND status = 'pending'",
                    (now, cell.sweep_id, cell.model, cell.task, cell.params_json),
                ).rowcount,
                0,
            )
        msg = f"attempt {att.attempt} v{att.version}: {outcome}"
        if exit_code is not None:
            msg += f" (exit {exit_code})"
        self._event(
            ex,
            f"attempt_{outcome}",
            msg + (f": {error}" if error else ""),
            now,
            cell.sweep_id,
            cell.cell_id,
            attempt_id,
        )
        return out

    def expire_leases(self, now):
        with self._tx() as ex:
            rows = ex(
                f"SELECT {', '.join(_ATTEMPT_COLS)} FROM attempts WHERE status = 'running'"
                " AND runner_id IN (SELECT runner_id FROM attempts WHERE status = 'running'"
                " AND lease_until < ?) ORDER BY started_at, attempt_id",
                (now,),
            ).fetchall()
            lost = [_row(AttemptRecord, _ATTEMPT_COLS, r) for r in rows]
            per_runner: dict[str, int] = {}
            for a in lost:
                per_runner[a.runner_id] = per_runner.get(a.runner_id, 0) + 1
            for a in lost:
                k = per_runner[a.runner_id]
                self._finish(
                    ex,
                    a.attempt_id,
                    a.runner_id,
                    "lost",
                    now,
                    None,
                    f"runner {a.runner_id} stopped heartbeating"
                    + (f" (it lost {k} jobs at once)" if k > 1 else ""),
                    1.0 / k,
                )
            return lost

    def running_attempt_ids(self, runner_id):
        with self._read() as ex:
            rows = ex(
                "SELECT attempt_id FROM attempts WHERE runner_id = ? AND status = 'running' ORDER BY attempt_id",
                (runner_id,),
            ).fetchall()
        return [r[0] for r in rows]

    def stop_requests(self, attempt_ids):
        if not attempt_ids:
            return {}
        marks = ", ".join("?" * len(attempt_ids))
        with self._read() as ex:
            rows = ex(
                f"SELECT a.attempt_id, a.status, c.cancel_requested FROM attempts a"
                f" JOIN cells c ON c.cell_id = a.cell_id WHERE a.attempt_id IN ({marks})"
                f" AND (a.status <> 'running' OR c.cancel_requested = 1)",
                tuple(attempt_ids),
            ).fetchall()
        return {aid: ("lost" if status != "running" else "cancelled") for aid, status, _ in rows}

    def complete_if_done(self, sweep_id, now):
        with self._tx() as ex:
            marks = ", ".join("?" * len(TERMINAL_CELL))
            cur = ex(
                f"UPDATE sweeps SET status = 'completed', completed_at = ?, updated_at = ?"
                f" WHERE sweep_id = ? AND status = 'active' AND NOT EXISTS (SELECT 1 FROM cells"
                f" WHERE cells.sweep_id = ? AND cells.status NOT IN ({marks}))",
                (now, now, sweep_id, sweep_id, *TERMINAL_CELL),
            )
            done = cur.rowcount == 1
            if done:
                self._event(ex, "completed", "all cells finished", now, sweep_id)
            return done

    # -- events and reads
    def _event(self, ex, kind, message, now, sweep_id=None, cell_id=None, attempt_id=None):
        ex(
            "INSERT INTO events (at, sweep_id, cell_id, attempt_id, kind, message) VALUES (?,?,?,?,?,?)",
            (now, sweep_id, cell_id, attempt_id, kind, (message or "")[:2000]),
        )

    def add_event(self, kind, message, now, sweep_id=None, cell_id=None, attempt_id=None):
        with self._tx() as ex:
            self._event(ex, kind, message, now, sweep_id, cell_id, attempt_id)

    def events(self, sweep_id=None, limit=200):
        cols = ["event_id", "at", "sweep_id", "cell_id", "attempt_id", "kind", "message"]
        where, params = ("WHERE sweep_id = ?", (sweep_id,)) if sweep_id else ("", ())
        with self._read() as ex:
            rows = ex(
                f"SELECT {', '.join(cols)} FROM events {where} ORDER BY event_id DESC LIMIT ?",
                (*params, int(limit)),
            ).fetchall()
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def _cell(self, ex, cell_id) -> CellRecord:
        row = ex(f"SELECT {', '.join(_CELL_COLS)} FROM cells WHERE cell_id = ?", (cell_id,)).fetchone()
        return _row(CellRecord, _CELL_COLS, row)

    def cells(self, sweep_id):
        with self._read() as ex:
            self._sweep(ex, sweep_id)
            rows = ex(
                f"SELECT {', '.join(_CELL_COLS)} FROM cells WHERE sweep_id = ? ORDER BY order_index",
                (sweep_id,),
            ).fetchall()
        return [_row(CellRecord, _CELL_COLS, r) for r in rows]

    def attempts(self, sweep_id=None):
        where, params = ("WHERE sweep_id = ?", (sweep_id,)) if sweep_id else ("", ())
        with self._read() as ex:
            rows = ex(
                f"SELECT {', '.join(_ATTEMPT_COLS)} FROM attempts {where} ORDER BY started_at, attempt_id",
                params,
            ).fetchall()
        return [_row(AttemptRecord, _ATTEMPT_COLS, r) for r in rows]

    def runners(self):
        with self._read() as ex:
            rows = ex(
                f"SELECT {', '.join(_RUNNER_COLS)} FROM runners ORDER BY heartbeat_at DESC", ()
            ).fetchall()
        return [_row(RunnerRecord, _RUNNER_COLS, r) for r in rows]

    # -- Slurm pilot submissions
    def add_submission(self, submission):
        vals = submission.model_dump()
        vals["sweep_ids"] = None if submission.sweep_ids is None else json.dumps(submission.sweep_ids)
        with self._tx() as ex:
            ex(
                f"INSERT INTO pilot_submissions ({', '.join(_SUBMISSION_COLS)})"
                f" VALUES ({', '.join('?' * len(_SUBMISSION_COLS))})",
                tuple(vals[c] for c in _SUBMISSION_COLS),
            )
            only = f" for {', '.join(submission.sweep_ids)}" if submission.sweep_ids else ""
            self._event(
                ex,
                "pilots_submitted",
                f"{submission.pilots} pilot(s) as Slurm job {submission.job_id}{only}",
                submission.submitted_at,
                submission.sweep_ids[0] if submission.sweep_ids and len(submission.sweep_ids) == 1 else None,
            )

    def submissions(self, limit=50):
        with self._read() as ex:
            rows = ex(
                f"SELECT {', '.join(_SUBMISSION_COLS)} FROM pilot_submissions"
                " ORDER BY submitted_at DESC, job_id LIMIT ?",
                (int(limit),),
            ).fetchall()
        out = []
        for r in rows:
            vals = dict(zip(_SUBMISSION_COLS, r, strict=True))
            vals["sweep_ids"] = None if vals["sweep_ids"] is None else json.loads(vals["sweep_ids"])
            out.append(PilotSubmission(**vals))
        return out

    def set_submission_cancelled(self, job_id, now):
        with self._tx() as ex:
            ex(
                "UPDATE pilot_submissions SET status = 'cancelled', cancelled_at = ? WHERE job_id = ?",
                (now, job_id),
            )
            self._event(ex, "pilots_cancelled", f"Slurm job {job_id} cancelled (scancel)", now)

    def counts(self, sweep_id=None):
        where, params = ("WHERE sweep_id = ?", (sweep_id,)) if sweep_id else ("", ())
        with self._read() as ex:
            rows = ex(
                f"SELECT sweep_id, status, COUNT(*) FROM cells {where} GROUP BY sweep_id, status", params
            ).fetchall()
        out: dict[str, dict[str, int]] = {}
        for sid, status, n in rows:
            out.setdefault(sid, {})[status] = int(n)
        return out

    def runnable_count(self, now, sweep_ids=None):
        due = "" if now is None else " AND c.not_before <= ?"
        params: tuple = () if now is None else (now,)
        only = ""
        if sweep_ids is not None:
            only = f" AND c.sweep_id IN ({', '.join('?' * len(sweep_ids))})" if sweep_ids else " AND 1 = 0"
            params += tuple(sweep_ids)
        with self._read() as ex:
            row = ex(
                "SELECT COUNT(*) FROM cells c JOIN sweeps s ON s.sweep_id = c.sweep_id WHERE"
                f" (c.status = 'running' OR (c.status = 'pending' AND s.status = 'active'{due})){only}",
                params,
            ).fetchone()
        return int(row[0])


def _decide(
    outcome: Outcome, cell: CellRecord, sweep: SweepRecord, now: float, charge: float = 1.0
) -> Finish:
    """The state transition for one finished attempt (pure; see ``finish_attempt``)."""
    if outcome == "succeeded":
        return Finish(cell_status="succeeded", attempt_status="succeeded")
    if outcome == "cancelled" or cell.cancel_requested:
        return Finish(cell_status="cancelled", attempt_status="cancelled")
    if outcome == "requeued":  # an orderly drain: the job did nothing wrong
        return Finish(cell_status="pending", attempt_status="superseded", retry_at=now)
    if outcome == "lost":
        if cell.lost_charge + charge >= MAX_LOST - 1e-9:
            return Finish(cell_status="failed", attempt_status="failed")
        return Finish(cell_status="pending", attempt_status="superseded", retry_at=now)
    used = cell.failures + 1  # this failure included
    if used > sweep.max_retries:
        return Finish(cell_status="failed", attempt_status="failed")
    delay = min(sweep.retry_backoff_s * 2 ** (used - 1), sweep.retry_backoff_max_s)
    return Finish(cell_status="pending", attempt_status="superseded", retry_at=now + delay)
