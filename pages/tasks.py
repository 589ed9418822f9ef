"""Tasks: model × task heatmap, none/partial/full classification, difficulty ranking.

URL state: ``tsk_sim`` (``1``: include simulated data), ``tsk_source``, ``tsk_sweep``, ``tsk_model``
(repeatable filters), ``tsk_infra`` (``exclude``: leave infrastructure failures out),
``tsk_metric`` (heatmap metric), ``tsk_k`` (k for pass@k),
``tsk_tab`` (open tab); ``view`` pins a shared view.
"""

import streamlit as st

from pages import _ui  # first: it finishes importing pandas before any chart is built

# isort: split
from fle_core import charts

PAGE, PREFIX = "tasks", "tsk_"
HEAT_METRICS = {
    "success_rate": "Success rate",
    "pass_at_k": "pass@k",
    "reward_mean": "Mean best reward",
    "reward_iqm": "Reward IQM",
    "mean_steps": "Mean steps",
}

ws = _ui.workspace()
st.title("Tasks")


def controls(summ, tab: str) -> tuple[_ui.Selection, str, int]:
    with st.sidebar:
        st.header("Filters")
        sim = _ui.simulated_switch(summ, "tsk_sim")
        summ = _ui.select(summ, _ui.Selection(simulated=sim))
        sources = _ui.url_multiselect(
            "Sources", "tsk_source", _ui.distinct(summ, "source"), placeholder="All sources"
        )
        sweeps = _ui.url_multiselect(
            "Sweeps", "tsk_sweep", _ui.distinct(summ, "sweep_id"), placeholder="All sweeps"
        )
        models = _ui.url_multiselect(
            "Models", "tsk_model", _ui.distinct(summ, "model"), placeholder="All models"
        )
    rule = _ui.infrastructure_switch("tsk_", summ)
    with st.sidebar:
        # only the Heatmap tab uses these: elsewhere they are folded away (the URL keeps them)
        if tab == "Heatmap":
            st.header("Heatmap")
            box = st.container()
        else:
            box = st.expander("Heatmap settings (not used here)")
        with _ui.param_notices(st.sidebar), box:
            metric = _ui.url_select(
                "Metric", "tsk_metric", list(HEAT_METRICS), "success_rate", format_func=HEAT_METRICS.get
            )
            k = _ui.url_int("k for pass@k", "tsk_k", 3, 1, 64)
    return (
        _ui.Selection(tuple(sources), tuple(models), (), tuple(sweeps), infrastructure=rule, simulated=sim),
        metric,
        k,
    )


def heatmap(pin, sel, metric: str, k: int) -> None:
    group = _ui.compute(ws, pin, "group_metrics", sel, k_values=[k])
    column = f"pass_at_{k}" if metric == "pass_at_k" else metric
    _ui.grid_chart(
        charts.task_heatmap_chart,
        group,
        column,
        palette=palette,
        infrastructure=sel.infrastructure,
        grid=True,
    )
    if metric == "pass_at_k":
        st.caption(
            f"pass@{k} is shown only where a (model, task) cell has at least {k} trials; "
            "grey cells lack trials."
        )


def classification(pin, sel) -> None:
    group = _ui.compute(ws, pin, "group_metrics", sel, k_values=[1])
    _ui.grid_chart(
        charts.classification_heatmap_chart,
        group,
        palette=palette,
        infrastructure=sel.infrastructure,
        grid=True,
    )
    outcomes = charts.classify_outcomes(group)
    counts = outcomes.group_by("outcome").len().sort("outcome")
    _ui.table(counts.rename({"outcome": "Outcome", "len": "(model, task) cells"}), width="content")


def difficulty(pin, sel) -> None:
    """Tasks ranked hardest first by pooled success rate across the chosen models."""
    ranking = _ui.compute(ws, pin, "task_difficulty", sel)
    _ui.table(
        ranking,
        {
            "task": st.column_config.TextColumn(
                "Task",
                pinned=True,
                help="The task key without `_throughput` (the chart's tooltips have it in full)",
            ),
            "success_rate": st.column_config.ProgressColumn(
                "Success", format="percent", min_value=0.0, max_value=1.0
            ),
            "ci_95": st.column_config.TextColumn("95% CI (Wilson)"),
            "n": st.column_config.NumberColumn("Trials", format="%d"),
            "infra_failures": st.column_config.NumberColumn(
                "Infrastructure failures",
                format="%d",
                help="Left out of Trials (sidebar switch)"
                if sel.infrastructure == "exclude"
                else "Counted among Trials as failures, as FLE's scorer does (the sidebar switch leaves them out)",
            ),
            "successes": st.column_config.NumberColumn("Successes", format="%d"),
            "reward_mean": st.column_config.NumberColumn("Mean best reward", format="%.1f"),
            "mean_steps": st.column_config.NumberColumn("Mean steps", format="%.1f"),
            "mean_steps_to_success": st.column_config.NumberColumn("Steps to success", format="%.1f"),
        },
    )
    group = _ui.compute(ws, pin, "group_metrics", sel, k_values=[1])
    _ui.grid_chart(charts.pass_histogram_chart, group, palette=palette)


with _ui.guard():
    pin = _ui.apply_view(ws, PAGE, PREFIX)
    _ui.stop_if_unsynced(pin.version, "No tasks to show yet.")
    summ = _ui.summaries(ws, pin)
    palette = _ui.palette(summ)
    head = st.container()  # badge and Share above the tabs; filled once the selection is known
    tabs = _ui.url_tabs(["Heatmap", "None / partial / full", "Difficulty ranking"], "tsk_tab")
    open_tab = next((label for label, tab in tabs.items() if tab.open), "Heatmap")
    sel, metric, k = controls(summ, open_tab)
    chosen = _ui.select(summ, sel)
    if chosen.is_empty():
        _ui.empty_state("No trajectories match these filters.", ["Clear a filter in the sidebar."])
        st.stop()
    with head:
        _ui.simulated_badge(chosen)
        _ui.share_button(ws, PAGE, PREFIX, pin)
    sections = {
        "Heatmap": lambda: heatmap(pin, sel, metric, k),
        "None / partial / full": lambda: classification(pin, sel),
        "Difficulty ranking": lambda: difficulty(pin, sel),
    }
    for label, tab in tabs.items():
        if tab.open:  # lazy: only the selected tab computes
            with tab, _ui.guard():
                sections[label]()
