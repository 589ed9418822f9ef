"""Incremental, batch-atomic sync of FLE sources into the DuckDB warehouse.

One run per source (see ``docs/sync.md``):

1. Connect to the source and fix the upper bound ``upto = max(programs.id)``.
   A source that is down or unusable changes no data (a ``failed`` run is
   recorded when a warehouse exists).
2. Under the cross-process write lock (held for the whole ``sync()``), open a
   *run* in ``sync_runs`` (``status = running``; stale ``running`` rows of killed
   syncs become ``interrupted``). ``full`` deletes the source's rows in the
   same transaction.
3. Stream lean rows with ``watermark < id <= upto`` in id order, re-batched to
   ``[sync] batch_rows``. Each batch is **one transaction**: insert steps (with
   derived columns), recompute the touched trajectories, advance the watermark.
   A kill at any point therefore resumes exactly after the last committed
   batch: no duplicates, no gaps. The read-write connection is released after
   at most ``[sync] writer_hold_s`` seconds, so readers get in between batches.
4. Mark the run ``ok`` and refresh ``sweep_attempts`` from the control store.

Postgres ids can commit out of order (a slow transaction may commit id 100
after id 101 was synced), so incremental Postgres runs re-read the last
``[sync] pg_overlap_ids`` ids and insert only ids not yet present.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from fle_core.errors import ConfigError, FleError, SourceError, SourceUnavailable
from fle_core.sources import inspect_logs, programs
from fle_core.tasks import parse_version_description
from fle_core.warehouse import _poison, _runs, _stream, inspect_sync
from fle_core.warehouse import store as warehouse
from fle_core.warehouse._runs import ATTEMPT_COLUMNS as ATTEMPT_COLUMNS  # the sweeps layer's facts
from fle_core.warehouse._runs import Run
from fle_core.workspace import SourceSpec, Workspace, sqlite_path

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)

Progress = Callable[[int, "int | None"], None]

# The sweep facts sync needs, owned by the warehouse so that it never imports the
# sweeps layer: one row per sweep attempt, with ``ATTEMPT_COLUMNS`` (defined in
# ``_runs``, re-exported here). The sweeps layer supplies them
# (``fle_core.sweeps.facts.attempts_for_sync``).
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


@dataclass(frozen=True)
class SyncResult:
    """What one ``sync()`` call did. Watermarks are keyed by source name."""

    sources: tuple[str, ...]
    sync_ids: tuple[int, ...]
    rows_added: int
    watermark_before: dict[str, int]
    watermark_after: dict[str, int]
    duration_s: float
    full: bool = False
    rows_by_source: dict[str, int] = field(default_factory=dict)
    #: per source, what was kept but could not be read (e.g. a corrupt Inspect log: name + reason)
    problems: dict[str, list[str]] = field(default_factory=dict)
    data_version: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        """The synced source name(s), comma-joined."""
        return ", ".join(self.sources)

    @property
    def sync_id(self) -> int:
        """The newest sync run id of this call (``data_version`` only moves when data changed)."""
        return max(self.sync_ids, default=0)


@dataclass
class _Options:
    batch_rows: int = DEFAULT_BATCH_ROWS
    copy_code: bool = False
    pg_overlap_ids: int = DEFAULT_PG_OVERLAP_IDS
    writer_hold_s: float = DEFAULT_WRITER_HOLD_S
    read_workers: int = DEFAULT_READ_WORKERS
    writer_threads: int = DEFAULT_WRITER_THREADS

    @classmethod
    def from_workspace(cls, ws: Workspace) -> _Options:
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


# ------------------------------------------------------------------ public API
def sync(
    ws: Workspace,
    source: str | None = None,
    full: bool = False,
    progress: Progress | None = None,
    attempts: AttemptsProvider | None = None,
) -> SyncResult:
    """Sync one source (name or URL) or, with ``source=None``, the default ones.

    ``attempts`` supplies the sweep facts (``ATTEMPT_COLUMNS``) that decide
    which versions are superseded; it is called once per source, and the
    ``sweep_attempts`` table is replaced in the same transaction that finishes
    the run. ``None`` leaves that table as it is. The CLI, the app and the
    runner pass ``fle_core.sweeps.facts.attempts_for_sync``.

    ``None`` means ``default_source`` if the config sets it, else every
    configured source that exists (see ``select_sources``). With several
    sources, an error in one is raised after the others were synced.
    ``progress(rows_done, rows_total)`` is called after each committed batch.
    """
    specs = select_sources(ws, source)
    opts = _Options.from_workspace(ws)
    t0 = time.monotonic()
    runs: list[Run] = []
    errors: list[FleError] = []
    with warehouse.translate_io_errors(ws), warehouse.write_lock(ws):
        for spec in specs:
            try:
                with warehouse.translate_io_errors(ws):
                    runs.append(_sync_source(ws, spec, full, progress, opts, attempts))
            except FleError as exc:
                if len(specs) == 1:
                    raise
                log.error("sync of %s failed: %s", spec.name, exc)
                errors.append(exc)
    if errors:
        raise errors[0]
    for r in runs:
        for note in r.warnings:
            log.warning("%s: %s", r.source, note)
    return SyncResult(
        sources=tuple(r.source for r in runs),
        sync_ids=tuple(r.sync_id for r in runs),
        rows_added=sum(r.rows_added for r in runs),
        watermark_before={r.source: r.wm_before for r in runs},
        watermark_after={r.source: r.wm_after for r in runs},
        duration_s=time.monotonic() - t0,
        full=full,
        rows_by_source={r.source: r.rows_added for r in runs},
        problems={r.source: r.problems for r in runs if r.problems},
        data_version=runs[-1].data_version if runs else warehouse.data_version(ws),
        warnings=tuple(f"{r.source}: {note}" for r in runs for note in r.warnings),
    )


def select_sources(ws: Workspace, source: str | None) -> list[SourceSpec]:
    """The sources a sync covers: the named one; else ``default_source`` when the
    config sets it; else every configured source that exists (SQLite files that
    are missing are skipped; Postgres sources are always tried)."""
    if source is not None:
        return [ws.source(source)]
    if ws.config.get("default_source"):
        return [ws.source(None)]
    specs = [s for s in ws.sources().values() if _present(s)]
    if not specs:
        raise SourceUnavailable(
            "No source to sync: neither FLE's data.db nor its inspect_logs/ folder is in the workspace, "
            "and no other source is configured",
            hint="pass --source sqlite:///PATH, postgresql://... or a folder of Inspect logs, "
            "or add [sources.NAME] to config.toml",
        )
    return specs


def _present(spec: SourceSpec) -> bool:
    """SQLite files and Inspect log folders that are missing are skipped by default."""
    if spec.kind == "sqlite":
        return sqlite_path(spec.resolved_url()).is_file()
    if spec.kind == "inspect":
        return inspect_logs.source_root(spec).exists()
    return True


# ------------------------------------------------------------------ one source
class _Session:
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


def _sync_source(
    ws: Workspace,
    spec: SourceSpec,
    full: bool,
    progress: Progress | None,
    opts: _Options,
    attempts: AttemptsProvider | None,
) -> Run:
    """Sync one source. A failure before the run opens (source down, bad schema) is
    recorded as a ``failed`` run when a warehouse exists, and changes no data."""
    if spec.kind == "inspect":
        return _sync_inspect(ws, spec, full, progress, opts, attempts)
    run: Run | None = None
    try:
        with programs.connect(spec) as conn:
            cols = programs.column_types(conn)
            upto = programs.max_id(conn)
            floor = min(0, programs.min_id(conn) - 1)  # ids <= 0 occur in hand-made data
            session = _Session(ws, opts.writer_hold_s, opts.writer_threads)
            try:
                run = _runs.open_run(session.con(), spec, full)
                start = floor if run.fresh else run.wm_before
                if spec.kind == "postgres" and not run.fresh:
                    start = _late_commit_start(
                        session.con(), conn, run, max(floor, start - opts.pg_overlap_ids)
                    )
                session.maybe_release()  # readers get in before the first batch, too
                _copy_rows(session, conn, cols, run, spec, start, upto, progress, opts)
                _runs.finish_run(session.con(), run, attempts() if attempts else None)
            finally:
                session.close()
    except BaseException as exc:
        _runs.record_abort(ws, spec, run, exc, full)
        raise
    return run


def _sync_inspect(
    ws: Workspace,
    spec: SourceSpec,
    full: bool,
    progress: Progress | None,
    opts: _Options,
    attempts: AttemptsProvider | None,
) -> Run:
    """A folder of Inspect logs (``inspect_sync``). When no log changed and the sweep
    attempts are as stored, no run is opened: the data version stays as it is.

    ``--full`` re-reads every log; each batch of logs replaces its own rows in one
    transaction (there is no ``rebuild_*`` swap for logs), and a log whose file did
    not change keeps the ``sync_id`` it had, so shared views pinned earlier still
    show it."""
    run: Run | None = None
    try:
        frame = attempts() if attempts else None
        plan = inspect_sync.plan(ws, spec, full, frame, ATTEMPT_COLUMNS)
        if plan.unchanged and plan.attempts_same and ws.warehouse_path.exists():
            return Run(spec.name, plan.data_version, 0, 0, data_version=plan.data_version)
        session = _Session(ws, opts.writer_hold_s, opts.writer_threads)
        try:
            run = _runs.open_run(session.con(), spec, full=False)  # logs are replaced per batch
            done = inspect_sync.apply(session, ws, plan, run.sync_id, progress)
            run.rows_added, run.rows_removed, run.problems = done.rows_added, done.rows_deleted, done.problems
            run.content_changed = bool(done.rows_changed or done.rows_deleted)
            note = f"{len(done.problems)} log(s) could not be read: " + "; ".join(done.problems)
            session.con().execute(
                "UPDATE sync_runs SET rows_added = ?, error = ?, full_rebuild = ? WHERE sync_id = ?",
                [done.rows_added, note if done.problems else None, full, run.sync_id],
            )
            _runs.finish_run(session.con(), run, frame)
        finally:
            session.close()
    except BaseException as exc:
        _runs.record_abort(ws, spec, run, exc, full)
        raise
    return run


def _late_commit_start(con, conn, run: Run, start: int) -> int:
    """Where to start reading, given rows that committed below the overlap window.

    Postgres allocates ids before commit, so a transaction slower than
    ``pg_overlap_ids`` ids commits rows below ``start``. Counting the ids at or
    below ``start`` on both sides detects them (an index-only count on the
    source); the missing ids are then looked up and the read starts just before
    the lowest one (``_write_batch`` skips the rows already present).
    """
    src = programs.count_rows(conn, _MIN_ID, start)
    have = _runs.first_row(
        con, f"SELECT count(*) FROM {run.steps} WHERE source = ? AND id <= ?", [run.source, start]
    )[0]
    if src <= have:
        return start
    ids = conn.arrow("SELECT id FROM programs WHERE id <= ? ORDER BY id", [int(start)])
    con.register("_source_ids", ids)
    try:
        lowest, n, highest = _runs.first_row(
            con,
            f"SELECT min(i.id), count(*), max(i.id) FROM _source_ids i WHERE NOT EXISTS "
            f"(SELECT 1 FROM {run.steps} s WHERE s.source = ? AND s.id = i.id)",
            [run.source],
        )
    finally:
        con.unregister("_source_ids")
    if not n:
        return start
    run.warnings.append(
        f"{n:,} row(s) (ids {lowest}..{highest}) committed in the source after sync had passed "
        f"their ids, more than [sync] pg_overlap_ids below the watermark; they are synced now. "
        "Raise pg_overlap_ids if this repeats."
    )
    return int(lowest) - 1


_MIN_ID = -(2**63)


def _copy_rows(
    session: _Session,
    conn,
    cols,
    run: Run,
    spec: SourceSpec,
    start: int,
    upto: int,
    progress: Progress | None,
    opts: _Options,
) -> None:
    """Stream ``(start, upto]`` batch by batch.

    SQLite is first read with bare columns (fast); if a value of an unexpected
    storage class trips the driver, the rest is re-read from the committed
    watermark with per-value conversion (``robust``).
    """
    # Exact for SQLite (a cheap b-tree count); for Postgres count(*) would scan the
    # table, so the id range is the estimate (exact unless ids have gaps).
    if upto <= start:
        total = 0
    elif spec.kind == "sqlite":
        total = programs.count_rows(conn, start, upto)
    else:
        total = upto - start
    if progress:
        progress(0, total)
    done = 0
    robust = False
    while True:
        try:
            first = _first_batch_rows(run.table_rows + run.rows_added, opts.batch_rows)
            for table in _tables(spec, conn, cols, start, upto, total - done, opts, robust, first):
                run.rows_added += _write_table(session, run, table)
                session.maybe_release()
                done += table.num_rows
                if progress:
                    progress(done, total)
            if progress and done != total:
                progress(done, done)  # the estimate was off (id gaps): report completion
            return
        except SourceError as exc:
            if spec.kind != "sqlite" or robust:
                raise
            log.info(
                "source %s: mixed value types (%s); re-reading with per-value conversion", spec.name, exc
            )
            robust, start = True, max(start, run.wm_after)


def _first_batch_rows(table_rows: int, batch_rows: int) -> int:
    """Size the first batch so later batches start on a DuckDB row-group boundary."""
    if batch_rows % ROW_GROUP_ROWS:
        return batch_rows
    return batch_rows - table_rows % ROW_GROUP_ROWS


def _tables(
    spec: SourceSpec,
    conn,
    cols,
    start: int,
    upto: int,
    rows: int,
    opts: _Options,
    robust: bool,
    first_rows: int | None = None,
) -> Iterator[pa.Table]:
    """Lean tables of ``(start, upto]`` in id order: parallel id-range chunks when the
    ids are dense enough, else one prefetched stream (see ``_stream``)."""
    if spec.kind == "postgres" and programs.sparse_ids(conn, upto):
        bounds = None
    else:
        bounds = _stream.chunk_bounds(start, upto, rows, opts.batch_rows)
    if bounds is None or opts.read_workers <= 1:
        return _stream.sequential_tables(
            conn, cols, start, upto, opts.batch_rows, opts.copy_code, robust, first_rows
        )
    return _stream.ordered_tables(spec, cols, bounds, opts.copy_code, robust, opts.read_workers)


# ------------------------------------------------------------------ writing one batch
# meta is parsed once per row: json_extract with a list of paths (one JSON value each).
_META_PATHS = [
    "$.model",
    "$.task",
    "$.task_key",
    "$.env_id",
    "$.sweep_id",
    "$.error_occurred",
    "$.production_score",
    "$.simulated",
]
_M = {p[2:]: i + 1 for i, p in enumerate(_META_PATHS)}  # DuckDB lists are 1-based


def _pystr(key: str) -> str:
    """Python's ``str(value)`` of one JSON value (strings unquoted, ``True``/``False``)."""
    return f"CASE j_{key} WHEN 'true' THEN 'True' WHEN 'false' THEN 'False' ELSE mv[{_M[key]}] ->> '$' END"


