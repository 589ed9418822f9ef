"""Incremental, batch-atomic sync of FLE sources into the DuckDB warehouse.

One run per source:

1. Connect to the source first (``SourceUnavailable`` leaves the warehouse
   untouched) and fix the upper bound ``upto = max(programs.id)``.
2. Under the cross-process write lock, open a *run* in ``sync_runs``
   (``status = running``; stale ``running`` rows of killed syncs become
   ``interrupted``). ``--full`` deletes the source's rows in the same transaction.
3. Stream lean rows with ``watermark < id <= upto`` in id order, re-batched to
   ``[sync] batch_rows``. Each batch is **one transaction**: insert steps (with
   derived columns), recompute the touched trajectories, advance the watermark.
   A kill between batches therefore resumes exactly after the last committed
   batch: no duplicates, no gaps. The read-write connection is opened only
   around each batch's write, so readers get in between batches.
4. Mark the run ``ok`` and refresh ``sweep_attempts`` from the control store.

Postgres ids can commit out of order (a slow transaction may commit id 100
after id 101 was synced), so incremental Postgres runs re-read the last
``[sync] pg_overlap_ids`` ids and insert only ids not yet present.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from fle_core import sources, warehouse
from fle_core.errors import FleError, SourceUnavailable
from fle_core.tasks import normalize_task_key, parse_version_description
from fle_core.workspace import SourceSpec, Workspace, sqlite_path

log = logging.getLogger(__name__)

Progress = Callable[[int, "int | None"], None]

DEFAULT_BATCH_ROWS = 50_000
DEFAULT_PG_OVERLAP_IDS = 1_000
_MAX_BATCH_BYTES = 256 * 1024 * 1024


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

    @classmethod
    def from_workspace(cls, ws: Workspace) -> "_Options":
        sec = ws.section("sync")
        return cls(max(1, int(sec.get("batch_rows", DEFAULT_BATCH_ROWS))),
                   bool(sec.get("copy_code", False)),
                   max(0, int(sec.get("pg_overlap_ids", DEFAULT_PG_OVERLAP_IDS))))


# ------------------------------------------------------------------ public API
def sync(ws: Workspace, source: str | None = None, full: bool = False,
         progress: Progress | None = None) -> SyncResult:
    """Sync one source (name or URL) or, with ``source=None``, every configured source.

    With ``None``, SQLite sources whose file does not exist are skipped (FLE's
    ``data.db`` may simply not be there); configured Postgres sources are
    always tried. Errors are raised (after the other sources were synced).
    """
    specs = select_sources(ws, source)
    opts = _Options.from_workspace(ws)
    t0 = time.monotonic()
    runs: list[_Run] = []
    errors: list[FleError] = []
    with warehouse.write_lock(ws):
        for spec in specs:
            try:
                runs.append(_sync_source(ws, spec, full, progress, opts))
            except FleError as exc:
                if len(specs) == 1:
                    raise
                log.error("sync of %s failed: %s", spec.name, exc)
                errors.append(exc)
    if errors:
        raise errors[0]
    return SyncResult(
        sources=tuple(r.source for r in runs), sync_ids=tuple(r.sync_id for r in runs),
        rows_added=sum(r.rows_added for r in runs),
        watermark_before={r.source: r.wm_before for r in runs},
        watermark_after={r.source: r.wm_after for r in runs},
        duration_s=time.monotonic() - t0, full=full,
        rows_by_source={r.source: r.rows_added for r in runs})


def select_sources(ws: Workspace, source: str | None) -> list[SourceSpec]:
    if source is not None:
        return [ws.source(source)]
    specs = [s for s in ws.sources().values()
             if s.kind != "sqlite" or sqlite_path(s.resolved_url()).is_file()]
    if not specs:
        raise SourceUnavailable("No source to sync: FLE's data.db is not in the workspace and "
                                "no other source is configured",
                                hint="pass --source sqlite:///PATH or postgresql://..., "
                                     "or add [sources.NAME] to config.toml")
    return specs


# ------------------------------------------------------------------ one source
@dataclass
class _Run:
    source: str
    sync_id: int
    wm_before: int
    wm_after: int
    rows_added: int = 0


def _sync_source(ws: Workspace, spec: SourceSpec, full: bool, progress: Progress | None,
                 opts: _Options) -> _Run:
    with sources.connect(spec) as conn:
        try:
            cols = sources.column_types(conn)
            upto = sources.max_id(conn)
        except FleError as exc:
            if ws.warehouse_path.exists():
                _record_failure(ws, spec, exc, full)
            raise
        run = _open_run(ws, spec, full)
        try:
            start = run.wm_before
            if spec.kind == "postgres" and start > 0:
                start = max(0, start - opts.pg_overlap_ids)
            total = sources.count_rows(conn, start, upto) if upto > start else 0
            if progress:
                progress(0, total)
            done = 0
            batches = sources.lean_batches(conn, cols, start, upto, opts.copy_code)
            for table in _prefetch(_rebatch(batches, opts.batch_rows)):
                with warehouse.rw_connection(ws) as con:
                    run.rows_added += _write_batch(con, run, table)
                done += table.num_rows
                if progress:
                    progress(done, total)
            _finish_run(ws, run)
        except BaseException as exc:
            status = "failed" if isinstance(exc, Exception) else "interrupted"
            _mark_run(ws, run, status, _error_text(exc, spec))
            raise
    return run


def _open_run(ws: Workspace, spec: SourceSpec, full: bool) -> _Run:
    """Start a ``running`` sync run (and wipe the source for ``full``) in one transaction."""
    with warehouse.rw_connection(ws) as con:
        con.execute("BEGIN")
        con.execute("UPDATE sync_runs SET status = 'interrupted', finished_at = now()::TIMESTAMP, "
                    "error = 'the sync process stopped before finishing' WHERE status = 'running'")
        sync_id = con.execute("SELECT coalesce(max(sync_id), 0) + 1 FROM sync_runs").fetchone()[0]
        row = con.execute("SELECT watermark FROM source_state WHERE source = ?", [spec.name]).fetchone()
        wm = int(row[0] or 0) if row else 0
        if full:
            con.execute("DELETE FROM steps WHERE source = ?", [spec.name])
            con.execute("DELETE FROM trajectories WHERE source = ?", [spec.name])
            wm = 0
        con.execute("INSERT INTO source_state (source, kind, display_url, watermark) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (source) DO UPDATE SET kind = excluded.kind, "
                    "display_url = excluded.display_url, watermark = excluded.watermark",
                    [spec.name, spec.kind, spec.display_url(), wm])
        con.execute("INSERT INTO sync_runs (sync_id, source, started_at, status, rows_added, "
                    "watermark_before, watermark_after, full_rebuild) "
                    "VALUES (?, ?, now()::TIMESTAMP, 'running', 0, ?, ?, ?)",
                    [sync_id, spec.name, wm, wm, full])
        con.execute("COMMIT")
    return _Run(spec.name, int(sync_id), wm, wm)


def _finish_run(ws: Workspace, run: _Run) -> None:
    attempts = _sweep_attempts(ws)  # read the control store before taking the RW connection
    with warehouse.rw_connection(ws) as con:
        con.execute("BEGIN")
        con.execute("UPDATE sync_runs SET status = 'ok', finished_at = now()::TIMESTAMP WHERE sync_id = ?",
                    [run.sync_id])
        con.execute("UPDATE source_state SET last_sync_id = ? WHERE source = ?", [run.sync_id, run.source])
        if attempts is not None:
            con.register("_attempts", attempts.to_arrow())
            con.execute("DELETE FROM sweep_attempts")
            con.execute("INSERT INTO sweep_attempts BY NAME SELECT source, version, sweep_id, cell_id, "
                        "model, task, params_json, trial, attempt, status FROM _attempts")
            con.unregister("_attempts")
        con.execute("COMMIT")


def _mark_run(ws: Workspace, run: _Run, status: str, error: str) -> None:
    try:
        with warehouse.rw_connection(ws, budget_s=30) as con:
            con.execute("UPDATE sync_runs SET status = ?, error = ?, finished_at = now()::TIMESTAMP "
                        "WHERE sync_id = ?", [status, error, run.sync_id])
    except Exception as exc:  # noqa: BLE001 - keep the original error; the next sync marks it
        log.warning("could not record the %s status of sync %s: %s", status, run.sync_id, exc)


def _record_failure(ws: Workspace, spec: SourceSpec, exc: BaseException, full: bool) -> None:
    """A run that failed before it began still shows up in ``sync_runs``."""
    with warehouse.rw_connection(ws) as con:
        con.execute("BEGIN")
        sync_id = con.execute("SELECT coalesce(max(sync_id), 0) + 1 FROM sync_runs").fetchone()[0]
        row = con.execute("SELECT watermark FROM source_state WHERE source = ?", [spec.name]).fetchone()
        wm = int(row[0] or 0) if row else None
        con.execute("INSERT INTO sync_runs (sync_id, source, started_at, finished_at, status, rows_added, "
                    "watermark_before, watermark_after, full_rebuild, error) VALUES "
                    "(?, ?, now()::TIMESTAMP, now()::TIMESTAMP, 'failed', 0, ?, ?, ?, ?)",
                    [sync_id, spec.name, wm, wm, full, _error_text(exc, spec)])
        con.execute("COMMIT")


def _error_text(exc: BaseException, spec: SourceSpec) -> str:
    text = str(exc) if isinstance(exc, FleError) else f"{type(exc).__name__}: {exc}"
    return sources._scrub(text, spec)


def _sweep_attempts(ws: Workspace):
    """The control store's attempts frame, or None when there is no control store yet."""
    if not ws.control_path.exists():
        return None
    try:
        from fle_core import sweep_manager
    except ModuleNotFoundError as exc:
        if exc.name != "fle_core.sweep_manager":
            raise
        # TODO(#4): remove once fle_core.sweep_manager has landed.
        log.warning("control store exists but fle_core.sweep_manager is missing; "
                    "sweep_attempts not refreshed")
        return None
    return sweep_manager.attempts_frame(ws)


