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
from fle_core.warehouse import _stream, inspect_sync
from fle_core.warehouse import store as warehouse
from fle_core.workspace import SourceSpec, Workspace, sqlite_path

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)

Progress = Callable[[int, "int | None"], None]

# The sweep facts sync needs, owned here so that the warehouse never imports the
# sweeps layer: one row per sweep attempt, with these columns. The sweeps layer
# supplies them (``fle_core.sweeps.facts.attempts_for_sync``).
ATTEMPT_COLUMNS = (
    "source",
    "version",
    "sweep_id",
    "cell_id",
    "model",
    "task",
    "params_json",
    "trial",
    "attempt",
    "status",
)
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

    @property
    def source(self) -> str:
        """The synced source name(s), comma-joined."""
        return ", ".join(self.sources)

    @property
    def sync_id(self) -> int:
        """The newest sync id of this call: the warehouse data version it produced."""
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
        sec = ws.section("sync")
        try:
            return cls(
                max(1, int(sec.get("batch_rows", DEFAULT_BATCH_ROWS))),
                bool(sec.get("copy_code", False)),
                max(0, int(sec.get("pg_overlap_ids", DEFAULT_PG_OVERLAP_IDS))),
                max(0.0, float(sec.get("writer_hold_s", DEFAULT_WRITER_HOLD_S))),
                max(1, int(sec.get("read_workers", DEFAULT_READ_WORKERS))),
                max(1, int(sec.get("writer_threads", DEFAULT_WRITER_THREADS))),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"[sync] in {ws.config_path} has a bad value: {exc}") from None


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
    runs: list[_Run] = []
    errors: list[FleError] = []
    with warehouse.write_lock(ws):
        for spec in specs:
            try:
                runs.append(_sync_source(ws, spec, full, progress, opts, attempts))
            except FleError as exc:
                if len(specs) == 1:
                    raise
                log.error("sync of %s failed: %s", spec.name, exc)
                errors.append(exc)
    if errors:
        raise errors[0]
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
@dataclass
class _Run:
    source: str
    sync_id: int
    wm_before: int
    wm_after: int
    rows_added: int = 0
    table_rows: int = 0  # rows in ``steps`` (all sources) when the run opened
    problems: list[str] = field(default_factory=list)


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
) -> _Run:
    """Sync one source. A failure before the run opens (source down, bad schema) is
    recorded as a ``failed`` run when a warehouse exists, and changes no data."""
    if spec.kind == "inspect":
        return _sync_inspect(ws, spec, full, progress, opts, attempts)
    run: _Run | None = None
    try:
        with programs.connect(spec) as conn:
            cols = programs.column_types(conn)
            upto = programs.max_id(conn)
            session = _Session(ws, opts.writer_hold_s, opts.writer_threads)
            try:
                run = _open_run(session.con(), spec, full)
                _copy_rows(session, conn, cols, run, spec, upto, progress, opts)
                _finish_run(session.con(), run, attempts() if attempts else None)
            finally:
                session.close()
    except BaseException as exc:
        if run is not None:
            _mark_run(
                ws, run, "failed" if isinstance(exc, Exception) else "interrupted", _error_text(exc, spec)
            )
        elif isinstance(exc, SourceError) and ws.warehouse_path.exists():
            _record_failure(ws, spec, exc, full)
        raise
    return run


def _sync_inspect(
    ws: Workspace,
    spec: SourceSpec,
    full: bool,
    progress: Progress | None,
    opts: _Options,
    attempts: AttemptsProvider | None,
) -> _Run:
    """A folder of Inspect logs (``inspect_sync``). When no log changed and the sweep
    attempts are as stored, no run is opened: the data version stays as it is."""
    run: _Run | None = None
    try:
        frame = attempts() if attempts else None
        plan = inspect_sync.plan(ws, spec, full, frame, ATTEMPT_COLUMNS)
        if plan.unchanged and plan.attempts_same and ws.warehouse_path.exists():
            return _Run(spec.name, plan.data_version, 0, 0)
        session = _Session(ws, opts.writer_hold_s, opts.writer_threads)
        try:
            run = _open_run(session.con(), spec, full)
            done = inspect_sync.apply(session, ws, plan, run.sync_id, progress)
            run.rows_added, run.problems = done.rows_added, done.problems
            note = f"{len(done.problems)} log(s) could not be read: " + "; ".join(done.problems)
            session.con().execute(
                "UPDATE sync_runs SET rows_added = ?, error = ? WHERE sync_id = ?",
                [done.rows_added, note if done.problems else None, run.sync_id],
            )
            _finish_run(session.con(), run, frame)
        finally:
            session.close()
    except BaseException as exc:
        if run is not None:
            _mark_run(
                ws, run, "failed" if isinstance(exc, Exception) else "interrupted", _error_text(exc, spec)
            )
        elif isinstance(exc, SourceError) and ws.warehouse_path.exists():
            _record_failure(ws, spec, exc, full)
        raise
    return run


