"""Read-only questions about what the warehouse holds (for the CLI and the UI).

Each function opens one short read-only connection (``warehouse.query``), runs
parameterized SQL and returns a Polars frame; the columns are listed in each
docstring. Before the first sync they raise ``WarehouseMissing``. ``status_rows``
runs the same SQL for ``fle-core status`` as plain rows, without importing Polars
(half of the command's start-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fle_core import warehouse
from fle_core.workspace import Workspace

if TYPE_CHECKING:  # imported where a frame is built: `fle-core status` needs no Polars
    import polars as pl


_OVERVIEW_SQL = """
        WITH s AS (
            SELECT source, count(*) AS rows, count(DISTINCT model) AS models,
                   count(DISTINCT task) AS tasks, count(parse_flags) AS flagged_rows,
                   count_if(simulated) AS simulated_rows,
                   min(created_at) AS first_at, max(created_at) AS last_at
            FROM steps GROUP BY source),
        t AS (SELECT source, count(*) AS trajectories FROM trajectories GROUP BY source),
        l AS (SELECT source, count(*) AS logs FROM inspect_logs GROUP BY source)
        SELECT st.source, st.kind, st.display_url, st.location,
               coalesce(s.rows, 0) AS rows, coalesce(t.trajectories, 0) AS trajectories,
               coalesce(s.models, 0) AS models, coalesce(s.tasks, 0) AS tasks,
               coalesce(s.flagged_rows, 0) AS flagged_rows,
               coalesce(s.simulated_rows, 0) AS simulated_rows,
               s.first_at, s.last_at, st.watermark, coalesce(l.logs, 0) AS logs, st.last_sync_id
        FROM source_state st LEFT JOIN s USING (source) LEFT JOIN t USING (source)
        LEFT JOIN l USING (source)
        ORDER BY st.source"""


def overview(ws: Workspace) -> pl.DataFrame:
    """One row per synced source.

    Columns: ``source, kind, display_url, location, rows, trajectories, models, tasks,
    flagged_rows, simulated_rows, first_at, last_at, watermark`` (null for a folder of
    logs, which has none) ``, logs`` (Inspect logs held), ``last_sync_id``.
    """
    return warehouse.query(ws, _OVERVIEW_SQL)


def source_states(ws: Workspace) -> pl.DataFrame:
    """Per source: ``source, kind, display_url, watermark, last_sync_id, last_status,
    last_started_at, last_finished_at, last_error`` (the latest run, whatever its status)."""
    return warehouse.query(
        ws,
        """
        SELECT st.source, st.kind, st.display_url, st.watermark, st.last_sync_id,
               r.status AS last_status, r.started_at AS last_started_at,
               r.finished_at AS last_finished_at, r.error AS last_error
        FROM source_state st
        LEFT JOIN (SELECT * FROM sync_runs
                   QUALIFY row_number() OVER (PARTITION BY source ORDER BY sync_id DESC) = 1) r
          USING (source)
        ORDER BY st.source""",
    )


_HISTORY_SQL = """
    SELECT * REPLACE (coalesce(rows_removed, 0) AS rows_removed),
           epoch(finished_at) - epoch(started_at) AS duration_s
    FROM sync_runs ORDER BY sync_id DESC LIMIT ?"""


def sync_history(ws: Workspace, limit: int = 50) -> pl.DataFrame:
    """The latest sync runs, newest first: all ``sync_runs`` columns plus ``duration_s``."""
    return warehouse.query(ws, _HISTORY_SQL, [int(limit)])


def attention_rows(ws: Workspace, limit: int = 200) -> pl.DataFrame:
    """Rows kept but flagged at sync (``parse_flags`` not null), with their raw text.

    Columns: ``source, id, version, instance, depth, parse_flags, model, task,
    version_description, meta, sync_id``; newest first.
    """
    return warehouse.query(
        ws,
        """
        SELECT source, id, version, instance, depth, parse_flags, model, task,
               version_description, meta, sync_id
        FROM steps WHERE parse_flags IS NOT NULL
        ORDER BY sync_id DESC, source, id DESC LIMIT ?""",
        [int(limit)],
    )


def attention_summary(ws: Workspace) -> pl.DataFrame:
    """Counts of flagged rows: ``source, parse_flags, rows``."""
    return warehouse.query(
        ws,
        """
        SELECT source, parse_flags, count(*) AS rows FROM steps
        WHERE parse_flags IS NOT NULL GROUP BY ALL ORDER BY source, rows DESC""",
    )


def trajectory_steps(ws: Workspace, source: str, version: int, instance: int) -> pl.DataFrame:
    """The lean step rows of one trajectory in step order.

    Columns: ``id, depth, value, holdout_value, raw_reward, model, task, sweep_id,
    error_occurred, production_score, prompt_tokens, completion_tokens,
    total_tokens, ticks, created_at, achievements_json, timing_metrics_json,
    parse_flags`` (heavy text is fetched from the source:
    ``sources.fetch_step_detail``).
    """
    return warehouse.query(
        ws,
        """
        SELECT id, depth, value, holdout_value, raw_reward, model, task, sweep_id,
               error_occurred, production_score, prompt_tokens, completion_tokens,
               total_tokens, ticks, created_at, achievements_json, timing_metrics_json, parse_flags
        FROM steps WHERE source = ? AND version = ? AND instance = ?
        ORDER BY depth NULLS LAST, id""",
        [source, int(version), int(instance)],
    )


def trajectories(ws: Workspace, source: str | None = None, limit: int = 1000) -> pl.DataFrame:
    """Rows of the ``trajectories`` table (all its columns), newest versions first."""
    if source is None:
        return warehouse.query(
            ws,
            "SELECT * FROM trajectories ORDER BY last_at DESC NULLS LAST, "
            "source, version DESC, instance LIMIT ?",
            [int(limit)],
        )
    return warehouse.query(
        ws,
        "SELECT * FROM trajectories WHERE source = ? ORDER BY version DESC, instance LIMIT ?",
        [source, int(limit)],
    )


def _has_inspect(ws: Workspace) -> bool:
    with warehouse.reader(ws) as con:
        row = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'inspect_logs'"
        ).fetchone()
    return bool(row and row[0])


def inspect_logs(ws: Workspace) -> pl.DataFrame:
    """Inspect log files of ``inspect`` sources, problems first: ``source, path, status,
    samples, expected_samples, error, headline_label, headline_value, model, task,
    sweep_id, reader, sync_id``. ``status`` is ``started`` for a running (or killed) log,
    ``unreadable`` for one that could not be read (``error`` says why)."""
    cols = (
        "source, path, status, samples, expected_samples, error, headline_label, headline_value, "
        "model, task, sweep_id, reader, sync_id"
    )
    if not _has_inspect(ws):
        return warehouse.query(
            ws,
            f"SELECT {cols} FROM (SELECT NULL::VARCHAR AS source, NULL::VARCHAR AS path, "
            "NULL::VARCHAR AS status, NULL::INTEGER AS samples, NULL::INTEGER AS expected_samples, "
            "NULL::VARCHAR AS error, NULL::VARCHAR AS headline_label, NULL::DOUBLE AS headline_value, "
            "NULL::VARCHAR AS model, NULL::VARCHAR AS task, NULL::VARCHAR AS sweep_id, "
            "NULL::VARCHAR AS reader, NULL::BIGINT AS sync_id) WHERE FALSE",
        )
    return warehouse.query(
        ws,
        f"SELECT {cols} FROM inspect_logs ORDER BY (status = 'success') , source, path",
    )


def inspect_sample(ws: Workspace, source: str, version: int, instance: int) -> dict | None:
    """Where one Inspect trajectory came from and how it ended, or None (not from a log):
    ``path`` (relative to the source folder), ``sample_id, epoch, log_status,
    failure_kind, error, error_source, limit_hit, total_cost, total_time, quota``, its
    invalidation (``invalidated_by, invalidated_reason, invalidated_at``), ``error_retries,
    retry_errors, fallbacks, fallbacks_json`` and ``solver, trajectory_length``."""
    if not _has_inspect(ws):
        return None
    frame = warehouse.query(
        ws,
        "SELECT path, sample_id, epoch, log_status, failure_kind, error, error_source, limit_hit, "
        "total_cost, total_time, quota, invalidated_by, invalidated_reason, invalidated_at, "
        "error_retries, retry_errors, fallbacks, fallbacks_json, solver, trajectory_length "
        "FROM inspect_samples WHERE source = ? AND version = ? "
        "AND instance = ? AND superseded_by IS NULL LIMIT 1",
        [source, int(version), int(instance)],
    )
    return frame.row(0, named=True) if frame.height else None


#: ``sync_notes`` columns and their Polars types (by name: Polars is imported when used)
_NOTE_COLUMNS = {
    "sync_id": "Int64",
    "source": "String",
    "kind": "String",
    "detail": "String",
    "rows": "Int64",
    "earliest_sync": "Int64",
}
_NOTES_SQL = (
    "SELECT sync_id, source, kind, detail, rows, earliest_sync FROM sync_notes ORDER BY sync_id DESC LIMIT ?"
)
_QUARANTINED_SQL = (
    "SELECT n.sync_id, n.source, n.detail FROM sync_notes n WHERE n.kind = 'quarantined' AND ("
    "n.sync_id = (SELECT max(r.sync_id) FROM sync_runs r WHERE r.source = n.source AND r.status = 'ok') "
    "OR EXISTS (SELECT 1 FROM inspect_logs l WHERE l.source = n.source AND l.sync_id = n.sync_id "
    "AND starts_with(n.detail, l.path || ': '))) ORDER BY n.sync_id DESC, n.detail LIMIT ?"
)


def sync_notes(ws: Workspace, limit: int = 50) -> pl.DataFrame:
    """What sync runs reported beyond rows (late Postgres commits, rows a rebuild removed or
    changed), newest first: ``sync_id, source, kind, detail, rows, earliest_sync``."""
    return _notes(ws, _NOTES_SQL, [int(limit)], _NOTE_COLUMNS)


def quarantined(ws: Workspace, limit: int = 1000) -> pl.DataFrame:
    """What sync left out for a malformed field and still leaves out: ``sync_id, source,
    detail`` ("path: sample …: reason", a log not read, a file not listed). A note counts
    while its log is as that sync read it, or when it is from the source's latest run."""
    return _notes(
        ws, _QUARANTINED_SQL, [int(limit)], {k: _NOTE_COLUMNS[k] for k in ("sync_id", "source", "detail")}
    )