def _mtext(key: str) -> str:
    """A meta field as text, like ``tasks._str_or_none`` (NULL for null / absent / "")."""
    return f"nullif({_pystr(key)}, '')"


def _mtruthy(key: str) -> str:
    """Python's ``bool(meta[key])`` on one JSON value; NULL when absent or null."""
    v = f"j_{key}"
    return (
        f"CASE WHEN {v} IS NULL OR {v} = 'null' THEN NULL "
        f"WHEN {v} IN ('true', 'false') THEN {v} = 'true' "
        f"WHEN {v} IN ('\"\"', '[]', '{{}}') THEN FALSE "
        f"WHEN starts_with({v}, '\"') OR starts_with({v}, '[') OR starts_with({v}, '{{') THEN TRUE "
        f"ELSE TRY_CAST({v} AS DOUBLE) <> 0 END"
    )


# Mirrors tasks.normalize_task_key (a test checks the two agree).
_GYM_RE = r"^Factorio-(.+?)(?:_\d+)?-v\d+$"
# ``meta.get("task") or meta.get("task_key") or meta.get("env_id")``, as str
_META_TASK = (
    "CASE "
    + " ".join(f"WHEN {_mtruthy(k)} THEN {_pystr(k)}" for k in ("task", "task_key", "env_id"))
    + " END"
)
_NORM_TASK = (
    "CASE WHEN regexp_matches(trim(meta_task_raw, ' \t\n\r'), '{re}') "
    "THEN regexp_extract(trim(meta_task_raw, ' \t\n\r'), '{re}', 1) "
    "ELSE nullif(trim(meta_task_raw, ' \t\n\r'), '') END"
).replace("{re}", _GYM_RE)

