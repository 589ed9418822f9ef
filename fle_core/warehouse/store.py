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
``source_state``      source: its name (a label), kind, canonical ``location`` (its identity:
                      one location is one source, whatever route names it) and watermark
``sweep_attempts``    sweep attempt (copied from the control store on sync), used
                      to exclude superseded versions from metrics
``inspect_logs``      Inspect log file of an ``inspect`` source: size/mtime (so an
                      unchanged log is not re-read), status, errors, headline metric
``inspect_samples``   (log, sample, epoch) of an Inspect log: the trajectory key it
                      maps to, quota, FLE's outcome, failures, tokens, cost, times
``sync_notes``        something a sync run wants said: late Postgres commits, rows a
                      ``--full`` rebuild removed or changed (shared views check these)
``meta_info``         ``schema_version``; ``data_version``, the latest sync that changed data

A file at the warehouse path that is not a DuckDB file, or a warehouse whose
tables lack columns of this version, is a ``WarehouseUnusable`` error with a
hint, never a raw DuckDB error. The writer adds missing nullable columns itself
(a warehouse made by an older version keeps working after one sync). DuckDB
never downloads or auto-loads an extension here (``_CONFIG``).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import random
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import duckdb

from fle_core.errors import FleError, WarehouseBusy, WarehouseMissing, WarehouseUnusable
from fle_core.workspace import Workspace

if TYPE_CHECKING:  # polars is imported lazily: `fle-core sync` does not need it
    import polars as pl

#: How one ``trajectories`` row is derived from its steps (``FROM steps s ... GROUP BY
#: s.source, s.version, s.instance``): one definition for every source kind, so a
#: trajectory from a ``programs`` table and one from an Inspect log mean the same. The
#: rewards follow ``stats.metrics``' rule (best and final over finite values only; final at
#: the highest (depth, id)): ``test_sync.py::test_the_trajectories_table_agrees_with_the_summaries``.
TRAJECTORY_AGGREGATES = """s.source, s.version, s.instance,
  mode(s.model) AS model, mode(s.task) AS task, max(s.num_agents) AS num_agents,
  mode(s.sweep_id) AS sweep_id, count(*) AS steps, max(s.depth) AS max_depth,
  max(s.value) FILTER (WHERE NOT isnan(s.value) AND NOT isinf(s.value)) AS best_value,
  arg_max(s.value, (coalesce(s.depth, '-inf'::DOUBLE), s.id)) FILTER (WHERE isfinite(s.value)) AS final_value,
  sum(s.prompt_tokens) AS prompt_tokens, sum(s.completion_tokens) AS completion_tokens,
  sum(s.total_tokens) AS total_tokens, count_if(s.error_occurred) AS error_steps,
  arg_max(s.production_score, (coalesce(s.depth, '-inf'::DOUBLE), s.id))
    FILTER (WHERE s.production_score IS NOT NULL) AS production_score,
  bool_or(s.simulated) AS simulated, min(s.created_at) AS first_at, max(s.created_at) AS last_at,
  nullif(array_to_string(list_sort(list_distinct(flatten(
    list(string_split(s.parse_flags, ',')) FILTER (WHERE s.parse_flags IS NOT NULL)))), ','), '')
    AS parse_flags,
  max(s.sync_id) AS last_sync_id"""