def _copy_rows(
    session: _Session,
    conn,
    cols,
    run: _Run,
    spec: SourceSpec,
    upto: int,
    progress: Progress | None,
    opts: _Options,
) -> None:
    """Stream ``(watermark, upto]`` (minus the Postgres overlap) batch by batch.

    SQLite is first read with bare columns (fast); if a value of an unexpected
    storage class trips the driver, the rest is re-read from the committed
    watermark with per-value conversion (``robust``).
    """
    start = run.wm_before
    if spec.kind == "postgres" and start > 0:
        start = max(0, start - opts.pg_overlap_ids)
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
                run.rows_added += _write_batch(session.con(), run, table)
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


def _open_run(con, spec: SourceSpec, full: bool) -> _Run:
    """Start a ``running`` sync run (and wipe the source for ``full``) in one transaction."""
    con.execute("BEGIN")
    try:
        con.execute(
            "UPDATE sync_runs SET status = 'interrupted', finished_at = now()::TIMESTAMP, "
            "error = 'the sync process stopped before finishing' WHERE status = 'running'"
        )
        sync_id = con.execute("SELECT coalesce(max(sync_id), 0) + 1 FROM sync_runs").fetchone()[0]
        row = con.execute("SELECT watermark FROM source_state WHERE source = ?", [spec.name]).fetchone()
        wm = int(row[0] or 0) if row else 0
        if full:
            con.execute("DELETE FROM steps WHERE source = ?", [spec.name])
            con.execute("DELETE FROM trajectories WHERE source = ?", [spec.name])
            wm = 0
        con.execute(
            "INSERT INTO source_state (source, kind, display_url, watermark) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (source) DO UPDATE SET kind = excluded.kind, "
            "display_url = excluded.display_url, watermark = excluded.watermark",
            [spec.name, spec.kind, spec.display_url(), wm],
        )
        con.execute(
            "INSERT INTO sync_runs (sync_id, source, started_at, status, rows_added, "
            "watermark_before, watermark_after, full_rebuild) "
            "VALUES (?, ?, now()::TIMESTAMP, 'running', 0, ?, ?, ?)",
            [sync_id, spec.name, wm, wm, full],
        )
        table_rows = con.execute("SELECT count(*) FROM steps").fetchone()[0]
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return _Run(spec.name, int(sync_id), wm, wm, table_rows=int(table_rows))


def _finish_run(con, run: _Run, attempts: pl.DataFrame | None) -> None:
    """Mark the run ``ok`` and replace ``sweep_attempts``, in one transaction."""
    con.execute("BEGIN")
    try:
        con.execute(
            "UPDATE sync_runs SET status = 'ok', finished_at = now()::TIMESTAMP WHERE sync_id = ?",
            [run.sync_id],
        )
        con.execute("UPDATE source_state SET last_sync_id = ? WHERE source = ?", [run.sync_id, run.source])
        if attempts is not None:
            con.register("_attempts", attempts.to_arrow())
            con.execute("DELETE FROM sweep_attempts")
            con.execute(
                f"INSERT INTO sweep_attempts BY NAME SELECT {', '.join(ATTEMPT_COLUMNS)} FROM _attempts"
            )
            con.unregister("_attempts")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _mark_run(ws: Workspace, run: _Run, status: str, error: str) -> None:
    try:
        with warehouse.rw_connection(ws, budget_s=30) as con:
            con.execute(
                "UPDATE sync_runs SET status = ?, error = ?, finished_at = now()::TIMESTAMP "
                "WHERE sync_id = ?",
                [status, error, run.sync_id],
            )
    except Exception as exc:  # noqa: BLE001
        log.warning("could not record the %s status of sync %s: %s", status, run.sync_id, exc)


def _record_failure(ws: Workspace, spec: SourceSpec, exc: BaseException, full: bool) -> None:
    """A run that failed before it began still shows up in ``sync_runs``."""
    with warehouse.rw_connection(ws) as con:
        con.execute("BEGIN")
        sync_id = warehouse.scalar(con, "SELECT coalesce(max(sync_id), 0) + 1 FROM sync_runs")
        row = con.execute("SELECT watermark FROM source_state WHERE source = ?", [spec.name]).fetchone()
        wm = int(row[0] or 0) if row else None
        con.execute(
            "INSERT INTO sync_runs (sync_id, source, started_at, finished_at, status, rows_added, "
            "watermark_before, watermark_after, full_rebuild, error) VALUES "
            "(?, ?, now()::TIMESTAMP, now()::TIMESTAMP, 'failed', 0, ?, ?, ?, ?)",
            [sync_id, spec.name, wm, wm, full, _error_text(exc, spec)],
        )
        con.execute("COMMIT")