# ------------------------------------------------------------------ batching
def _rebatch(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Group driver batches into tables of about ``rows`` rows (and bounded bytes)."""
    buf: list[pa.RecordBatch] = []
    n = nbytes = 0
    for b in batches:
        buf.append(b)
        n += b.num_rows
        nbytes += b.nbytes
        if n >= rows or nbytes >= _MAX_BATCH_BYTES:
            yield pa.Table.from_batches(buf)
            buf, n, nbytes = [], 0, 0
    if buf:
        yield pa.Table.from_batches(buf)


_DONE = object()


def _prefetch(it: Iterator[pa.Table], depth: int = 2) -> Iterator[pa.Table]:
    """Read the next batch from the source while the current one is written.

    The source and DuckDB both release the GIL, so on two cores the database
    server, the driver and DuckDB overlap. At most ``depth`` batches wait.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer and re-raised there
            q.put(exc)

    t = threading.Thread(target=work, name="sync-prefetch", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join(timeout=5)


# ------------------------------------------------------------------ writing one batch
def _truthy(path: str) -> str:
    """SQL for Python's ``bool(meta[key])`` on a JSON value (NULL when absent/null)."""
    v = f"json_extract_string(mj, '{path}')"
    return (f"CASE json_type(mj, '{path}') WHEN 'NULL' THEN NULL WHEN 'BOOLEAN' THEN {v} = 'true' "
            f"WHEN 'VARCHAR' THEN length({v}) > 0 WHEN 'ARRAY' THEN json_array_length(mj, '{path}') > 0 "
            f"WHEN 'OBJECT' THEN {v} <> '{{}}' ELSE TRY_CAST({v} AS DOUBLE) <> 0 END")


def _text(path: str) -> str:
    return f"nullif(json_extract_string(mj, '{path}'), '')"


_STAGE_SQL = f"""
CREATE OR REPLACE TEMP TABLE _stage AS
WITH m AS (
  SELECT b.*,
    CASE WHEN b.meta IS NULL OR trim(b.meta) = '' THEN TRUE
         WHEN json_valid(b.meta) THEN json_type(b.meta) = 'OBJECT' ELSE FALSE END AS meta_ok
  FROM _batch b
)
SELECT m.*, CASE WHEN meta_ok AND m.meta IS NOT NULL AND trim(m.meta) <> '' THEN m.meta::JSON END AS mj
FROM m
"""

_INSERT_SQL = f"""
INSERT INTO steps BY NAME
WITH j AS (
  SELECT s.*, coalesce({_text('$.task')}, {_text('$.task_key')}, {_text('$.env_id')}) AS meta_task_raw
  FROM _stage s {{where}}
), d AS (
  SELECT j.*,
    coalesce(nullif(j.model, ''), {_text('$.model')}, vd.vd_model) AS d_model,
    coalesce(vd.vd_task, mt.task) AS d_task,
    vd.vd_agents AS d_agents
  FROM j LEFT JOIN _vd vd ON vd.vd = j.version_description
         LEFT JOIN _mt mt ON mt.raw = j.meta_task_raw
)
SELECT ? AS source, id, version, coalesce(instance, -1) AS instance, depth, value, holdout_value,
  raw_reward, d_model AS model, d_task AS task, d_agents AS num_agents,
  {_text('$.sweep_id')} AS sweep_id,
  {_truthy('$.error_occurred')} AS error_occurred,
  CASE json_type(mj, '$.production_score') WHEN 'BOOLEAN' THEN
         CASE WHEN json_extract_string(mj, '$.production_score') = 'true' THEN 1.0 ELSE 0.0 END
       ELSE TRY_CAST(json_extract_string(mj, '$.production_score') AS DOUBLE) END AS production_score,
  coalesce({_truthy('$.simulated')}, FALSE) AS simulated,
  prompt_tokens, completion_tokens, total_tokens, ticks,
  TRY_CAST(created_at AS TIMESTAMP) AS created_at,
  version_description, meta, achievements_json, timing_metrics_json,
  nullif(concat_ws(',',
    CASE WHEN d_task IS NULL THEN 'unparsed_task' END,
    CASE WHEN NOT meta_ok THEN 'malformed_meta' END,
    CASE WHEN version IS NULL THEN 'missing_version' END), '') AS parse_flags,
  {{code}}
  ? AS sync_id
FROM d
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
WHERE s.source = ?
GROUP BY s.source, s.version, s.instance
"""


def _write_batch(con, run: _Run, table: pa.Table) -> int:
    """Insert one batch + recompute its trajectories + advance the watermark, atomically."""
    copy_code = "code" in table.schema.names
    con.register("_batch", table)
    try:
        con.execute("BEGIN")
        con.execute(_STAGE_SQL)
        _register_parsed(con)
        overlap = int(pa.compute.min(table.column("id")).as_py()) <= run.wm_after
        where = ("WHERE NOT EXISTS (SELECT 1 FROM steps x WHERE x.source = ? AND x.id = s.id)"
                 if overlap else "")
        sql = _INSERT_SQL.replace("{where}", where).replace("{code}", "code, response," if copy_code else "")
        params = ([run.source] if overlap else []) + [run.source, run.sync_id]
        added = int(con.execute(sql, params).fetchone()[0])
        con.execute("CREATE OR REPLACE TEMP TABLE _touched AS SELECT DISTINCT version, "
                    "coalesce(instance, -1) AS instance FROM _stage WHERE version IS NOT NULL")
        con.execute("DELETE FROM trajectories t USING _touched k WHERE t.source = ? "
                    "AND t.version = k.version AND t.instance = k.instance", [run.source])
        con.execute(_TRAJ_SQL, [run.source])
        wm = max(run.wm_after, int(pa.compute.max(table.column("id")).as_py()))
        con.execute("UPDATE source_state SET watermark = ? WHERE source = ?", [wm, run.source])
        con.execute("UPDATE sync_runs SET rows_added = rows_added + ?, watermark_after = ? "
                    "WHERE sync_id = ?", [added, wm, run.sync_id])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_batch")
    run.wm_after = wm
    return added


def _register_parsed(con) -> None:
    """Parse the batch's DISTINCT descriptions / meta task ids in Python; join back in SQL."""
    vds = [r[0] for r in con.execute(
        "SELECT DISTINCT version_description FROM _stage WHERE version_description IS NOT NULL").fetchall()]
    parsed = [parse_version_description(v) for v in vds]
    con.register("_vd", pa.table({
        "vd": pa.array(vds, pa.string()),
        "vd_model": pa.array([p.model for p in parsed], pa.string()),
        "vd_task": pa.array([p.task if p.parsed else None for p in parsed], pa.string()),
        "vd_agents": pa.array([p.num_agents for p in parsed], pa.int32()),
    }))
    raws = [r[0] for r in con.execute(
        f"SELECT DISTINCT coalesce({_text('$.task')}, {_text('$.task_key')}, {_text('$.env_id')}) "
        "FROM _stage WHERE mj IS NOT NULL").fetchall() if r[0] is not None]
    con.register("_mt", pa.table({"raw": pa.array(raws, pa.string()),
                                  "task": pa.array([normalize_task_key(r) or None for r in raws],
                                                   pa.string())}))