SCHEMA_VERSION = 4  # 2: sync_notes, meta_info.data_version; 3: source_state.location, inspect_logs.etag;
# 4: Inspect logs: invalidation, retries, fallbacks, edits, config updates, shards, system facts

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
        final_value DOUBLE,          -- the last finite value, by (depth, id): stats' final_reward
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
        error VARCHAR,
        rows_removed BIGINT          -- rows synced before that this run took out (removed or replaced)
    )""",
    """CREATE TABLE IF NOT EXISTS source_state (
        source VARCHAR PRIMARY KEY,  -- the name: a label for people
        kind VARCHAR,
        display_url VARCHAR,         -- password masked
        watermark BIGINT,
        last_sync_id BIGINT,
        location VARCHAR             -- identity: absolute path or credential-free URL (NULL: not yet known)
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
        etag VARCHAR,                -- object storage: the object's ETag (a change means re-read)
        content_id VARCHAR,          -- a local log's content hash (log_store.content_id; a change means re-read)
        facts_version INTEGER,       -- inspect_sync.FACTS_VERSION that read it (older: read again)
        merged_into VARCHAR,         -- a shard its finished merged log covers (status merged)
        invalidated BOOLEAN,         -- EvalLog.invalidated: some samples were invalidated
        tags VARCHAR,                -- JSON list: the log's tags after edits
        log_metadata VARCHAR,        -- JSON: the log's metadata after edits
        edits_json VARCHAR,          -- JSON: log_updates (tags/metadata edits) with provenance
        config_updates_json VARCHAR, -- JSON: mid-run config changes (inspect ctl config)
        solver VARCHAR,              -- the plan's solver (FLE variant name when it is FLE's)
        fle_version VARCHAR,
        inspect_version VARCHAR,
        generate_config VARCHAR,     -- JSON: the GenerateConfig fields that change behaviour
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
        sync_id BIGINT,
        invalidated_by VARCHAR,      -- invalidate_samples' author: metrics leave the sample out
        invalidated_reason VARCHAR,
        invalidated_at TIMESTAMP,
        error_retries INTEGER,       -- errors Inspect retried before this result
        retry_errors VARCHAR,
        fallbacks INTEGER,           -- requests another model served (model_fallbacks)
        fallbacks_json VARCHAR,
        automated_production_score DOUBLE,  -- NULL where FLE did not compute it (throughput < 0.4.4)
        open_play BOOLEAN,
        solver VARCHAR,              -- fle-job.json, else metadata.solver_variant, else the plan
        trajectory_length INTEGER,
        vision BOOLEAN,              -- fle-job.json only (FLE does not record it)
        scenario VARCHAR,            -- fle-job.json only
        generate_config VARCHAR,
        fle_version VARCHAR,
        inspect_version VARCHAR,
        limits_changed BOOLEAN       -- the log records mid-run config changes
    )""",
    """CREATE TABLE IF NOT EXISTS sync_notes (
        sync_id BIGINT NOT NULL,
        source VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,       -- warning | rebuild_changed | removed (rows an earlier sync brought in)
        detail VARCHAR,
        rows BIGINT,
        earliest_sync BIGINT         -- rebuild_changed: the earliest sync id of an affected row
    )""",
]
# No extension is ever installed or loaded behind our back (a foreign file at the
# warehouse path made DuckDB try to download one).
_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
_MAGIC = b"DUCK"  # bytes 8..12 of every DuckDB database file

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
    _check_file(path)
    deadline = time.monotonic() + budget_s
    delay = 0.02
    while True:
        try:
            return duckdb.connect(path, read_only=read_only, config=_CONFIG)
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if not _is_lock_error(exc) or time.monotonic() + delay > deadline:
                if _is_lock_error(exc):
                    raise WarehouseBusy(
                        f"The warehouse stayed locked for {budget_s:.0f}s",
                        hint="a sync or another writer is running; try again shortly",
                    ) from None
                raise _unusable(path, exc) from None
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.5)
        except duckdb.Error as exc:  # corrupt file, wrong format version, ...
            raise _unusable(path, exc) from None


def _check_file(path: str) -> None:
    """A file that is not a DuckDB database is reported as such before DuckDB opens it."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _unusable(path, exc) from None
    if head[8:12] != _MAGIC:
        raise WarehouseUnusable(
            f"{path} is not a DuckDB warehouse file ({'empty' if not head else 'unknown format'})",
            hint="move it aside, then run `fle-core sync` to build the warehouse from the sources",
        )


