"""UI layer: Compare's cost, reliability and planner panels (kept here so the page stays thin).

Each section reads finished frames through ``data.compute`` (cached per data version and
selection) and draws ``fle_core.charts`` builders; the words under a chart say what its
numbers are. URL state: ``cmp_plan`` (``half_width`` | ``difference``), ``cmp_target``
(the target's value), ``cmp_plan_sys`` (systems drawn on the planner chart).
"""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st

from fle_core import charts
from fle_core.workspace import Workspace
from pages._ui.core import empty_state
from pages._ui.data import Selection, compute
from pages._ui.notes import plural
from pages._ui.state import Pin, url_multiselect, url_select
from pages._ui.tables import table as table_with_cue
from pages._ui.widgets import grid_chart

POPULATIONS = {
    "tasks": "Tasks like these (task-clustered)",
    "suite": "This fixed suite (stratified by task)",
}
TARGETS = {"half_width": "Interval half-width", "difference": "Difference to detect"}
TARGET_VALUES = {
    "half_width": ["0.02", "0.03", "0.05", "0.075", "0.1"],
    "difference": ["0.05", "0.1", "0.15", "0.2", "0.3"],
}
PLAN_DEFAULT = {"half_width": "0.05", "difference": "0.1"}
PLAN_CHART_SYSTEMS = 4

COST_COLUMNS = {
    "model": st.column_config.TextColumn("System", pinned=True, width="medium"),
    "cost_per_success": st.column_config.NumberColumn("Cost per success", format="%.4g"),
    "ci": st.column_config.TextColumn("95% CI"),
    "cost_per_run": st.column_config.NumberColumn("Cost per run", format="%.4g"),
    "successes": st.column_config.NumberColumn("Successes", format="%d"),
    "n": st.column_config.NumberColumn("Scored runs", format="%d"),
    "frontier_share": st.column_config.ProgressColumn(
        "On the frontier", format="percent", min_value=0.0, max_value=1.0, help="Share of bootstrap resamples"
    ),
    "unpriced": st.column_config.NumberColumn("Runs without a cost", format="%d"),
}
VARIANCE_COLUMNS = {
    "model": st.column_config.TextColumn("System", pinned=True, width="medium"),
    "n_tasks": st.column_config.NumberColumn("Tasks", format="%d"),
    "epochs": st.column_config.NumberColumn("Epochs per task", format="%.1f"),
    "mean": st.column_config.NumberColumn("Success rate", format="percent"),
    "var_between": st.column_config.NumberColumn(
        "Between-task variance", format="%.4f", help="σ²_b: how much tasks differ (one-way ANOVA)"
    ),
    "var_within": st.column_config.NumberColumn(
        "Within-task variance", format="%.4f", help="σ²_w: how much epochs of one task differ"
    ),
    "icc": st.column_config.NumberColumn("ICC", format="%.2f", help="σ²_b / (σ²_b + σ²_w)"),
    "design_effect": st.column_config.NumberColumn(
        "Design effect",
        format="%.2f",
        help="Task-clustered variance of the success rate ÷ the variance of as many independent trials",
    ),
    "flip_rate": st.column_config.ProgressColumn(
        "Flip rate",
        format="percent",
        min_value=0.0,
        max_value=1.0,
        help="Share of tasks (run ≥ 2 times) whose outcome differs across epochs",
    ),
}
PLAN_COLUMNS = {  # what a plan needs first: the table is read in a narrow window too
    "model": st.column_config.TextColumn("System", pinned=True, width="medium"),
    "epochs_needed": st.column_config.TextColumn("Epochs needed (tasks fixed)"),
    "tasks_needed": st.column_config.TextColumn("Tasks needed (epochs fixed)"),
    "now": st.column_config.TextColumn("± now"),
    "floor": st.column_config.TextColumn("± floor (endless epochs)"),
    "tasks": st.column_config.NumberColumn("Tasks now", format="%d"),
    "epochs": st.column_config.NumberColumn("Epochs now", format="%.1f"),
}


def population_setting(key: str) -> str:
    """Which question the intervals answer (``?<key>=suite``; default: tasks like these)."""
    return url_select(
        "Intervals answer for",
        key,
        list(POPULATIONS),
        "tasks",
        format_func=POPULATIONS.get,
        widget="radio",
        help="Tasks like these: the tasks are a sample (task-clustered; the default). This fixed "
        "suite: the tasks are held fixed (stratified; narrower). docs/metrics.md §6a",
    )


def _sig3(x: pl.Expr) -> pl.Expr:
    """Three significant figures as text; whole numbers (token counts) without a ``.0``."""
    r = x.round_sig_figs(3)
    return pl.when(r.abs() >= 1000).then(r.cast(pl.Int64).cast(pl.String)).otherwise(r.cast(pl.String))