def rebuilds_since(ws: Workspace, sync_id: int) -> pl.DataFrame:
    """Syncs after ``sync_id`` that removed or changed rows a view pinned to ``sync_id`` was
    computed from (a ``sync --full`` rebuild, an Inspect log removed or replaced in place):
    ``sync_id, source, kind, rows, detail`` (empty when a pinned view still shows exactly
    what it showed)."""
    return _notes(
        ws,
        "SELECT n.sync_id, n.source, n.kind, n.rows, n.detail FROM sync_notes n "
        "JOIN sync_runs r ON r.sync_id = n.sync_id AND r.status = 'ok' "
        "WHERE n.kind IN ('rebuild_changed', 'removed') AND n.sync_id > ? AND n.earliest_sync <= ? "
        "ORDER BY n.sync_id",
        [int(sync_id), int(sync_id)],
        {k: _NOTE_COLUMNS[k] for k in ("sync_id", "source", "kind", "rows", "detail")},
    )


def _has_notes(con) -> bool:
    """A warehouse of schema 1 has no ``sync_notes`` (its next sync adds the table)."""
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = 'sync_notes'"
        ).fetchall()[0][0]
    )


def _notes(ws: Workspace, sql: str, params: list, schema: dict[str, str]) -> pl.DataFrame:
    """A query on ``sync_notes``; empty (with ``schema``) when the warehouse has none."""
    import polars as pl

    with warehouse.reader(ws) as con:
        if not _has_notes(con):
            return pl.DataFrame(schema={k: getattr(pl, v) for k, v in schema.items()})
        return con.sql(sql, params=params).pl()


# ------------------------------------------------------------------ fle-core status
@dataclass
class StatusRows:
    """What ``fle-core status`` prints, as plain rows (dicts keyed by column)."""

    sources: list[dict[str, Any]]  # ``overview``'s columns
    history: list[dict[str, Any]]  # ``sync_history``'s columns
    notes: list[dict[str, Any]]  # ``sync_notes``'s columns
    quarantined: list[dict[str, Any]]  # ``quarantined``'s columns


def status_rows(ws: Workspace, runs: int, quarantined_limit: int = 1000) -> StatusRows:
    """``overview``, ``sync_history(runs)``, ``sync_notes(runs)`` and ``quarantined`` in one
    read-only connection, as rows: the same SQL as the frames, without importing Polars."""

    def rows(con, sql: str, params: list | None = None) -> list[dict[str, Any]]:
        cur = con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    with warehouse.reader(ws) as con:
        notes = _has_notes(con)
        return StatusRows(
            rows(con, _OVERVIEW_SQL),
            rows(con, _HISTORY_SQL, [int(runs)]),
            rows(con, _NOTES_SQL, [int(runs)]) if notes else [],
            rows(con, _QUARANTINED_SQL, [int(quarantined_limit)]) if notes else [],
        )
