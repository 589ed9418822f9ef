"""Sync runs: one ``sync_runs`` row per sync of a source, from open to ok / failed.

This module is the only writer of ``sync_runs`` (and of a source's ``source_state`` row):

* ``open_run`` starts a ``running`` run (stale ``running`` rows of killed syncs become
  ``interrupted``), registers the source (name, kind, location) and, for ``--full``,
  creates the empty ``rebuild_*`` tables the rows are copied into;
* ``advance`` moves a run's watermark and row count inside a batch's transaction;
* ``finish_run`` swaps a rebuild in, replaces ``sweep_attempts``, records notes, marks
  the run ``ok`` and moves the data version only when something changed, all in one
  transaction;
* ``record_abort`` records a run that failed or was interrupted (or a source that
  failed before any run began).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fle_core.errors import FleError, SourceError
from fle_core.sources import Source
from fle_core.sources.programs import scrub
from fle_core.warehouse import store as warehouse
from fle_core.workspace import Workspace

if TYPE_CHECKING:
    import polars as pl

log = logging.getLogger(__name__)

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


REBUILD_STEPS, REBUILD_TRAJECTORIES = "rebuild_steps", "rebuild_trajectories"


@dataclass
class Run:
    source: str
    sync_id: int
    wm_before: int
    wm_after: int
    rows_added: int = 0
    rows_removed: int = 0  # rows taken out (an Inspect log removed or replaced)
    table_rows: int = 0  # rows in the target steps table when the run opened
    fresh: bool = False  # nothing of this source is in the warehouse yet (or a rebuild)
    rebuild: bool = False  # ``--full``: rows go to the rebuild_* tables, swapped in at the end
    full: bool = False  # ``--full`` was asked for (an Inspect source re-reads every log instead)
    unit: str = "rows"  # what ``done`` counts while the source is read (rows of a table, logs)
    logs_read: int = 0  # Inspect sources: logs read this run
    logs_removed: int = 0  # Inspect sources: logs gone from the folder since the last sync
    #: ``sync_notes`` rows beyond warnings: (kind, detail, rows, earliest sync id affected)
    notes: list[tuple[str, str, int, int | None]] = field(default_factory=list)
    quarantined: int = 0
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # e.g. an Inspect log that could not be read
    #: Inspect samples or listed files left out for a malformed field: "path: sample …: reason"
    quarantine: list[str] = field(default_factory=list)
    #: whether the rows' content changed, when the rows written say too much (an Inspect
    #: ``--full`` re-reads unchanged logs); None: rows added or removed mean changed
    content_changed: bool | None = None
    #: run inside the finishing transaction (an Inspect ``--full`` swaps its rebuild in):
    #: returns whether the rows' content changed, which then decides the data version
    finalize: Callable[[Any], bool] | None = None
    data_version: int = 0  # the warehouse's after this run

    @property
    def steps(self) -> str:
        return REBUILD_STEPS if self.rebuild else "steps"

    @property
    def trajectories(self) -> str:
        return REBUILD_TRAJECTORIES if self.rebuild else "trajectories"


def open_run(con, source: Source, full: bool) -> Run:
    """Start a ``running`` sync run in one transaction.

    ``full`` keeps the source's rows where they are and creates empty
    ``rebuild_*`` tables beside them: readers keep seeing the old data until
    ``finish_run`` swaps the rebuilt rows in. A rebuild left behind by a killed
    sync is dropped here (it restarts from scratch on the next ``--full``).
    """
    name = source.name
    with warehouse.transaction(con):
        con.execute(
            "UPDATE sync_runs SET status = 'interrupted', finished_at = now()::TIMESTAMP, "
            "error = 'the sync process stopped before finishing' WHERE status = 'running'"
        )
        for table in (REBUILD_STEPS, REBUILD_TRAJECTORIES):
            con.execute(f"DROP TABLE IF EXISTS {table}")
        sync_id = first_row(con, "SELECT coalesce(max(sync_id), 0) + 1 FROM sync_runs")[0]
        row = first_row(con, "SELECT watermark FROM source_state WHERE source = ?", [name])
        wm = 0 if full or row is None or not source.watermarked else int(row[0] or 0)
        fresh = full or (wm == 0 and _no_rows(con, name))
        if full:
            con.execute(warehouse.table_ddl("steps", REBUILD_STEPS))
            con.execute(warehouse.table_ddl("trajectories", REBUILD_TRAJECTORIES))
        shown = wm if source.watermarked else None  # a folder of logs has no watermark
        con.execute(
            "INSERT INTO source_state (source, kind, display_url, watermark, location) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (source) DO UPDATE SET kind = excluded.kind, display_url = excluded.display_url, "
            "location = excluded.location, watermark = CASE WHEN excluded.watermark IS NULL THEN NULL "
            "ELSE source_state.watermark END",
            [name, source.kind, source.display, 0 if source.watermarked else None, source.location],
        )
        con.execute(
            "INSERT INTO sync_runs (sync_id, source, started_at, status, rows_added, "
            "watermark_before, watermark_after, full_rebuild) "
            "VALUES (?, ?, now()::TIMESTAMP, 'running', 0, ?, ?, ?)",
            [sync_id, name, shown, shown, full],
        )
        table_rows = first_row(con, f"SELECT count(*) FROM {REBUILD_STEPS if full else 'steps'}")[0]
    return Run(name, int(sync_id), wm, wm, table_rows=int(table_rows), fresh=fresh, rebuild=full, full=full)


def advance(con, run: Run, wm: int, added: int) -> None:
    """Move the watermark (a rebuild keeps the live one until the swap) and the run's row
    count, inside the caller's batch transaction."""
    if not run.rebuild:
        con.execute("UPDATE source_state SET watermark = ? WHERE source = ?", [wm, run.source])
    con.execute(
        "UPDATE sync_runs SET rows_added = rows_added + ?, watermark_after = ? WHERE sync_id = ?",
        [added, wm, run.sync_id],
    )