def _interval_text(lo: pl.Expr, hi: pl.Expr) -> pl.Expr:
    return (
        pl.when(hi.is_null() & lo.is_not_null())
        .then(pl.format("{} – unbounded", _sig3(lo)))
        .otherwise(pl.format("{} – {}", _sig3(lo), _sig3(hi)))
    )


def cost_section(ws: Workspace, pin: Pin, sel: Selection, cfg: dict, palette: Any) -> None:
    """The cost–success frontier with intervals, and the cost table under it."""
    front, estimates = compute(
        ws, pin, "frontier", sel, reps=cfg["reps"], seed=cfg["seed"], population=cfg["population"]
    )
    unit = estimates["unit"][0] if estimates.height else "tokens"
    if unit != "USD":
        st.info(
            "Costs are in **tokens**: some scored runs have no dollar cost (their Inspect log records "
            'no `total_cost` and `config.toml` has no `[prices."<model>"]` entry for their model). '
            "Add prices (USD per million input/output tokens) to see dollars. docs/configuration.md",
            icon=":material/payments:",
        )
    if front.is_empty():
        empty_state(
            "No system has a success, so no cost per success can be placed.",
            ["Widen the filters, or check the task quotas."],
        )
        return
    omitted = sorted(set(estimates["model"].drop_nulls()) - set(front["model"]))
    grid_chart(charts.frontier_chart(front, palette=palette, omitted=omitted))
    how = (
        "tasks, then runs within them, resampled (tasks like these); tasks are drawn once per resample "
        "for every system"
        if cfg["population"] == "tasks"
        else "runs resampled within each task (this fixed suite)"
    )
    st.caption(
        f"Cost per success = Σ cost of every scored run ÷ successes ({unit}; failed runs are paid for too). "
        f"Intervals: 95% bootstrap, {how}; {cfg['reps']:,} resamples, seed {cfg['seed']}. Bigger points "
        "sit on the frontier in more resamples: a point on the dashed line with a small share is there "
        "by luck of the draw."
    )
    table = estimates.join(front.select("model", "frontier_share"), on="model", how="left").with_columns(
        _interval_text(pl.col("ci_low"), pl.col("ci_high")).alias("ci")
    )
    table = table.sort(["cost_per_success", "model"], nulls_last=True).select(
        [c for c in COST_COLUMNS if c in table.columns]
    )
    if not table["unpriced"].gt(0).any():
        table = table.drop("unpriced")
    unit_labels = {"cost_per_success": f"Cost per success ({unit})", "cost_per_run": f"Cost per run ({unit})"}
    config = {
        c: st.column_config.NumberColumn(unit_labels[c], format="%.4g") if c in unit_labels else v
        for c, v in COST_COLUMNS.items()
    }
    table_with_cue(table, config, key="cmp_cost_table")


def reliability_section(ws: Workspace, pin: Pin, sel: Selection, cfg: dict, palette: Any) -> None:
    """pass^k lives on the pass@k tab; here: consistency across epochs and where variance comes from."""
    cons = compute(ws, pin, "consistency", sel)
    if cons["outcome_consistency"].is_null().all():
        empty_state(
            "No system ran any task twice, so consistency across epochs is undefined.",
            ["Run more epochs per task (Sweeps: trials per cell, or `fle inspect-eval --epochs`)."],
        )
    else:
        grid_chart(charts.consistency_chart(cons, palette=palette))
        st.caption(
            "Outcome consistency per task = 1 − (variance of success across its epochs ÷ the largest "
            "variance that many epochs can show); 1 = the same outcome every time. Resource spread = "
            "coefficient of variation (sd ÷ mean) of tokens, dollars and time across the epochs of a "
            "task. Both are means over tasks run at least twice. Defined in docs/metrics.md §6b."
        )
    st.subheader("Where the uncertainty comes from")
    var = compute(ws, pin, "variance", sel)
    table_with_cue(
        var.select([c for c in VARIANCE_COLUMNS if c in var.columns]),
        VARIANCE_COLUMNS,
        key="cmp_variance_table",
    )
    st.caption(
        "Success across tasks × epochs as a one-way random-effects model: a high ICC means the task "
        "decides most of the outcome, so more epochs of the same tasks add little; the design effect "
        "is how many times the variance of the suite rate exceeds that of as many independent trials "
        "(its square root: how much wider the honest interval is than a pooled one). The Planner tab "
        "turns these into epochs and tasks. docs/metrics.md §8a."
    )


