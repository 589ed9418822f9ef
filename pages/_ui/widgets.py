"""UI layer, part 4: shared renderers (tables, status, charts, live fragments)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import polars as pl
import streamlit as st

from pages._ui import frames, notes
from pages._ui.core import guard


def live(render: Callable[[], None], every_s: float | None) -> None:
    """Run ``render`` inside an auto-refreshing fragment (or once, when ``every_s`` is None).

    The page's content lives in ``render`` so it is the same code whether the
    fragment re-runs it in the browser or AppTest runs the script once.
    """
    if every_s:
        st.fragment(render, run_every=every_s)()
    else:
        render()


# ---------------------------------------------------------------- shared renderers
LEADERBOARD_COLUMNS = {
    "model": st.column_config.TextColumn("Model", pinned=True),
    "success_rate": st.column_config.ProgressColumn(
        "Success", format="percent", min_value=0.0, max_value=1.0
    ),
    "ci_95": st.column_config.TextColumn("95% CI (Wilson)"),
    "solved": st.column_config.TextColumn(
        "Solved", help="Successes / scored trials (trajectories of tasks with a quota)"
    ),
    "pass_at_1": st.column_config.NumberColumn(
        "pass@1", format="percent", help="Mean over tasks of each task's success rate"
    ),
    "reward_iqm": st.column_config.NumberColumn("Reward IQM", format="%.1f", help="Task units, pooled"),
    "cost_per_success": st.column_config.NumberColumn(
        "Tokens per success",
        format="compact",
        help="Cost per success: all scored runs' tokens ÷ successes (failed runs count)",
    ),
}


def number_columns(frame: pl.DataFrame, digits: int = 3) -> dict[str, Any]:
    """Column config for a plain table: ``Sentence case`` headers, floats to ``digits`` places."""
    out: dict[str, Any] = {}
    for name, dtype in frame.schema.items():
        label = name.replace("_", " ").capitalize()
        out[name] = st.column_config.NumberColumn(label, format=f"%.{digits}f") if dtype.is_float() else label
    return out


def leaderboard_view(board: pl.DataFrame) -> pl.DataFrame:
    return frames.leaderboard_view(board, list(LEADERBOARD_COLUMNS))


SOURCE_COLUMNS = {
    "source": st.column_config.TextColumn("Source", pinned=True),
    "display_url": st.column_config.TextColumn("URL (password masked)"),
    "rows": st.column_config.NumberColumn("Steps", format="%d"),
    "trajectories": st.column_config.NumberColumn("Trajectories", format="%d"),
    "flagged_rows": st.column_config.NumberColumn(
        "Flagged rows", format="%d", help="Kept, but task or meta unparsed"
    ),
    "simulated_rows": st.column_config.NumberColumn("Simulated rows", format="%d"),
    "last_sync_id": st.column_config.NumberColumn("Last sync", format="%d"),
    "last_status": st.column_config.TextColumn("Status"),
    "last_finished_at": st.column_config.DatetimeColumn("Synced at", format="YYYY-MM-DD HH:mm:ss"),
    "last_at": st.column_config.DatetimeColumn("Newest step", format="YYYY-MM-DD HH:mm:ss"),
    "last_error": st.column_config.TextColumn("Last error"),
}

SWEEP_COLUMNS: dict[str, Any] = {
    "sweep_id": st.column_config.TextColumn("Sweep", pinned=True),
    "name": "Name",
    "status": "Status",
    "progress": st.column_config.ProgressColumn(
        "Ran", format="percent", min_value=0.0, max_value=1.0, help="Cells that ran to an outcome"
    ),
    "total": st.column_config.NumberColumn("Cells", format="%d"),
    **{
        state: st.column_config.NumberColumn(state.replace("_", "-").capitalize(), format="%d")
        for state in ("succeeded", "failed", "early_stopped", "cancelled", "pending", "running")
    },
    "created_at": st.column_config.DatetimeColumn("Created", format="YYYY-MM-DD HH:mm"),
    "executor": "Executor",
    "source": "Writes to",
}


def runner_health(runners: pl.DataFrame, starting_pid: int | None = None, stop=None) -> None:
    """Alive runners and their last heartbeat; a clear note when none is alive.

    ``starting_pid``: a runner this session just started that has not sent its
    first heartbeat yet (it is "starting", not "not alive"). ``stop``: a callable
    taking a runner id; when given, each alive runner gets a Stop button. The note
    says that a runner outlives the app.
    """
    alive = runners.filter(pl.col("alive")) if "alive" in runners.columns else runners.head(0)
    if alive.is_empty() and starting_pid and _pid_running(starting_pid):
        st.caption(
            f":material/hourglass_top: Runner starting (pid {starting_pid}); "
            "its first heartbeat comes within seconds."
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
        st.dataframe(runners.select(cols), hide_index=True, column_config=RUNNER_COLUMNS)


RUNNER_COLUMNS: dict[str, Any] = {
    "host": "Host",
    "pid": st.column_config.NumberColumn("pid", format="%d"),
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


def status_counts(status: Any) -> None:
    """One metric per cell state."""
    shown = {k: v for k, v in status.counts.items() if v or k in ("pending", "running", "succeeded")}
    for col, (state, n) in zip(st.columns(len(shown)), shown.items(), strict=True):
        col.metric(state.replace("_", " ").capitalize(), n)


def failure_title(row: dict) -> str:
    code = row.get("exit_code")
    return (
        f"{row.get('model')} · {row.get('task')} · trial {row.get('trial')} · attempt "
        f"{row.get('attempt')} · {row.get('outcome') or row.get('status')}"
        + (f" (exit {code})" if code is not None else "")
    )


def guarded(fn: Callable[..., None], *args) -> None:
    """Call ``fn`` with FleErrors rendered (for fragment bodies)."""
    with guard():
        fn(*args)


def progress_callback(bar) -> Callable[..., None]:
    """Adapt ``sync.sync``'s progress callback to a ``st.progress`` bar."""

    def cb(*args, **kwargs) -> None:
        done = kwargs.get("done", args[0] if args else 0)
        total = kwargs.get("total", args[1] if len(args) > 1 else 0)
        if total:
            bar.progress(min(1.0, float(done) / float(total)), text=f"{int(done):,} / {int(total):,} rows")

    return cb