def first_row(con, sql: str, params=None) -> Any:
    """The first row of a query, with the result consumed (DuckDB 2.0 refuses a
    ``register`` while an unfinished result is open)."""
    rows = con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()
    return rows[0] if rows else None


def _no_rows(con, source: str) -> bool:
    return first_row(con, "SELECT 1 FROM steps WHERE source = ? LIMIT 1", [source]) is None


def finish_run(con, run: Run, attempts: pl.DataFrame | None) -> None:
    """Swap a rebuild in, mark the run ``ok`` with its counts, replace ``sweep_attempts``
    and move the data version (only when something changed), in one transaction."""
    with warehouse.transaction(con):
        changed = run.content_changed
        if changed is None:
            changed = run.rows_added > 0 or run.rows_removed > 0
        if run.rebuild:
            changed = _swap_rebuild(con, run)
        if run.finalize is not None:
            changed = run.finalize(con)
        if attempts is not None:
            changed = _replace_attempts(con, attempts) or changed
        problems = f"{len(run.problems)} log(s) could not be read: " + "; ".join(run.problems)
        con.execute(
            "UPDATE sync_runs SET status = 'ok', finished_at = now()::TIMESTAMP, rows_added = ?, "
            "error = ?, full_rebuild = ?, rows_removed = ? WHERE sync_id = ?",
            [run.rows_added, problems if run.problems else None, run.full, run.rows_removed, run.sync_id],
        )
        for kind, detail, rows, earliest in run.notes:
            con.execute(
                "INSERT INTO sync_notes (sync_id, source, kind, detail, rows, earliest_sync) VALUES (?, ?, ?, ?, ?, ?)",
                [run.sync_id, run.source, kind, detail, rows, earliest],
            )
        con.execute("UPDATE source_state SET last_sync_id = ? WHERE source = ?", [run.sync_id, run.source])
        for note in run.warnings:
            con.execute(
                "INSERT INTO sync_notes (sync_id, source, kind, detail) VALUES (?, ?, 'warning', ?)",
                [run.sync_id, run.source, note],
            )
        _note_quarantine(con, run)
        run.data_version = warehouse.set_data_version(con, run.sync_id, changed)