# Derived columns depend only on (model, meta, version_description), and a batch holds
# few distinct combinations (FLE's meta is per trajectory, not per step: ~5% of rows in
# the benchmark). So they are computed once per DISTINCT key and joined back to the
# rows, instead of parsing every row's meta (the per-row form cost ~1 s CPU per 1M).
_INSERT_SQL = f"""
INSERT INTO {{steps}} BY NAME
WITH k AS (
  SELECT DISTINCT model AS k_model, meta AS k_meta, version_description AS k_vd FROM _batch
), m AS (
  SELECT k.*,
    CASE WHEN k_meta IS NULL OR k_meta = '' THEN 0
         WHEN ltrim(k_meta)[1] = '{{' AND json_valid(k_meta) THEN 1 ELSE 2 END AS meta_state
  FROM k
), x AS (
  SELECT m.*, CASE WHEN meta_state = 1 THEN json_extract(k_meta, {_META_PATHS!r}) END AS mv FROM m
), xj AS (  -- each JSON value as text once (the CASEs below test it several times)
  SELECT x.*, {", ".join(f"mv[{i}]::VARCHAR AS j_{k}" for k, i in _M.items())} FROM x
), y AS (
  SELECT xj.*, {_META_TASK} AS meta_task_raw FROM xj
), d AS (
  SELECT y.k_model, y.k_meta, y.k_vd, y.meta_state,
    coalesce(nullif(y.k_model, ''), {_mtext("model")}, vd.vd_model) AS d_model,
    coalesce(vd.vd_task, {_NORM_TASK}) AS d_task,
    vd.vd_agents AS d_agents,
    {_mtext("sweep_id")} AS d_sweep_id,
    {_mtruthy("error_occurred")} AS d_error_occurred,
    CASE WHEN j_production_score IN ('true', 'false')
         THEN (j_production_score = 'true')::DOUBLE
         ELSE TRY_CAST({_mtext("production_score")} AS DOUBLE) END AS d_production_score,
    coalesce({_mtruthy("simulated")}, FALSE) AS d_simulated
  FROM y LEFT JOIN _vd vd ON vd.vd = y.k_vd
)
SELECT $source AS source, b.id, b.version, coalesce(b.instance, -1) AS instance, b.depth, b.value,
  b.holdout_value, b.raw_reward, d.d_model AS model, d.d_task AS task, d.d_agents AS num_agents,
  d.d_sweep_id AS sweep_id, d.d_error_occurred AS error_occurred,
  d.d_production_score AS production_score, d.d_simulated AS simulated,
  b.prompt_tokens, b.completion_tokens, b.total_tokens, b.ticks,
  {{created_at}} AS created_at,
  b.version_description, b.meta, b.achievements_json, b.timing_metrics_json,
  nullif(concat_ws(',',
    CASE WHEN d.d_task IS NULL THEN 'unparsed_task' END,
    CASE WHEN d.meta_state = 2 THEN 'malformed_meta' END,
    CASE WHEN b.version IS NULL THEN 'missing_version' END, b._flags), '') AS parse_flags,
  {{code}}
  $sync_id AS sync_id
FROM _batch b LEFT JOIN d ON b.model IS NOT DISTINCT FROM d.k_model
  AND b.meta IS NOT DISTINCT FROM d.k_meta AND b.version_description IS NOT DISTINCT FROM d.k_vd
{{where}}
"""