def _unusable(path: str, exc: BaseException) -> FleError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    err = getattr(exc, "errno", None)
    low = text.lower()
    if err in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) or any(t in low for t in _IO_TEXTS[:3]):
        return WarehouseUnusable(
            f"The disk holding the warehouse is full ({text})",
            hint="free some space, then sync again: every committed batch is kept",
        )
    if err in (errno.EACCES, errno.EPERM, errno.EROFS) or "permission denied" in text.lower():
        return WarehouseUnusable(
            f"Cannot write the warehouse at {path}: {text}",
            hint="check the folder's permissions, or open the workspace read-only (FLE_READ_ONLY=1)",
        )
    return WarehouseUnusable(
        f"The warehouse file {path} cannot be opened: {text}",
        hint="move it aside, then run `fle-core sync` to rebuild it from the sources",
    )


_IO_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS)
_IO_TEXTS = (
    "no space left",
    "quota exceeded",
    "file too large",
    "permission denied",
    "read-only file system",
)


@contextlib.contextmanager
def translate_io_errors(ws: Workspace) -> Iterator[None]:
    """Turn a full disk, a permission problem or a read-only file system under the warehouse
    into a ``WarehouseUnusable`` naming the real cause (DuckDB reports a full disk at commit
    as a ``TransactionException``). Sync wraps each source in this."""
    try:
        yield
    except (duckdb.Error, OSError) as exc:
        if not _is_io_problem(exc):
            raise
        raise _unusable(str(ws.warehouse_path), exc) from exc


def _is_io_problem(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in _IO_ERRNOS:
        return True
    return isinstance(exc, duckdb.Error) and any(t in str(exc).lower() for t in _IO_TEXTS)


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """``BEGIN`` … ``COMMIT``; on any exception (a signal included) roll back through
    ``rollback`` and re-raise. Every write transaction of the warehouse goes through this."""
    con.execute("BEGIN")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        rollback(con)
        raise


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back after a failure without hiding it.

    DuckDB aborts a transaction itself when a statement fails at commit (a full
    disk), and a second ``ROLLBACK`` then raises "no transaction is active",
    which would replace the real error. Call this only inside ``except``.
    """
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


class _NeedsUpgrade(WarehouseUnusable):
    """A warehouse of an older release that only lacks nullable columns: a writer adds them."""


@contextlib.contextmanager
def reader(ws: Workspace, budget_s: float = _READ_RETRY_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived read-only connection. Raises ``WarehouseMissing`` before first sync.

    A warehouse written by an older release that only lacks columns is upgraded in place
    first (unless the workspace is read-only), so it opens as it was, nothing lost."""
    if not ws.warehouse_path.exists():
        raise WarehouseMissing(
            "Nothing has been synced into this workspace yet",
            hint="run `fle-core sync` or launch a demo sweep",
        )
    con = _connect_with_retry(str(ws.warehouse_path), True, budget_s)
    try:
        _check_layout(con, str(ws.warehouse_path), writable=False, inode=_stat_inode(ws.warehouse_path))
    except _NeedsUpgrade:
        con.close()
        if ws.read_only:
            raise
        with writer(ws, lock_timeout_s=max(budget_s, 30.0)):
            pass  # ensure_schema adds the missing columns
        con = _connect_with_retry(str(ws.warehouse_path), True, budget_s)
    except BaseException:
        con.close()
        raise
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
    import filelock  # here, not at the top: readers (`fle-core status`) never need it

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
    con = duckdb.connect(str(tmp), config=_CONFIG)
    try:
        ensure_schema(con)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, ws.warehouse_path)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create missing tables, add missing nullable columns, record the schema version.

    ``WarehouseUnusable`` when the file holds tables of another layout that
    cannot be upgraded in place (a missing NOT NULL column, a changed type).
    """
    try:
        con.execute("SELECT value FROM meta_info WHERE key = 'schema_version'").fetchall()
    except duckdb.CatalogException:
        if _user_tables(con):  # a DuckDB file that some other program made
            raise WarehouseUnusable(
                "The file at the warehouse path is a DuckDB database, but not a warehouse of fle-core",
                hint="move it aside, then run `fle-core sync` to build the warehouse from the sources",
            ) from None
    for stmt in DDL:
        con.execute(stmt)
    _check_layout(con, "the warehouse", writable=True, inode=None)
    con.execute("INSERT OR REPLACE INTO meta_info VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])


def table_ddl(table: str, name: str) -> str:
    """``CREATE TABLE name (...)`` with the columns of one of ``DDL``'s tables."""
    stmt = next(s for s in DDL if s.startswith(f"CREATE TABLE IF NOT EXISTS {table} ("))
    return stmt.replace(f"CREATE TABLE IF NOT EXISTS {table} (", f"CREATE TABLE {name} (", 1)