#: At most this many quarantine notes per run; one more says how many were not listed.
MAX_QUARANTINE_NOTES = 200


def _note_quarantine(con, run: Run) -> None:
    """One ``quarantined`` note per sample or file left out (``Run.quarantine``)."""
    notes = run.quarantine[:MAX_QUARANTINE_NOTES]
    if len(run.quarantine) > MAX_QUARANTINE_NOTES:
        notes.append(f"… and {len(run.quarantine) - MAX_QUARANTINE_NOTES:,} more left out (not listed)")
    for note in notes:
        con.execute(
            "INSERT INTO sync_notes (sync_id, source, kind, detail, rows) VALUES (?, ?, 'quarantined', ?, 1)",
            [run.sync_id, run.source, note],
        )


# Columns whose values decide what a pinned view shows (derived ones included).
CONTENT_COLUMNS = _CONTENT = (
    "version, instance, depth, value, holdout_value, raw_reward, model, task, num_agents, sweep_id, "
    "error_occurred, production_score, simulated, prompt_tokens, completion_tokens, total_tokens, "
    "ticks, created_at, version_description, meta, achievements_json, timing_metrics_json, parse_flags"
)


def _swap_rebuild(con, run: Run) -> bool:
    """Replace the source's rows by the rebuilt ones (inside the caller's transaction).

    A row that existed before keeps the ``sync_id`` that first brought it in, so
    a shared view pinned to an earlier sync shows the same rows after
    ``sync --full``. Rows the source no longer has, or whose values differ,
    would change such a view: they are counted in ``sync_notes``
    (``rebuild_changed``, with the earliest sync id they belonged to) so the
    view can say so. Returns whether anything differs from before.
    """
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _old AS SELECT id, sync_id, hash({_CONTENT}) AS h "
        "FROM steps WHERE source = ?",
        [run.source],
    )
    changed, earliest, new = first_row(
        con,
        f"SELECT count(*) FILTER (WHERE o.id IS NOT NULL AND (n.id IS NULL OR n.h <> o.h)), "
        f"min(o.sync_id) FILTER (WHERE o.id IS NOT NULL AND (n.id IS NULL OR n.h <> o.h)), "
        f"count(*) FILTER (WHERE o.id IS NULL) "
        f"FROM _old o FULL JOIN (SELECT id, hash({_CONTENT}) AS h FROM {REBUILD_STEPS}) n ON n.id = o.id",
    )
    con.execute("DELETE FROM steps WHERE source = ?", [run.source])
    con.execute("DELETE FROM trajectories WHERE source = ?", [run.source])
    con.execute(
        f"INSERT INTO steps BY NAME SELECT r.* REPLACE (coalesce(o.sync_id, r.sync_id) AS sync_id) "
        f"FROM {REBUILD_STEPS} r LEFT JOIN _old o ON o.id = r.id"
    )
    con.execute(f"INSERT INTO trajectories BY NAME SELECT * FROM {REBUILD_TRAJECTORIES}")
    con.execute("UPDATE source_state SET watermark = ? WHERE source = ?", [run.wm_after, run.source])
    for table in (REBUILD_STEPS, REBUILD_TRAJECTORIES, "_old"):
        con.execute(f"DROP TABLE {table}")
    if changed:
        con.execute(
            "INSERT INTO sync_notes (sync_id, source, kind, detail, rows, earliest_sync) "
            "VALUES (?, ?, 'rebuild_changed', ?, ?, ?)",
            [
                run.sync_id,
                run.source,
                f"{changed:,} row(s) were removed from the source or changed since they were first synced",
                changed,
                earliest,
            ],
        )
    return bool(changed or new)