_TRAJ_SQL = (
    "INSERT INTO {trajectories} BY NAME SELECT "
    + warehouse.TRAJECTORY_AGGREGATES
    + """
FROM {steps} s JOIN _touched k ON s.version = k.version AND s.instance = k.instance
WHERE s.source = ? AND s.version BETWEEN ? AND ?
GROUP BY s.source, s.version, s.instance
"""
)


# Text ``created_at`` (SQLite, or a Postgres text column): a timestamp, or epoch seconds.
_TEXT_CREATED_AT = (
    "coalesce(TRY_CAST(b.created_at AS TIMESTAMP), "
    "make_timestamp(TRY_CAST(round(TRY_CAST(b.created_at AS DOUBLE) * 1e6) AS BIGINT)))"
)


def _write_table(session: _Session, run: Run, table: pa.Table) -> int:
    """Write one lean table; a bad row never stops the source (see ``_poison``).

    A batch that fails on its data is written in halves, in id order (so the
    watermark still advances over a gap-free prefix); a single row that still
    fails is quarantined. Returns the rows added (placeholders included).
    """
    table = _poison.clean(table)
    try:
        return _write_batch(session.con(), run, table)
    except _poison.DATA_ERRORS as exc:
        if table.num_rows > 1:
            half = table.num_rows // 2
            parts = (table.slice(0, half), table.slice(half))
            return sum(_write_table(session, run, part.drop_columns(["_flags"])) for part in parts)
        if not _poison.quarantinable(exc):
            raise
        if run.quarantined >= _poison.MAX_QUARANTINED:
            raise SourceError(
                f"Sync of {run.source!r} stopped: more than {_poison.MAX_QUARANTINED} rows could not be "
                f"written ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                hint="this looks like a problem with the warehouse, not with single rows; see the log",
            ) from exc
        return _quarantine(session.con(), run, table, exc)


