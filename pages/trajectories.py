"""Trajectories: one run step by step, or two runs of the same task side by side.

URL state: ``trj_sim`` (``1``: include simulated data), ``trj_model``, ``trj_task`` (narrow the picker), ``trj_id`` (the
trajectory, ``source:version:instance``), ``trj_other`` (a second trajectory of the
same task to compare), ``trj_x`` (``step`` or ``time``), ``trj_page`` (the transcript's page);
``view`` pins a shared view. Samples invalidated in their Inspect log are listed (marked), not hidden.
"""

import polars as pl
import streamlit as st

from pages import _ui  # first: it finishes importing pandas before any chart is built

# isort: split
from fle_core import charts

PAGE, PREFIX = "trajectories", "trj_"
NONE = "(none)"
PAGE_SIZE = 20  # transcript entries per page
ROLES = {"task": "task", "game": "game output", "agent": "agent's program", "info": "info", "score": "score"}

ws = _ui.workspace()
st.title("Trajectories")


def picker(summ: pl.DataFrame) -> tuple[str | None, str | None, str]:
    """Choose a trajectory (and optionally a second one of the same task)."""
    with st.sidebar:
        st.header("Pick")
        sim = _ui.simulated_switch(summ, "trj_sim")
        summ = _ui.select(summ, _ui.Selection(simulated=sim))
        models = _ui.url_multiselect(
            "Models", "trj_model", _ui.distinct(summ, "model"), placeholder="All models"
        )
        tasks = _ui.url_multiselect("Tasks", "trj_task", _ui.distinct(summ, "task"), placeholder="All tasks")
        pool = _ui.select(summ, _ui.Selection((), tuple(models), tuple(tasks), ()))
        labels = _ui.trajectory_labels(pool, include=[_ui.url_text("trj_id")])
        first = _ui.url_select(
            "Trajectory",
            "trj_id",
            list(labels),
            None,
            format_func=labels.get,
            help="#epoch, ✓ quota reached / ✗ not, best reward, model, task, run; newest run first. "
            "Type to search.",
        )
        same_task = (
            _ui.trajectory_labels(_ui.same_task(summ, first), include=[_ui.url_text("trj_other")])
            if first
            else {}
        )
        same_task.pop(first, None)
        other = _ui.url_select(
            "Compare with (same task)",
            "trj_other",
            [NONE, *same_task],
            NONE,
            format_func=lambda k: same_task.get(k, k),
        )
        x = _ui.url_select("X axis", "trj_x", ["step", "time"], "step", widget="segmented_control")
    return first, (None if other == NONE else other), x


def show(key: str, x: str, column, y_max: float | None = None) -> None:
    """Summary numbers, the reward curve (with the quota; ``y_max`` shared side by side),
    tokens, and the steps' code and output."""
    row = _ui.trajectory_row(summ, key)
    column.subheader(
        _ui.plain(f"{_ui.model_name(row['model'])} · {_ui.task_name(row['task'])}"),
        help=_ui.plain(f"{row['model']} · {row['task']}"),  # the full names
    )
    column.caption(
        f"`{key}` · sweep {row.get('sweep_id') or '—'} · "
        + ("simulated" if row.get("simulated") else "recorded")
    )
    a, b, c = column.columns(3)
    a.metric("Best reward", _ui.fmt(row.get("best_reward")))
    b.metric("Steps", _ui.fmt(row.get("steps"), 0))
    c.metric("Success", {True: "yes", False: "no", None: "no quota"}[row.get("success")])
    a.metric("Final reward", _ui.fmt(row.get("final_reward")))
    b.metric("Total tokens", _ui.fmt(row.get("total_tokens"), 0))
    c.metric("Duration", _ui.fmt(row.get("duration_s"), 0, " s"))
    found = _ui.inspect_sample(ws, key)
    if found is not None:
        outcome(found, column)
    steps = _ui.trajectory_steps(ws, pin, key)
    quota = row.get("quota")
    _ui.grid_chart(
        charts.learning_curve_chart, steps, x=x, palette=palette, quota=quota, y_max=y_max, where=column
    )
    tokens = [c for c in ("prompt_tokens", "completion_tokens") if c in steps.columns]
    if found is not None:  # Inspect counts tokens per sample: a per-step chart would show one bar
        column.caption(_ui.sample_tokens_text(row))
    elif any(steps[c].is_not_null().any() for c in tokens):  # sources without token counts: no chart
        _ui.grid_chart(charts.step_tokens_chart, steps, where=column)
    if found is not None:
        transcript(key, column)
        return
    with column.expander("Code and output of each step"):
        step_details(key, steps)