def _replace_attempts(con, attempts: pl.DataFrame) -> bool:
    """Replace ``sweep_attempts``; True when its content changed (that changes metrics)."""
    cols = ", ".join(ATTEMPT_COLUMNS)
    con.register("_attempts", attempts.to_arrow())
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _new_attempts AS SELECT DISTINCT {cols} FROM _attempts")
        diff = first_row(
            con,
            f"SELECT (SELECT count(*) FROM (SELECT {cols} FROM _new_attempts EXCEPT "
            f"SELECT {cols} FROM sweep_attempts)) + (SELECT count(*) FROM (SELECT {cols} FROM "
            f"sweep_attempts EXCEPT SELECT {cols} FROM _new_attempts))",
        )[0]
        con.execute("DELETE FROM sweep_attempts")
        con.execute(f"INSERT INTO sweep_attempts BY NAME SELECT {cols} FROM _attempts")
        con.execute("DROP TABLE _new_attempts")
    finally:
        con.unregister("_attempts")
    return bool(diff)


def record_removal(con, source: str, steps: int) -> None:
    """A source removed from the warehouse (``fle-core source remove``) shows in the history,
    and moves the data version (inside the caller's transaction)."""
    sync_id = first_row(con, "SELECT coalesce(max(sync_id), 0) + 1 FROM sync_runs")[0]
    con.execute(
        "INSERT INTO sync_runs (sync_id, source, started_at, finished_at, status, rows_added, full_rebuild, "
        "error) VALUES (?, ?, now()::TIMESTAMP, now()::TIMESTAMP, 'removed', 0, FALSE, ?)",
        [sync_id, source, f"removed from the warehouse ({steps:,} steps); the source itself is untouched"],
    )
    warehouse.set_data_version(con, sync_id, changed=True)


def mark_run(ws: Workspace, run: Run, status: str, error: str) -> None:
    try:
        with warehouse.rw_connection(ws, budget_s=30) as con:
            con.execute(
                "UPDATE sync_runs SET status = ?, error = ?, finished_at = now()::TIMESTAMP "
                "WHERE sync_id = ?",
                [status, error, run.sync_id],
            )
    except Exception as exc:  # noqa: BLE001
        log.warning("could not record the %s status of sync %s: %s", status, run.sync_id, exc)


def record_failure(ws: Workspace, source: Source, exc: BaseException, full: bool) -> None:
    """A run that failed before it began still shows up in ``sync_runs``."""
    with warehouse.rw_connection(ws) as con, warehouse.transaction(con):
        sync_id = first_row(con, "SELECT coalesce(max(sync_id), 0) + 1 FROM sync_runs")[0]
        row = first_row(con, "SELECT watermark FROM source_state WHERE source = ?", [source.name])
        wm = int(row[0] or 0) if row else None
        con.execute(
            "INSERT INTO sync_runs (sync_id, source, started_at, finished_at, status, rows_added, "
            "watermark_before, watermark_after, full_rebuild, error) VALUES "
            "(?, ?, now()::TIMESTAMP, now()::TIMESTAMP, 'failed', 0, ?, ?, ?, ?)",
            [sync_id, source.name, wm, wm, full, error_text(exc, source)],
        )


def record_abort(ws: Workspace, source: Source, run: Run | None, exc: BaseException, full: bool) -> None:
    """Say in ``sync_runs`` why a sync stopped: its run is failed (an error) or
    interrupted (a signal, Ctrl-C); a source error before any run began is recorded too."""
    if run is not None:
        mark_run(ws, run, "failed" if isinstance(exc, Exception) else "interrupted", error_text(exc, source))
    elif isinstance(exc, SourceError) and ws.warehouse_path.exists():
        record_failure(ws, source, exc, full)


def error_text(exc: BaseException, source: Source) -> str:
    text = str(exc) if isinstance(exc, FleError) else f"{type(exc).__name__}: {exc}"
    return scrub(text, source.spec)