def preset_caption(preset: dict | None) -> None:
    """What a server-side executor preset runs (never editable from the browser)."""
    if not preset:
        return
    command = " ".join(preset.get("command") or [])
    what = f"`{command}`" if command else f"built-in {preset.get('kind')} executor"
    st.caption(f"{preset.get('description') or preset.get('kind')} · runs {what}")


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
    grid_chart(charts.sweep_cells_chart(cells), grid=True)


def grid_chart(chart, where=None, *, grid: bool = False) -> None:
    """Draw a chart at the size its builder gave it (``fle_core.charts.base``: "Sizes").

    Single views fill the column (autosize ``fit-x``) and keep the plot height the
    builder chose from its rows; grids (``grid=True``: heatmaps, the comparison
    matrix, the sweep cells) and multi-panel charts keep their own width and
    height (``pad``) and are drawn ``width="content"``. Streamlit's ``height`` is
    always ``"content"``: the drawing's own height, titles and legends included.
    ``where`` is a container or column (default: the page).
    """
    from fle_core.charts.base import FIT_X, PAD

    spec = chart.to_dict(validate=False)
    composite = any(k in spec for k in ("concat", "hconcat", "vconcat", "facet", "repeat"))
    fixed = grid or composite
    chart = chart.properties(autosize=PAD if fixed else FIT_X)
    (where or st).altair_chart(chart, width="content" if fixed else "stretch", height="content")


#: Lines of an experiment log previewed on the page (the download has them all).
PREVIEW_LINES = 120


def markdown_preview(md: str) -> None:
    """The first lines of a Markdown export: 30 models give 435 pairs × tasks rows, which a
    browser cannot render in reasonable time."""
    lines = md.splitlines()
    with st.expander("Markdown preview"):
        st.markdown("\n".join(lines[:PREVIEW_LINES]))
        if len(lines) > PREVIEW_LINES:
            st.caption(f"First {PREVIEW_LINES} of {len(lines):,} lines; the download has them all.")
