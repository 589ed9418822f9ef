"""UI layer: sweep and runner views (runner health with Stop, progress text, the cell grid,
the Slurm pilot table).

Split from ``widgets`` so each module stays reviewable. Progress counts the cells
that ran to an outcome (a cancelled sweep never looks finished); a runner that
was just started shows as *starting*, and an alive one says that it outlives the
app and offers a graceful stop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import polars as pl
import streamlit as st

from pages._ui import frames, notes
from pages._ui.core import guard
from pages._ui.draw import grid_chart
from pages._ui.tables import table


def runner_health(runners: pl.DataFrame, starting_pid: int | None = None, stop=None) -> None:
    """Alive runners and their last heartbeat; a clear note when none is alive.

    ``starting_pid``: a runner this session just started that has not sent its
    first heartbeat yet (it is "starting", not "not alive"). ``stop``: a callable
    taking a runner id; when given, each alive runner gets a Stop button. The note
    says that a runner outlives the app.
    """
    alive = runners.filter(pl.col("alive")) if "alive" in runners.columns else runners.head(0)
    runners = _shown_status(runners)
    silent = runners.filter(pl.col("status") == SILENT) if "status" in runners.columns else runners.head(0)
    if alive.is_empty() and starting_pid and _pid_running(starting_pid):
        st.caption(
            f":material/hourglass_top: Runner starting (pid {starting_pid}); "
            "its first heartbeat comes within seconds."
        )
    elif alive.is_empty() and not silent.is_empty():
        beat = cast("datetime | None", silent["heartbeat_at"].max())
        ago = (datetime.now(UTC) - beat).total_seconds() if beat is not None else None
        st.caption(
            f":material/sync_problem: No runner has sent a heartbeat within its lease: "
            f"{notes.plural(silent.height, 'runner')} below {'is' if silent.height == 1 else 'are'} "
            f"*{SILENT}* (last heartbeat {frames.duration_text(ago)} ago): each has died or cannot "
            "reach the control store. Their running jobs are requeued once their leases expire."
        )
    elif alive.is_empty():
        st.caption(
            ":material/power_off: No runner is alive. Queued sweeps wait until one runs: "
            "`fle-core runner` (the launch and demo buttons start one)."
        )
    else:
        beat = cast("datetime | None", alive["heartbeat_at"].max())
        ago = (datetime.now(UTC) - beat).total_seconds() if beat is not None else None
        st.caption(
            f":material/favorite: {notes.plural(alive.height, 'runner')} alive · last heartbeat "
            f"{frames.duration_text(ago)} ago. A runner is its own process: it keeps running "
            "(and finishing queued sweeps) after this app is closed, until it is stopped."
        )
        if stop is not None:
            _stop_buttons(alive, stop)
    if not runners.is_empty():
        cols = [
            c
            for c in ("host", "pid", "status", "started_at", "heartbeat_at", "alive")
            if c in runners.columns
        ]
        table(runners.select(cols), RUNNER_COLUMNS)


#: The status shown for a runner whose heartbeat lapsed without it saying it stopped.
SILENT = "silent"


def _shown_status(runners: pl.DataFrame) -> pl.DataFrame:
    """A runner whose heartbeat lapsed is not shown as ``running``: the table and the note
    above it must agree."""
    if not {"status", "alive"} <= set(runners.columns):
        return runners
    return runners.with_columns(
        status=pl.when(pl.col("alive") | (pl.col("status") == "stopped"))
        .then(pl.col("status"))
        .otherwise(pl.lit(SILENT))
    )


RUNNER_COLUMNS: dict[str, Any] = {
    "host": "Host",
    "node": "Node",
    "pid": st.column_config.NumberColumn("pid", format="%d"),
    "slurm_job": st.column_config.TextColumn("Slurm job", help="JOBID_TASK of a Slurm pilot"),
    "jobs_run": st.column_config.NumberColumn("Jobs run", format="%d"),
    "status": "Status",
    "started_at": st.column_config.DatetimeColumn("Started", format="YYYY-MM-DD HH:mm:ss"),
    "heartbeat_at": st.column_config.DatetimeColumn("Heartbeat", format="YYYY-MM-DD HH:mm:ss"),
    "alive": "Alive",
}


def _stop_buttons(alive: pl.DataFrame, stop: Callable[[str], int]) -> None:
    for row in alive.iter_rows(named=True):
        if st.button(
            f"Stop runner pid {row['pid']}",
            key=f"_stop_{row['runner_id']}",
            icon=":material/stop_circle:",
            help="Graceful: running jobs may finish, no new job starts",
        ):
            with guard():
                pid = stop(row["runner_id"])
                st.toast(f"Asked runner pid {pid} to stop (running jobs may finish).")


def _pid_running(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


RAN = ("succeeded", "failed", "early_stopped")


def status_fraction(status: Any) -> float:
    """Share of cells that ran to an outcome (succeeded, failed, early-stopped).

    Cancelled cells never ran (or were killed), so they do not fill the bar: a
    sweep cancelled after 2 of 12 cells shows 2/12, not a full bar.
    """
    ran = sum(status.counts.get(s, 0) for s in RAN)
    return (ran / status.total) if status.total else 0.0


def status_text(status: Any) -> str:
    eta = f" · ETA {frames.duration_text(status.eta_s)}" if status.eta_s else ""
    c = status.counts
    ran = sum(c.get(s, 0) for s in RAN)
    done = f"{ran}/{status.total} cells ran ({c.get('succeeded', 0)} succeeded)"
    if c.get("cancelled"):
        done += f", {c['cancelled']} cancelled"
    return f"{status.name}: {done} · sweep {status.status}{eta}"


#: Most grid rows (model × task [× params]) drawn with readable labels.
MAX_CELL_ROWS = 60


def cells_view(cells: pl.DataFrame) -> None:
    """The sweep's model × task × trial grid coloured by cell state.

    A grid of more than ``MAX_CELL_ROWS`` rows cannot label every row, so it
    shows the first models that fit, says so, and lets the user choose others.
    """
    from fle_core import charts

    group = [c for c in ("model", "task", "params_json") if c in cells.columns]
    rows_per_model = cells.select(group).unique().group_by("model").len()
    models = sorted(m for m in rows_per_model["model"].to_list() if m is not None)
    if rows_per_model["len"].sum() > MAX_CELL_ROWS and len(models) > 1:
        per = max(1, int(cast("int", rows_per_model["len"].max())))
        default = models[: max(1, MAX_CELL_ROWS // per)]
        chosen = st.multiselect(
            "Models in the grid",
            models,
            default=default,
            key="mon_grid_models",
            help=f"The grid shows at most about {MAX_CELL_ROWS} rows with readable labels; "
            "the counts above cover the whole sweep",
        )
        shown = cells.filter(pl.col("model").is_in(chosen or default))
        st.caption(
            f"Grid: {notes.plural(len(chosen or default), 'model')} of {len(models)} "
            f"({shown.select(group).unique().height} of {int(rows_per_model['len'].sum())} rows)."
        )
        cells = shown
    grid_chart(charts.sweep_cells_chart, cells, grid=True)


PILOT_COLUMNS = {
    "pilot": st.column_config.TextColumn("Pilot (job_task)", pinned=True),
    "slurm_state": st.column_config.TextColumn("Slurm state", help="From squeue; empty once Slurm forgot it"),
    "node": st.column_config.TextColumn("Node"),
    "reason": st.column_config.TextColumn("Reason"),
    "runner_status": st.column_config.TextColumn("Runner"),
    "alive": st.column_config.CheckboxColumn("Alive"),
    "jobs_run": st.column_config.NumberColumn("Jobs run", format="%d"),
    "heartbeat_at": st.column_config.DatetimeColumn("Last heartbeat", format="HH:mm:ss"),
    "log_path": st.column_config.TextColumn("Log"),
    "sweeps": st.column_config.TextColumn("Sweeps"),
    "submitted_at": st.column_config.DatetimeColumn("Submitted", format="YYYY-MM-DD HH:mm"),
}


def pilot_table(view: Any) -> None:
    """Pilots of recent Slurm submissions with their Slurm state (nothing without any)."""
    if view.frame.is_empty():
        return
    live = view.frame.filter(pl.col("slurm_state").is_in(["PENDING", "RUNNING", "CONFIGURING", "COMPLETING"]))
    stale = " · Slurm states stale" if getattr(view, "stale_s", None) is not None else ""
    with st.expander(f"Slurm pilots ({live.height} queued or running, {view.frame.height} recent){stale}"):
        if stale:
            st.warning(
                f"Slurm states as of {frames.duration_text(view.stale_s)} ago (stale): {view.slurm_error}",
                icon=":material/history:",
            )
        elif view.slurm_error:
            st.warning(f"Slurm states unavailable: {view.slurm_error}", icon=":material/cloud_off:")
        frame = view.frame.with_columns(  # a pilot whose runner went quiet is not "running"
            runner_status=pl.when(
                pl.col("alive") | pl.col("runner_status").is_in(["stopped"]).fill_null(True)
            )
            .then(pl.col("runner_status"))
            .otherwise(pl.lit(SILENT))
        )
        table(frame, PILOT_COLUMNS)