def _quarantine(con, run: Run, row: pa.Table, exc: BaseException) -> int:
    """Keep a row that cannot be written as a placeholder with its id and the reason."""
    row_id = int(row.column("id")[0].as_py())
    flag = f"quarantined:{_poison.reason(exc)}"
    log.warning("source %s: row id %s quarantined (%s): %s", run.source, row_id, flag, exc)
    wm = max(run.wm_after, row_id)
    con.execute("BEGIN")
    try:
        added = _runs.first_row(
            con,
            f"INSERT INTO {run.steps} (source, id, parse_flags, sync_id) SELECT ?, ?, ?, ? "
            f"WHERE NOT EXISTS (SELECT 1 FROM {run.steps} WHERE source = ? AND id = ?)",
            [run.source, row_id, flag, run.sync_id, run.source, row_id],
        )[0]
        _advance(con, run, wm, added)
        con.execute("COMMIT")
    except BaseException:
        warehouse.rollback(con)
        raise
    run.wm_after = wm
    run.quarantined += 1
    return int(added)


def _advance(con, run: Run, wm: int, added: int) -> None:
    """Move the watermark (a rebuild keeps the live one until the swap) and the run's count."""
    if not run.rebuild:
        con.execute("UPDATE source_state SET watermark = ? WHERE source = ?", [wm, run.source])
    con.execute(
        "UPDATE sync_runs SET rows_added = rows_added + ?, watermark_after = ? WHERE sync_id = ?",
        [added, wm, run.sync_id],
    )


