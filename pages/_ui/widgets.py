"""UI layer, part 4: shared renderers (tables, status, charts, live fragments)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl
import streamlit as st

from pages._ui import frames, labels
from pages._ui.control import control_store
from pages._ui.core import guard
from pages._ui.draw import grid_chart as grid_chart  # re-exported: its old home
from pages._ui.tables import table


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
    "model": st.column_config.TextColumn(
        "Model", pinned=True, help="Names over 32 characters read head…tail; the CSV export has them in full"
    ),
    "success_rate": st.column_config.ProgressColumn(
        "Success", format="percent", min_value=0.0, max_value=1.0
    ),
    "ci_95": st.column_config.TextColumn(
        "95% CI", help="Tasks as a sample: the task-clustered Wilson interval (Inspect's clustered ci_wilson)"
    ),
    "solved": st.column_config.TextColumn(
        "Solved", help="Successes / scored trials (trajectories of tasks with a quota)"
    ),
    "pass_at_1": st.column_config.NumberColumn(
        "pass@1", format="percent", help="Mean over tasks of each task's success rate"
    ),
    "reward_iqm": st.column_config.NumberColumn("Reward IQM", format="%.1f", help="Task units, pooled"),
    "cost_per_success": st.column_config.NumberColumn(
        "Cost per success (tokens)",
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
        "Ran",
        format="percent",
        min_value=0.0,
        max_value=1.0,
        help="Cells that ran to an outcome",
        width="small",
    ),
    "total": st.column_config.NumberColumn("Cells", format="%d", width="small"),
    **{
        state: st.column_config.NumberColumn(state.replace("_", "-").capitalize(), format="%d", width="small")
        for state in ("succeeded", "failed", "early_stopped", "cancelled", "pending", "running")
    },
}


def status_counts(status: Any) -> None:
    """One metric per cell state."""
    shown = {k: v for k, v in status.counts.items() if v or k in ("pending", "running", "succeeded")}
    for col, (state, n) in zip(st.columns(len(shown)), shown.items(), strict=True):
        col.metric(state.replace("_", " ").capitalize(), n)


def failure_title(row: dict) -> str:
    """An expander label (Markdown): model and task come from a user's sweep config."""
    code = row.get("exit_code")
    return frames.plain(
        f"{labels.model_name(row.get('model'))} · {labels.task_name(row.get('task'))} · trial {row.get('trial')} · attempt "
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


def failure_note(counts: pl.DataFrame, models: list[str] | None = None, rule: str = "fail") -> None:
    """Say plainly when trajectories are infrastructure failures or errors (Inspect logs):
    they count as failed (or, under ``rule="exclude"``, the infrastructure failures are left
    out), so a model's pass@8 may rest on fewer real rollouts than it shows."""
    if counts.is_empty():
        return
    if models:
        counts = counts.filter(pl.col("model").is_in(models))
    bad = counts.filter(
        pl.sum_horizontal([c for c in counts.columns if c not in ("model", "trajectories")]) > 0
    )
    if bad.is_empty():
        return
    infra = int(bad["infrastructure"].sum())
    parts = [f"{infra} infrastructure failure(s)"] if infra else []
    for col, label in (
        ("errors", "other error(s)"),
        ("running", "from running logs"),
        ("missing", "missing"),
        ("invalidated", "invalidated (left out)"),
        ("retried", "retried after an error"),
        ("fallbacks", "partly served by a fallback model"),
    ):
        if col not in bad.columns:
            continue
        if int(bad[col].sum()):
            parts.append(f"{int(bad[col].sum())} {label}")
    infra_rule = (
        "infrastructure failures are left out of every number here (the sidebar switch)"
        if rule == "exclude"
        else "infrastructure failures count as failures too (as FLE's scorer decides; the sidebar "
        "switch leaves them out)"
    )
    st.warning(
        f"Inspect logs: {', '.join(parts)} across {bad.height} model(s). Errored trajectories count as "
        f"failures here; {infra_rule}. Check the counts before trusting a pass@k.",
        icon=":material/report:",
    )
    with st.expander("Failures per model"):
        table(labels.short_names(bad))


# ---------------------------------------------------------------- Slurm pilots and stopped cells
def slurm_caption(ws: Any) -> None:
    """The server-side ``[slurm]`` options pilots get (the browser chooses only how many)."""
    from fle_core import sweeps

    with guard():
        settings = sweeps.slurm_settings(ws)
        shown = ", ".join(f"{k} {v}" for k, v in settings["options"].items()) or "Slurm's defaults"
        st.caption(
            f":material/dns: Pilots are `fle-core runner --once` jobs with {shown} ([slurm] in config.toml)."
        )
        if not settings["sbatch_found"]:
            st.warning(
                "`sbatch` is not on this host's PATH: launching queues the sweep but submits no pilots.",
                icon=":material/warning:",
            )


def submit_pilots_for(ws: Any, sweep_id: str, pilots: int, per_pilot: int) -> None:
    """Submit pilots for a just-launched sweep; on a Slurm error the sweep stays queued."""
    from fle_core import sweeps
    from fle_core.errors import FleError

    try:
        sub = sweeps.submit_pilots(
            ws, pilots, sweep_ids=[sweep_id], max_concurrent=per_pilot, store=control_store(ws)
        )
    except FleError as exc:
        submitted = getattr(exc, "job_id", None)  # slurm.PilotsNotRecorded: Slurm took them
        unknown = hasattr(exc, "token")  # slurm.SubmissionUnknown: Slurm did not say
        st.warning(
            f"Launched `{sweep_id}`: it is queued; Slurm job `{submitted}` was submitted but not recorded."
            if submitted
            else f"Launched `{sweep_id}`: it is queued; whether Slurm pilots were submitted is unknown."
            if unknown
            else f"Launched `{sweep_id}`: it is queued, but no Slurm pilots were submitted."
        )
        st.code(exc.message + (f"\nhint: {exc.hint}" if exc.hint else ""), language=None)
        return
    st.success(f"Launched `{sweep_id}` on Slurm: job `{sub.job_id}` with {sub.pilots} pilot(s).")
    # pilots never write the warehouse: this host syncs what they write while they run
    pid = sweeps.ensure_follower(ws, sweep_id)
    st.caption(
        f"This host syncs the sweep's source every 30 s while its cells run (`fle-core sync --follow`, "
        f"pid {pid}), so Compare, Tasks and Trajectories fill in as pilots finish jobs."
    )


def stopped_cells(cells: pl.DataFrame) -> None:
    """Failed cells and why they stopped (retries used up, or lost with dying runners)."""
    if "stop_reason" not in cells.columns:
        return
    failed = cells.filter(pl.col("status") == "failed")
    if failed.is_empty():
        return
    st.subheader(f"Stopped cells ({failed.height})")
    table(
        labels.short_names(
            failed.select("model", "task", "trial", "attempts", "failures", "lost", "stop_reason")
        ),
        {"stop_reason": st.column_config.TextColumn("Why it stopped", width="large")},
    )


def suite_notes(notes: dict, pooled_shown: bool) -> None:
    """What suite-level numbers left out, and (``pooled_shown``: rows are models) which
    systems each model pools (``compute("suite_note")``)."""
    if notes["dropped"]:
        st.caption(frames.plain(notes["dropped"], limit=600))
    for model, n, parts in notes["pooled"] if pooled_shown else []:
        st.caption(frames.plain(f"{model} pools {n} systems: {'; '.join(parts)}", limit=600))