def column_types(table: str) -> dict[str, str]:
    """Column -> DuckDB type of one of ``DDL``'s tables (what a row must fit before insert)."""
    return {name: kind for name, (kind, _null) in _expected_columns()[table].items()}


@functools.cache
def _expected_columns() -> dict[str, dict[str, tuple[str, bool]]]:
    """Table -> column -> (type, nullable), from ``DDL`` run on an in-memory database
    (correct by construction; ~50 ms, once per process and only when a file is checked)."""
    con = duckdb.connect(":memory:", config=_CONFIG)
    try:
        for stmt in DDL:
            con.execute(stmt)
        return _columns(con)
    finally:
        con.close()


def source_tables() -> list[str]:
    """The tables whose rows belong to a source (they have a ``source`` column)."""
    return sorted(t for t, cols in _expected_columns().items() if "source" in cols)


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, tuple[str, bool]]]:
    rows = con.execute(
        "SELECT table_name, column_name, data_type, is_nullable FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal"
    ).fetchall()
    out: dict[str, dict[str, tuple[str, bool]]] = {}
    for table, column, dtype, nullable in rows:
        out.setdefault(table, {})[column] = (dtype, bool(nullable))
    return out


def _user_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND NOT internal"
        ).fetchall()
    ]


_LAYOUT_OK: set[tuple] = set()
# Tables every warehouse has had; readers of an older file tolerate any other one missing.
_CORE_TABLES = ("meta_info", "steps", "trajectories", "sync_runs", "source_state", "sweep_attempts")


def _check_layout(con: duckdb.DuckDBPyConnection, path: str, *, writable: bool, inode: int | None) -> None:
    """Make sure the file's tables have this version's columns (``WarehouseUnusable`` if not).

    Cheap in the common case: the writer records a fingerprint of ``DDL``
    (``meta_info.ddl``) once the layout matched, and a file carrying this code's
    fingerprint is not inspected again. Otherwise the columns are compared (once
    per process and file); the writer adds missing nullable columns, so an older
    warehouse is upgraded by the next sync.
    """
    try:
        meta = dict(
            con.execute("SELECT key, value FROM meta_info WHERE key IN ('schema_version', 'ddl')").fetchall()
        )
    except duckdb.CatalogException:
        raise WarehouseUnusable(
            f"{path} is a DuckDB database, but not a warehouse of fle-core",
            hint="move it aside, then run `fle-core sync` to build the warehouse from the sources",
        ) from None
    version = int(meta["schema_version"]) if str(meta.get("schema_version", "")).isdigit() else 0
    if version > SCHEMA_VERSION:
        raise WarehouseUnusable(
            f"The warehouse was written by a newer fle-core (schema {version}; this one reads {SCHEMA_VERSION})",
            hint="upgrade fle-core, or rebuild the warehouse with this version (`fle-core sync --full`)",
        )
    key = (inode, version)  # a file that passed the writer's check passes a reader's
    if meta.get("ddl") == _ddl_fingerprint():
        return
    if inode is None and writable:
        inode = _db_inode(con)
        key = (inode, version)
    if key in _LAYOUT_OK:
        return
    have = _columns(con)
    problems = []
    upgradable = True  # every problem is a nullable column the writer adds itself
    for table, columns in _expected_columns().items():
        if table not in have:
            if not writable and table not in _CORE_TABLES:
                continue  # a table added later (sync_notes, ...): the next sync creates it
            problems.append(f"table {table} is missing")
            continue
        for column, (dtype, nullable) in columns.items():
            got = have[table].get(column)
            if got is None and writable and nullable:
                con.execute(f'ALTER TABLE {table} ADD COLUMN "{column}" {dtype}')
            elif got is None:
                problems.append(f"{table}.{column} is missing")
                upgradable = upgradable and nullable
            elif got[0] != dtype:
                problems.append(f"{table}.{column} is {got[0]}, not {dtype}")
                upgradable = False
    if problems:
        raise (_NeedsUpgrade if upgradable and not writable else WarehouseUnusable)(
            f"The warehouse has an older or different layout: {'; '.join(problems[:4])}",
            hint="run `fle-core sync` to upgrade it; if that fails, move warehouse.duckdb aside and sync "
            "again to rebuild it from the sources"
            if not writable
            else "move warehouse.duckdb aside, then run `fle-core sync` to rebuild it from the sources",
        )
    if writable:
        con.execute("INSERT OR REPLACE INTO meta_info VALUES ('ddl', ?)", [_ddl_fingerprint()])
    if inode is not None:
        _LAYOUT_OK.add(key)


