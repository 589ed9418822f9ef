"""The local DuckDB warehouse: schema, the single writer, and read-only readers.

DuckDB allows one read-write *process* per file, and a read-write open fails
while any other process has the file open. So:

* Every write holds the cross-process file lock (``warehouse.lock``, via
  ``write_lock``) and opens a read-write connection (``rw_connection``) only
  around the statements it runs, retrying while readers hold the file. Sync
  keeps the lock for a whole run and reopens the connection per batch, so
  readers get in between; ``writer(ws)`` combines both for one short block.
* ``reader(ws)`` opens the file read-only for one short block, retrying with
  backoff while a writer holds it, then raises ``WarehouseBusy``. Readers must
  not keep connections open between queries, or they would starve the writer.

Tables (one row per ...):

``steps``             programs row, unique (source, id); lean columns + derived fields
``trajectories``      (source, version, instance); maintained incrementally by sync
``sync_runs``         sync attempt; ``sync_id`` is the warehouse data version
``source_state``      source; its watermark (max synced ``programs.id``)
``sweep_attempts``    sweep attempt (copied from the control store on sync), used
                      to exclude superseded versions from metrics
``inspect_logs``      Inspect log file of an ``inspect`` source: size/mtime (so an
                      unchanged log is not re-read), status, errors, headline metric
``inspect_samples``   (log, sample, epoch) of an Inspect log: the trajectory key it
                      maps to, quota, FLE's outcome, failures, tokens, cost, times
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import duckdb
import filelock

from fle_core.errors import WarehouseBusy, WarehouseMissing
from fle_core.workspace import Workspace

if TYPE_CHECKING:  # polars is imported lazily: `fle-core sync` does not need it
    import polars as pl

SCHEMA_VERSION = 1

DDL = [
    """CREATE TABLE IF NOT EXISTS meta_info (key VARCHAR PRIMARY KEY, value VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS steps (
        source VARCHAR NOT NULL,
        id BIGINT NOT NULL,
        version BIGINT,
        instance BIGINT,
        depth DOUBLE,
        value DOUBLE,
        holdout_value DOUBLE,
        raw_reward DOUBLE,
        model VARCHAR,               -- programs.model, else meta.model, else description
        task VARCHAR,                -- registry key; NULL when it could not be parsed
        num_agents INTEGER,
        sweep_id VARCHAR,
        error_occurred BOOLEAN,
        production_score DOUBLE,
        simulated BOOLEAN,           -- meta.simulated: written by the simulate executor
        prompt_tokens BIGINT,
        completion_tokens BIGINT,
        total_tokens BIGINT,
        ticks BIGINT,
        created_at TIMESTAMP,
        version_description VARCHAR, -- raw text, always kept
        meta VARCHAR,                -- raw JSON text, always kept
        achievements_json VARCHAR,
        timing_metrics_json VARCHAR,
        parse_flags VARCHAR,         -- NULL when clean; else comma list: unparsed_task, malformed_meta
        code VARCHAR,                -- only when [sync] copy_code = true
        response VARCHAR,            -- only when [sync] copy_code = true
        sync_id BIGINT NOT NULL
        -- unique (source, id) is guaranteed by sync (watermark + overlap anti-join),
        -- not by a PRIMARY KEY: DuckDB's index would cost ~40% of the sync time.
    )""",
    """CREATE TABLE IF NOT EXISTS trajectories (
        source VARCHAR NOT NULL,
        version BIGINT NOT NULL,
        instance BIGINT NOT NULL,
        model VARCHAR,
        task VARCHAR,
        num_agents INTEGER,
        sweep_id VARCHAR,
        steps BIGINT,
        max_depth DOUBLE,
        best_value DOUBLE,
        final_value DOUBLE,          -- value at the highest (depth, id)
        prompt_tokens BIGINT,
        completion_tokens BIGINT,
        total_tokens BIGINT,
        error_steps BIGINT,
        production_score DOUBLE,     -- latest non-null
        simulated BOOLEAN,
        first_at TIMESTAMP,
        last_at TIMESTAMP,
        parse_flags VARCHAR,
        last_sync_id BIGINT,
        PRIMARY KEY (source, version, instance)
    )""",
    """CREATE TABLE IF NOT EXISTS sync_runs (
        sync_id BIGINT PRIMARY KEY,
        source VARCHAR NOT NULL,
        started_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP,
        status VARCHAR NOT NULL,     -- running | ok | failed | interrupted
        rows_added BIGINT DEFAULT 0,
        watermark_before BIGINT,
        watermark_after BIGINT,
        full_rebuild BOOLEAN DEFAULT FALSE,
        error VARCHAR
    )""",
    """CREATE TABLE IF NOT EXISTS source_state (
        source VARCHAR PRIMARY KEY,
        kind VARCHAR,
        display_url VARCHAR,         -- password masked
        watermark BIGINT,
        last_sync_id BIGINT
    )""",
    """CREATE TABLE IF NOT EXISTS sweep_attempts (
        source VARCHAR NOT NULL,
        version BIGINT NOT NULL,
        sweep_id VARCHAR,
        cell_id VARCHAR,
        model VARCHAR,
        task VARCHAR,
        params_json VARCHAR,
        trial INTEGER,
        attempt INTEGER,
        status VARCHAR,
        PRIMARY KEY (source, version)
    )""",
    """CREATE TABLE IF NOT EXISTS inspect_logs (
        source VARCHAR NOT NULL,
        path VARCHAR NOT NULL,       -- relative to the source's folder
        size BIGINT,
        mtime_ns BIGINT,             -- size -1: re-read on the next sync
        status VARCHAR,              -- started (running or killed) | success | error | cancelled | unreadable
        format VARCHAR,              -- eval | json
        reader VARCHAR,              -- fast | inspect_ai
        format_version INTEGER,
        task VARCHAR,
        model VARCHAR,
        task_id VARCHAR,
        eval_id VARCHAR,
        eval_set_id VARCHAR,
        created VARCHAR,
        expected_samples INTEGER,    -- samples × epochs the run was asked for
        samples INTEGER,             -- finished samples in the log
        error VARCHAR,               -- the log's own error, or why it could not be read
        headline_label VARCHAR,      -- the log's headline metric, labelled for what it is
        headline_value DOUBLE,
        sweep_id VARCHAR,
        job_version BIGINT,          -- the sweep attempt's version (fle preset jobs)
        sync_id BIGINT,
        PRIMARY KEY (source, path)
    )""",
    """CREATE TABLE IF NOT EXISTS inspect_samples (
        source VARCHAR NOT NULL,
        path VARCHAR NOT NULL,
        sample_id VARCHAR NOT NULL,
        epoch INTEGER NOT NULL,
        version BIGINT NOT NULL,     -- the trajectory key (source, version, instance = epoch)
        instance BIGINT NOT NULL,
        dedup_key VARCHAR,           -- task_id|sample|epoch: eval-set retries count once
        superseded_by VARCHAR,       -- a newer log's path: not in steps/trajectories
        task VARCHAR,
        model VARCHAR,
        quota DOUBLE,                -- expected_production_score, else the registry's
        final_score DOUBLE,          -- FLE's production score for the sample
        fle_success BOOLEAN,         -- FLE's own quota_achieved
        has_error BOOLEAN,
        error VARCHAR,
        error_source VARCHAR,        -- sample | store (swallowed by FLE) | score
        limit_hit VARCHAR,
        failure_kind VARCHAR,        -- infrastructure | error | limit | NULL
        steps_from VARCHAR,          -- store | score
        steps INTEGER,
        scores_json VARCHAR,         -- every scorer's value
        input_tokens BIGINT,
        output_tokens BIGINT,
        total_tokens BIGINT,
        reasoning_tokens BIGINT,
        cache_read_tokens BIGINT,
        cache_write_tokens BIGINT,
        total_cost DOUBLE,
        total_time DOUBLE,
        working_time DOUBLE,
        started_at TIMESTAMP,
        completed_at TIMESTAMP,
        log_status VARCHAR,
        sync_id BIGINT
    )""",
]

_READ_RETRY_S = 10.0
_WRITE_LOCK_TIMEOUT_S = 600.0
_WRITER_MEMORY_LIMIT = "512MB"


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    # "different configuration": this process already holds the file read-write
    # (e.g. a UI thread reading while its own sync writes); also transient.
    return (
        "lock" in text or "conflicting" in text or "being used" in text or "different configuration" in text
    )


def _connect_with_retry(path: str, read_only: bool, budget_s: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + budget_s
    delay = 0.02
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if not _is_lock_error(exc) or time.monotonic() + delay > deadline:
                if _is_lock_error(exc):
                    raise WarehouseBusy(
                        f"The warehouse stayed locked for {budget_s:.0f}s",
                        hint="a sync or another writer is running; try again shortly",
                    ) from None
                raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.5)


@contextlib.contextmanager
def reader(ws: Workspace, budget_s: float = _READ_RETRY_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived read-only connection. Raises ``WarehouseMissing`` before first sync."""
    if not ws.warehouse_path.exists():
        raise WarehouseMissing(
            "Nothing has been synced into this workspace yet",
            hint="run `fle-core sync` or launch a demo sweep",
        )
    con = _connect_with_retry(str(ws.warehouse_path), True, budget_s)
    try:
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def write_lock(ws: Workspace, lock_timeout_s: float = _WRITE_LOCK_TIMEOUT_S) -> Iterator[None]:
    """The cross-process writer lock alone (sync holds it for a whole run).

    Holding the lock does not block readers; only an open read-write
    connection does. Sync therefore keeps the lock for the whole run and opens
    ``rw_connection`` only around each batch it writes.
    """
    lock = filelock.FileLock(str(ws.warehouse_lock_path))
    try:
        lock.acquire(timeout=lock_timeout_s)
    except filelock.Timeout:
        raise WarehouseBusy(
            f"Another sync held the warehouse lock for {lock_timeout_s:.0f}s",
            hint="wait for it to finish, or check for a stuck `fle-core sync`",
        ) from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def rw_connection(
    ws: Workspace,
    budget_s: float = _WRITE_LOCK_TIMEOUT_S,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection with the schema ensured. Caller must hold ``write_lock``."""
    _create_if_missing(ws)
    con = _connect_with_retry(str(ws.warehouse_path), False, budget_s)
    try:
        con.execute("SET enable_progress_bar = false")  # no bar on the CLI's stdout
        # Bound the writer's cache so a sync stays well under 1 GB RSS; DuckDB
        # spills to its temp directory if a statement ever needs more.
        con.execute(f"SET memory_limit = '{_WRITER_MEMORY_LIMIT}'")
        ensure_schema(con)
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def writer(
    ws: Workspace,
    lock_timeout_s: float = _WRITE_LOCK_TIMEOUT_S,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The single writer: cross-process lock, then a read-write connection with schema."""
    with write_lock(ws, lock_timeout_s), rw_connection(ws, lock_timeout_s) as con:
        yield con


def _create_if_missing(ws: Workspace) -> None:
    """Create a new warehouse under a temporary name, then rename it into place.

    A process killed while creating the schema must not leave a warehouse file
    without tables: readers would then fail on a missing table instead of
    getting ``WarehouseMissing``. The rename makes creation all-or-nothing.
    """
    if ws.warehouse_path.exists():
        return
    tmp = ws.warehouse_path.with_name(ws.warehouse_path.name + ".creating")
    for stale in (tmp, tmp.with_name(tmp.name + ".wal")):
        stale.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        ensure_schema(con)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, ws.warehouse_path)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for stmt in DDL:
        con.execute(stmt)
    con.execute("INSERT OR IGNORE INTO meta_info VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])


def query(ws: Workspace, sql: str, params: list | None = None) -> pl.DataFrame:
    """Run one parameterized read query and return a Polars frame."""
    with reader(ws) as con:
        return con.sql(sql, params=params or None).pl()


def data_version(ws: Workspace) -> int:
    """The latest successful ``sync_id`` (0 when nothing is synced). Cheap."""
    if not ws.warehouse_path.exists():
        return 0
    with reader(ws) as con:
        return int(scalar(con, "SELECT coalesce(max(sync_id), 0) FROM sync_runs WHERE status = 'ok'"))


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> Any:
    """The single value of a query that always returns one row (an aggregate)."""
    row = con.execute(sql, params or []).fetchone()
    if row is None:
        raise RuntimeError(f"query returned no row: {sql}")
    return row[0]