def outcome(found: dict, column) -> None:
    """A trajectory from an Inspect log: which log, sample and epoch, how it ended, and what
    Inspect recorded about it (invalidation, retried errors, model fallbacks)."""
    cost = f" · cost ${found['total_cost']:.4f}" if found.get("total_cost") else ""
    solver = f" · solver {_ui.plain(found['solver'])}" if found.get("solver") else ""
    column.caption(
        f"From Inspect log {_ui.plain(found['path'])} · sample {_ui.plain(found['sample_id'])} · "
        f"epoch {found['epoch']} · "
        f"log {found['log_status']}{cost}{solver}"
    )
    if found.get("invalidated_by") is not None or found.get("invalidated_at") is not None:
        column.warning(
            f"Invalidated by {_ui.plain(found.get('invalidated_by') or 'unknown')} "
            f"({_ui.plain(found.get('invalidated_reason') or 'no reason given')}): left out of every metric.",
            icon=":material/block:",
        )
    if found.get("error_retries"):
        column.info(
            f"Inspect retried {found['error_retries']} error(s) before this result: "
            f"{_ui.plain(found.get('retry_errors') or '', limit=300)}",
            icon=":material/replay:",
        )
    if found.get("fallbacks"):
        column.info(
            f"{found['fallbacks']} request(s) were served by another model than the one named "
            f"({_ui.plain(found.get('fallbacks_json') or '', limit=300)})",
            icon=":material/swap_horiz:",
        )
    if found.get("failure_kind"):
        kind = {"infrastructure": "Infrastructure failure", "error": "Error", "limit": "Limit hit"}
        text = found.get("error") or found.get("limit_hit") or ""
        # the message comes from the log (it can quote the agent's output): literal text, never Markdown
        column.error(
            f"{kind.get(found['failure_kind'], found['failure_kind'])}: {_ui.plain(text, limit=600)}"
        )


def transcript(key: str, column) -> None:
    """The sample's events as a transcript, read from its Inspect log when asked (never
    synced), a page at a time; ``inspect view`` shows the full sample."""
    path = _ui.inspect_log_path(ws, key)
    found = _ui.inspect_sample(ws, key) or {}
    with column.expander("Transcript (the agent's programs and the game's output)"):
        folder, _, name = (path or "").rpartition("/")
        st.code(f"inspect view --log-dir {folder or '.'}", language="bash")
        st.caption(
            f"Then open {_ui.plain(name)}, sample {_ui.plain(found.get('sample_id'))}, epoch {found.get('epoch')}."
        )
        state_key = f"_transcript_{key}"
        if st.button("Read the transcript from the log", key=f"tr_{key}", icon=":material/download:"):
            st.session_state[state_key] = True
        if not st.session_state.get(state_key) and "trj_page" not in st.query_params:
            st.caption("Messages and events stay in the log (lean sync); they are read when you ask.")
            return
        entries = _ui.fetch_transcript(ws, key)
        if not entries:
            st.caption("The sample has no events to show.")
            return
        pages = max(1, -(-len(entries) // PAGE_SIZE))
        page = _ui.url_int("Page", "trj_page", 1, 1, pages) if pages > 1 else 1
        st.caption(f"{len(entries)} entries · page {page} of {pages}")
        for entry in entries[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]:
            st.markdown(f"**Step {entry['step']} · {ROLES.get(entry['role'], entry['role'])}**")
            if entry["role"] == "agent":
                st.code(entry["text"], language="python")
            else:
                st.text(entry["text"])


def step_details(key: str, steps: pl.DataFrame) -> None:
    """Code/output come from the warehouse if synced, else from the source on demand."""
    detail = _ui.step_detail_if_synced(steps)
    if detail is None:
        state_key = f"_detail_{key}"
        if st.button("Fetch code and output from the source", key=f"fetch_{key}", icon=":material/download:"):
            st.session_state[state_key] = True
        if not st.session_state.get(state_key):
            st.caption(
                "Code and output were not synced (lean sync); they are read from the "
                "source database when you ask."
            )
            return
        detail = _ui.fetch_step_detail(ws, key)
    for step in detail.iter_rows(named=True):
        st.markdown(f"**Step {_ui.fmt(step['depth'], 0)}** · reward {_ui.fmt(step['value'])}")
        st.code(step.get("code") or "# (no code recorded)", language="python")
        if step.get("response"):
            st.text(step["response"])


with _ui.guard():
    pin = _ui.apply_view(ws, PAGE, PREFIX)
    _ui.stop_if_unsynced(pin.version, "No trajectories yet.")
    summ = _ui.summaries(ws, pin, include_invalidated=True)  # invalidated samples: shown, marked
    palette = _ui.palette(summ)
    first, other, x = picker(summ)
    if first is None:
        _ui.empty_state("No trajectory matches these filters.", ["Clear a filter in the sidebar."])
        st.stop()
    _ui.share_button(ws, PAGE, PREFIX, pin)
    if other is None:
        show(first, x, st.container())
    else:
        left, right = st.columns(2, gap="large")
        top = charts.curve_y_max(  # one y scale for both curves
            *(_ui.trajectory_steps(ws, pin, k) for k in (first, other)),
            quotas=tuple(_ui.trajectory_row(summ, k).get("quota") for k in (first, other)),
        )
        with left, _ui.guard():
            show(first, x, left, top)
        with right, _ui.guard():
            show(other, x, right, top)
