"""Sync of a ``programs`` table (SQLite or Postgres) into the warehouse.

``warehouse.sync`` runs the skeleton every source shares (open a run, write, finish the
run); this module reads the table and writes its rows (see ``docs/sync.md``):

1. Connect and fix the upper bound ``upto = max(programs.id)``. A source that is down
   or unusable changes no data.
2. Stream lean rows with ``watermark < id <= upto`` in id order, re-batched to
   ``[sync] batch_rows``. Each batch is **one transaction**: insert steps (with derived
   columns), recompute the touched trajectories, advance the watermark. A kill at any
   point therefore resumes exactly after the last committed batch: no duplicates, no
   gaps. ``--full`` copies into ``rebuild_*`` tables, swapped in by ``finish_run``.

Postgres ids can commit out of order (a slow transaction may commit id 100 after id 101
was synced), so incremental Postgres runs re-read the last ``[sync] pg_overlap_ids`` ids
and insert only ids not yet present.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from fle_core.errors import SourceError
from fle_core.sources import programs
from fle_core.sources.programs_table import ProgramsSource, StoredRow
from fle_core.tasks import parse_version_description
from fle_core.warehouse import _poison, _runs, _stream
from fle_core.warehouse import store as warehouse
from fle_core.warehouse._runs import Run
from fle_core.warehouse._writing import ROW_GROUP_ROWS, Context, Options, Session

log = logging.getLogger(__name__)


@dataclass
class Work:
    """One sync of a ``programs`` table, with the source connection open."""

    ctx: Context
    source: ProgramsSource
    conn: Any  # programs.SourceConn
    cols: dict[str, str]
    upto: int
    floor: int

    @property
    def rebuild(self) -> bool:
        return self.ctx.full

    def unchanged(self) -> bool:
        return False  # a run is always recorded: its watermark says how far the table was read

    def copy(self, session: Session, run: Run) -> None:
        opts = self.ctx.options
        start = self.floor if run.fresh else run.wm_before
        if self.source.dialect == "postgres" and not run.fresh:
            start = _late_commit_start(
                session.con(), self.conn, run, max(self.floor, start - opts.pg_overlap_ids)
            )
        session.maybe_release()  # readers get in before the first batch, too
        _copy_rows(session, self.conn, self.cols, run, self.source, start, self.upto, self.ctx.progress, opts)


@contextlib.contextmanager
def reading(ctx: Context, source: ProgramsSource, attempts=None) -> Iterator[Work]:
    """Connect to the table and fix what this run will read (``SourceUnavailable`` when down).
    ``attempts`` (the sweep facts) do not change what a table's sync reads."""
    with source.connect() as conn:
        cols = programs.column_types(conn)
        upto = programs.max_id(conn)
        floor = min(0, programs.min_id(conn) - 1)  # ids <= 0 occur in hand-made data
        yield Work(ctx, source, conn, cols, upto, floor)


def evidence(con, name: str) -> list[StoredRow]:
    """A few stored steps of source ``name`` (lowest, middle and highest id), for
    ``ProgramsSource.same_data``."""
    rows = con.execute(
        "WITH s AS (SELECT id, version, instance, depth, value, row_number() OVER (ORDER BY id) AS r, "
        "count(*) OVER () AS n FROM steps WHERE source = ? AND version IS NOT NULL) "
        "SELECT id, version, instance, depth, value FROM s WHERE r IN (1, n, (n + 1) // 2) ORDER BY id",
        [name],
    ).fetchall()
    return [(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]


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
    session: Session,
    conn,
    cols,
    run: Run,
    source: ProgramsSource,
    start: int,
    upto: int,
    progress,
    opts: Options,
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
    elif source.dialect == "sqlite":
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
            for table in _tables(source, conn, cols, start, upto, total - done, opts, robust, first):
                run.rows_added += _write_table(session, run, table)
                session.maybe_release()
                done += table.num_rows
                if progress:
                    progress(done, total)
            if progress and done != total:
                progress(done, done)  # the estimate was off (id gaps): report completion
            return
        except SourceError as exc:
            if source.dialect != "sqlite" or robust:
                raise
            log.info(
                "source %s: mixed value types (%s); re-reading with per-value conversion", source.name, exc
            )
            robust, start = True, max(start, run.wm_after)


def _first_batch_rows(table_rows: int, batch_rows: int) -> int:
    """Size the first batch so later batches start on a DuckDB row-group boundary."""
    if batch_rows % ROW_GROUP_ROWS:
        return batch_rows
    return batch_rows - table_rows % ROW_GROUP_ROWS


def _tables(
    source: ProgramsSource,
    conn,
    cols,
    start: int,
    upto: int,
    rows: int,
    opts: Options,
    robust: bool,
    first_rows: int | None = None,
) -> Iterator[pa.Table]:
    """Lean tables of ``(start, upto]`` in id order: parallel id-range chunks when the
    ids are dense enough, else one prefetched stream (see ``_stream``)."""
    if source.dialect == "postgres" and programs.sparse_ids(conn, upto):
        bounds = None
    else:
        bounds = _stream.chunk_bounds(start, upto, rows, opts.batch_rows)
    if bounds is None or opts.read_workers <= 1:
        return _stream.sequential_tables(
            conn, cols, start, upto, opts.batch_rows, opts.copy_code, robust, first_rows
        )
    return _stream.ordered_tables(source.spec, cols, bounds, opts.copy_code, robust, opts.read_workers)


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


def _write_table(session: Session, run: Run, table: pa.Table) -> int:
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
    with warehouse.transaction(con):
        added = _runs.first_row(
            con,
            f"INSERT INTO {run.steps} (source, id, parse_flags, sync_id) SELECT ?, ?, ?, ? "
            f"WHERE NOT EXISTS (SELECT 1 FROM {run.steps} WHERE source = ? AND id = ?)",
            [run.source, row_id, flag, run.sync_id, run.source, row_id],
        )[0]
        _runs.advance(con, run, wm, added)
    run.wm_after = wm
    run.quarantined += 1
    return int(added)


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
    try:
        with warehouse.transaction(con):
            _register_descriptions(con, table.column("version_description"))
            added = int(_runs.first_row(con, sql, {"source": run.source, "sync_id": run.sync_id})[0])
            _refresh_trajectories(con, run)
            _runs.advance(con, run, wm, added)
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