def _error_text(exc: BaseException, spec: SourceSpec) -> str:
    text = str(exc) if isinstance(exc, FleError) else f"{type(exc).__name__}: {exc}"
    return programs._scrub(text, spec)


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
INSERT INTO steps BY NAME
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
  TRY_CAST(b.created_at AS TIMESTAMP) AS created_at,
  b.version_description, b.meta, b.achievements_json, b.timing_metrics_json,
  nullif(concat_ws(',',
    CASE WHEN d.d_task IS NULL THEN 'unparsed_task' END,
    CASE WHEN d.meta_state = 2 THEN 'malformed_meta' END,
    CASE WHEN b.version IS NULL THEN 'missing_version' END), '') AS parse_flags,
  {{code}}
  $sync_id AS sync_id
FROM _batch b LEFT JOIN d ON b.model IS NOT DISTINCT FROM d.k_model
  AND b.meta IS NOT DISTINCT FROM d.k_meta AND b.version_description IS NOT DISTINCT FROM d.k_vd
{{where}}
"""

_TRAJ_SQL = """
INSERT INTO trajectories BY NAME
SELECT s.source, s.version, s.instance,
  mode(s.model) AS model, mode(s.task) AS task, max(s.num_agents) AS num_agents,
  mode(s.sweep_id) AS sweep_id, count(*) AS steps, max(s.depth) AS max_depth,
  max(s.value) FILTER (WHERE NOT isnan(s.value) AND NOT isinf(s.value)) AS best_value,
  arg_max_null(s.value, (coalesce(s.depth, '-inf'::DOUBLE), s.id)) AS final_value,
  sum(s.prompt_tokens) AS prompt_tokens, sum(s.completion_tokens) AS completion_tokens,
  sum(s.total_tokens) AS total_tokens, count_if(s.error_occurred) AS error_steps,
  arg_max(s.production_score, (coalesce(s.depth, '-inf'::DOUBLE), s.id))
    FILTER (WHERE s.production_score IS NOT NULL) AS production_score,
  bool_or(s.simulated) AS simulated, min(s.created_at) AS first_at, max(s.created_at) AS last_at,
  nullif(array_to_string(list_sort(list_distinct(flatten(
    list(string_split(s.parse_flags, ',')) FILTER (WHERE s.parse_flags IS NOT NULL)))), ','), '')
    AS parse_flags,
  max(s.sync_id) AS last_sync_id
FROM steps s JOIN _touched k ON s.version = k.version AND s.instance = k.instance
WHERE s.source = ? AND s.version BETWEEN ? AND ?
GROUP BY s.source, s.version, s.instance
"""


def _write_batch(con, run: _Run, table: pa.Table) -> int:
    """Insert one batch + recompute its trajectories + advance the watermark, atomically."""
    ids = table.column("id")
    overlap = int(pc.min(ids).as_py()) <= run.wm_after
    wm = max(run.wm_after, int(pc.max(ids).as_py()))
    where = (
        "WHERE NOT EXISTS (SELECT 1 FROM steps s WHERE s.source = $source AND s.id = b.id)" if overlap else ""
    )
    sql = _INSERT_SQL.replace("{where}", where).replace(
        "{code}", "b.code, b.response," if "code" in table.schema.names else ""
    )
    con.register("_batch", table)
    con.execute("BEGIN")
    try:
        _register_descriptions(con, table.column("version_description"))
        added = int(con.execute(sql, {"source": run.source, "sync_id": run.sync_id}).fetchone()[0])
        _refresh_trajectories(con, run.source)
        con.execute("UPDATE source_state SET watermark = ? WHERE source = ?", [wm, run.source])
        con.execute(
            "UPDATE sync_runs SET rows_added = rows_added + ?, watermark_after = ? WHERE sync_id = ?",
            [added, wm, run.sync_id],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_batch")
    run.wm_after = wm
    return added


def _refresh_trajectories(con, source: str) -> None:
    """Recompute the trajectories this batch touched (from all their steps)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _touched AS SELECT DISTINCT version, "
        "coalesce(instance, -1) AS instance FROM _batch WHERE version IS NOT NULL"
    )
    lo, hi = con.execute("SELECT min(version), max(version) FROM _touched").fetchone()
    if lo is None:
        return
    con.execute(
        "DELETE FROM trajectories t USING _touched k WHERE t.source = ? "
        "AND t.version = k.version AND t.instance = k.instance",
        [source],
    )
    con.execute(_TRAJ_SQL, [source, lo, hi])


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
            [p.num_agents for p in parsed],
        ],
    )