def planner_section(ws: Workspace, pin: Pin, sel: Selection, cfg: dict, palette: Any) -> None:
    """For a target half-width or a difference to detect: more epochs, or more tasks."""
    from fle_core.stats import variance as V

    c1, c2 = st.columns(2)
    kind = url_select(
        "Plan for",
        "cmp_plan",
        list(TARGETS),
        "half_width",
        where=c1,
        format_func=TARGETS.get,
        horizontal=True,
        widget="radio",
    )
    value = float(
        url_select(
            "Half-width (± success rate)" if kind == "half_width" else "Difference in success rate",
            "cmp_target",
            TARGET_VALUES[kind],
            PLAN_DEFAULT[kind],
            where=c2,
            format_func=lambda v: f"{float(v) * 100:g} points",
        )
    )
    var = compute(ws, pin, "variance", sel)
    usable = var.filter(pl.col("var_between").is_not_null() & pl.col("var_within").is_not_null())
    now = pl.col("var_between") / pl.col("n_tasks") + pl.col("var_within") / (
        pl.col("n_tasks") * pl.col("epochs")
    )
    usable = usable.with_columns(now.alias("_v")).sort(["_v", "model"], descending=[True, False]).drop("_v")
    if usable.is_empty():
        empty_state(
            "Planning needs at least two tasks and a task run twice per system.",
            ["Widen the task filter, or run more epochs."],
        )
        return
    args = {"half_width": value} if kind == "half_width" else {"difference": value}
    plan = V.plan(usable, **args)
    table_with_cue(_plan_view(plan), PLAN_COLUMNS, key="cmp_plan_table")
    goal = (
        f"a 95% interval of ±{value * 100:g} points"
        if kind == "half_width"
        else f"a {value * 100:g}-point difference detected at α = 0.05 with 80% power (each system's "
        "SE must reach Δ / ((1.96 + 0.84)·√2); independent task samples: a paired comparison on "
        "the same tasks needs fewer)"
    )
    st.caption(
        f"To reach {goal}: the variance of a suite rate over T tasks × k epochs is σ²_b/T + σ²_w/(T·k). "
        "'Epochs needed' keeps today's tasks (∞: the between-task floor is above the target, and only "
        "more tasks help); 'Tasks needed' keeps today's epochs. Normal approximation; docs/metrics.md §8a."
    )
    names = usable["model"].to_list()  # widest intervals first: the ones a plan is for
    shown = url_multiselect(
        "Systems on the chart", "cmp_plan_sys", names, names[:PLAN_CHART_SYSTEMS], placeholder="Pick systems"
    )
    if not shown:
        return
    curves = V.plan_curves(usable.filter(pl.col("model").is_in(shown)))
    target_hw = value if kind == "half_width" else float(plan["se_target"][0]) * 1.959963984540054
    label = f"±{target_hw * 100:.1f} points" + (
        "" if kind == "half_width" else " (what the difference needs)"
    )
    grid_chart(charts.planner_chart(curves, target_hw, palette=palette, target_label=label))
    if len(names) > len(shown):
        st.caption(f"Chart: {plural(len(shown), 'system')} of {len(names)}; the table has them all.")


def _fmt_count(v: float | None) -> str:
    if v is None:
        return "—"
    if v == float("inf"):
        return "∞ (add tasks)"
    return f"{int(v):,}"


def _plan_view(plan: pl.DataFrame) -> pl.DataFrame:
    rows = []
    for r in plan.iter_rows(named=True):
        more_k, more_t = r["more_epochs"], r["more_tasks"]
        if r["se_now"] == 0:  # every run of every task ended the same way: nothing to estimate
            same = "— (no variance: every run ended alike)"
            rows.append(
                {"model": r["model"], "tasks": r["tasks"], "epochs": r["epochs"], "now": "±0 points"}
                | dict.fromkeys(("epochs_needed", "tasks_needed", "floor"), same)
            )
            continue
        rows.append(
            {
                "model": r["model"],
                "tasks": r["tasks"],
                "epochs": r["epochs"],
                "now": "—" if r["se_now"] is None else f"±{r['se_now'] * 1.96 * 100:.1f} points",
                "epochs_needed": _fmt_count(r["epochs_needed"])
                + ("" if more_k in (None, float("inf")) else f" (+{int(more_k):,})"),
                "tasks_needed": _fmt_count(r["tasks_needed"])
                + ("" if more_t is None else f" (+{int(more_t):,})"),
                "floor": "—" if r["floor_se"] is None else f"±{r['floor_se'] * 1.96 * 100:.1f} points",
            }
        )
    schema = dict.fromkeys(PLAN_COLUMNS, pl.String) | {"tasks": pl.Int64, "epochs": pl.Float64}
    return pl.DataFrame(rows, schema=schema).select(list(PLAN_COLUMNS))