@functools.cache
def _ddl_fingerprint() -> str:
    return hashlib.sha256("\n".join(DDL).encode()).hexdigest()[:16]


def _stat_inode(path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _db_inode(con: duckdb.DuckDBPyConnection) -> int | None:
    row = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    return _stat_inode(row[0]) if row and row[0] else None


def query(ws: Workspace, sql: str, params: list | None = None) -> pl.DataFrame:
    """Run one parameterized read query and return a Polars frame."""
    with reader(ws) as con:
        return con.sql(sql, params=params or None).pl()


def data_version(ws: Workspace) -> int:
    """The latest successful ``sync_id`` that changed data (0 when nothing is synced). Cheap.

    A sync that adds no rows (and changes no sweep attempt) leaves it where it
    was, so caches stay warm and shared views do not claim newer data.
    """
    if not ws.warehouse_path.exists():
        return 0
    with reader(ws) as con:
        rows = con.execute("SELECT value FROM meta_info WHERE key = 'data_version'").fetchall()
        if not rows:  # a warehouse from before schema 2
            rows = con.execute("SELECT max(sync_id) FROM sync_runs WHERE status = 'ok'").fetchall()
    return int(rows[0][0] or 0)


def last_sync_id(ws: Workspace) -> int:
    """The newest sync run of any status (0 before the first): the sync history's version."""
    if not ws.warehouse_path.exists():
        return 0
    with reader(ws) as con:
        return int(con.execute("SELECT coalesce(max(sync_id), 0) FROM sync_runs").fetchall()[0][0])


def set_data_version(con: duckdb.DuckDBPyConnection, sync_id: int, changed: bool) -> int:
    """Record ``sync_id`` as the data version when it changed data, or when it is the
    first successful sync (0 keeps meaning "never synced"). Inside the run's transaction."""
    rows = con.execute("SELECT value FROM meta_info WHERE key = 'data_version'").fetchall()
    if not rows:  # schema 1 had no such key: the version was the newest ok sync
        rows = con.execute(
            "SELECT max(sync_id) FROM sync_runs WHERE status = 'ok' AND sync_id < ?", [int(sync_id)]
        ).fetchall()
    current = int(rows[0][0] or 0)
    new = int(sync_id) if changed or current == 0 else current
    con.execute("INSERT OR REPLACE INTO meta_info VALUES ('data_version', ?)", [str(new)])
    return new


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> Any:
    """The single value of a query that always returns one row (an aggregate)."""
    row = con.execute(sql, params or []).fetchone()
    if row is None:
        raise RuntimeError(f"query returned no row: {sql}")
    return row[0]