def _write_batch(con, run: Run, table: pa.Table) -> int:
    """Insert one batch + recompute its trajectories + advance the watermark, atomically."""
    ids = table.column("id")
    overlap = int(pc.min(ids).as_py()) <= run.wm_after
    wm = max(run.wm_after, int(pc.max(ids).as_py()))
    where = (
        f"WHERE NOT EXISTS (SELECT 1 FROM {run.steps} s WHERE s.source = $source AND s.id = b.id)"
        if overlap
        else ""
    )
    text_ts = pa.types.is_string(table.schema.field("created_at").type)
    sql = (
        _INSERT_SQL.replace("{where}", where)
        .replace("{code}", "b.code, b.response," if "code" in table.schema.names else "")
        .replace("{steps}", run.steps)
        .replace("{created_at}", _TEXT_CREATED_AT if text_ts else "TRY_CAST(b.created_at AS TIMESTAMP)")
    )
    con.register("_batch", table)
    con.execute("BEGIN")
    try:
        _register_descriptions(con, table.column("version_description"))
        added = int(_runs.first_row(con, sql, {"source": run.source, "sync_id": run.sync_id})[0])
        _refresh_trajectories(con, run)
        _advance(con, run, wm, added)
        con.execute("COMMIT")
    except BaseException:
        warehouse.rollback(con)
        raise
    finally:
        con.unregister("_batch")
    run.wm_after = wm
    return added


def _refresh_trajectories(con, run: Run) -> None:
    """Recompute the trajectories this batch touched (from all their steps)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _touched AS SELECT DISTINCT version, "
        "coalesce(instance, -1) AS instance FROM _batch WHERE version IS NOT NULL"
    )
    lo, hi = _runs.first_row(con, "SELECT min(version), max(version) FROM _touched")
    if lo is None:
        return
    con.execute(
        f"DELETE FROM {run.trajectories} t USING _touched k WHERE t.source = ? "
        "AND t.version = k.version AND t.instance = k.instance",
        [run.source],
    )
    con.execute(
        _TRAJ_SQL.replace("{trajectories}", run.trajectories).replace("{steps}", run.steps),
        [run.source, lo, hi],
    )


def _register_descriptions(con, col: pa.ChunkedArray) -> None:
    """Parse the batch's DISTINCT ``version_description`` values with ``tasks`` into ``_vd``.

    A batch holds few distinct descriptions (one per run), so this Python step
    is cheap; the join back to the rows happens in SQL.
    """
    vds = [v for v in pc.unique(col).to_pylist() if v is not None]
    parsed = [parse_version_description(v) for v in vds]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _vd AS SELECT unnest(?::VARCHAR[]) AS vd, "
        "unnest(?::VARCHAR[]) AS vd_model, unnest(?::VARCHAR[]) AS vd_task, "
        "unnest(?::INTEGER[]) AS vd_agents",
        [
            vds,
            [p.model for p in parsed],
            [p.task if p.parsed else None for p in parsed],
            [p.num_agents if p.num_agents is None or abs(p.num_agents) < 2**31 else None for p in parsed],
        ],
    )
