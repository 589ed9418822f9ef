"""Charts for cost, reliability and planning: the cost–success frontier with intervals,
pass@k over pass^k, consistency across epochs, and the planner's curves.

Every builder takes finished frames from ``fle_core.stats`` (``cost.frontier``,
``bootstrap.pass_at_k_curve``, ``reliability.consistency``, ``variance.plan_curves``)
and computes nothing of record; the common keyword arguments are those of
``performance`` (``palette``, ``simulated``).
"""

from __future__ import annotations

import math

import altair as alt
import polars as pl

from fle_core.charts.base import (
    AXIS_LABEL_PX,
    ChartError,
    ModelPalette,
    band_height,
    chart_values,
    fill_model,
    is_simulated,
    models_in,
    name_list,
    require,
    title,
)
from fle_core.charts.performance import pass_at_k_chart

#: Plot width of one panel. Paired panels are stacked, not put side by side: two panels and
#: their axis labels would run past the main column of a 1024 px window (about 560 px).
PANEL = 340
#: Legend columns under a stacked chart: two short labels (≤ 240 px each) fit that column.
LEGEND_COLUMNS = 2


def _pal(palette: ModelPalette | None, frame: pl.DataFrame) -> ModelPalette:
    present = models_in(frame)
    return palette.covering(present) if palette is not None else ModelPalette.from_models(present)


def _sim(simulated: bool | None, *frames: pl.DataFrame | None) -> bool:
    return is_simulated(*frames) if simulated is None else bool(simulated)


# ---- the cost–success frontier ------------------------------------------------


def frontier_chart(
    frontier: pl.DataFrame,
    *,
    palette: ModelPalette | None = None,
    simulated: bool | None = None,
    omitted: list[str] | None = None,
) -> alt.LayerChart:
    """Cost per success against success rate, each system with both intervals.

    Input: ``stats.cost.frontier`` (``model, unit, success_rate, rate_ci_low/high,
    cost_per_success, cost_ci_low/high, on_frontier, frontier_share``). The dashed
    line joins the systems on the frontier (point estimates); a point's size is the
    share of bootstrap resamples in which that system is on the frontier. An upper
    cost bound that is unbounded (resamples without a success) runs to the top of
    the plot. ``omitted`` names systems that could not be placed (no success, or a
    run without a cost).
    """
    require(frontier, ["model", "unit", "success_rate", "cost_per_success", "frontier_share"], "frontier")
    rows = fill_model(frontier)
    unit = rows.get_column("unit")[0]
    top = max(
        [v for v in [*rows["cost_ci_high"].to_list(), *rows["cost_per_success"].to_list()] if v is not None]
    )
    ceiling = 10 ** math.ceil(math.log10(top * 1.5)) if top > 0 else 1.0
    rows = rows.with_columns(
        pl.col("cost_ci_high").is_null().alias("unbounded"),
        pl.col("cost_ci_high").fill_null(ceiling).alias("cost_hi_drawn"),
        (pl.col("frontier_share") * 100).round(0).alias("share_pct"),
    )
    pal = _pal(palette, rows)
    rows = pal.with_labels(rows)
    models = models_in(rows)
    money = unit == "USD"
    cost_fmt = "$,.4~f" if money else ",.0f"
    y_title = (
        "Cost per success (USD: all scored runs' cost ÷ successes), log scale"
        if money
        else "Cost per success (tokens: all scored runs' tokens ÷ successes), log scale"
    )
    tooltip = [
        alt.Tooltip("model:N", title="System"),
        alt.Tooltip("success_rate:Q", title="Success rate", format=".1%"),
        alt.Tooltip("rate_ci_low:Q", title="Success CI low", format=".1%"),
        alt.Tooltip("rate_ci_high:Q", title="Success CI high", format=".1%"),
        alt.Tooltip("cost_per_success:Q", title=f"Cost per success ({unit})", format=cost_fmt),
        alt.Tooltip("cost_ci_low:Q", title="Cost CI low", format=cost_fmt),
        alt.Tooltip("cost_ci_high:Q", title="Cost CI high (empty: unbounded)", format=cost_fmt),
        alt.Tooltip("on_frontier:N", title="On the frontier (point estimates)"),
        alt.Tooltip("share_pct:Q", title="% of resamples on the frontier"),
    ]
    x_scale = alt.Scale(domain=[0, 1.04], nice=False)
    x = alt.X(
        "success_rate:Q",
        title="Success rate (% of trials)",
        axis=alt.Axis(format="%", values=[i / 10 for i in range(11)]),
        scale=x_scale,
    )
    y_scale = alt.Scale(type="log", domainMax=ceiling, clamp=True)
    y_axis = alt.Axis(format="$.2~g" if money else "~s")
    y = alt.Y("cost_per_success:Q", title=y_title, scale=y_scale, axis=y_axis)
    base = alt.Chart(chart_values(rows))
    colour = pal.color(models)
    x_bar = base.mark_rule(strokeWidth=1.5, opacity=0.7).encode(
        x=alt.X("rate_ci_low:Q", title="Success rate (% of trials)", scale=x_scale),
        x2="rate_ci_high:Q",
        y=y,
        color=colour,
        tooltip=tooltip,
    )
    y_bar = base.mark_rule(strokeWidth=1.5, opacity=0.7).encode(
        x=x,
        y=alt.Y("cost_ci_low:Q", title=y_title, scale=y_scale),
        y2="cost_hi_drawn:Q",
        color=colour,
        strokeDash=alt.condition("datum.unbounded", alt.value([3, 3]), alt.value([1, 0])),
        tooltip=tooltip,
    )
    line = (
        base.transform_filter("datum.on_frontier")
        .mark_line(color="#555555", strokeDash=[4, 3])
        .encode(x=x, y=y, order="success_rate:Q")
    )
    points = base.mark_point(filled=True, opacity=0.95, stroke="white", strokeWidth=0.5).encode(
        x=x,
        y=y,
        color=colour,
        shape=pal.shape_encoding(models, legend=False),
        size=alt.Size(
            "frontier_share:Q",
            title="Share of resamples on the frontier",
            scale=alt.Scale(domain=[0, 1], range=[40, 320]),
            legend=alt.Legend(
                format="%", values=[0.1, 0.5, 1.0], orient="bottom", direction="horizontal", titleLimit=320
            ),
        ),
        tooltip=tooltip,
    )
    note = (
        "bars: 95% intervals; dashed line: the frontier (no system has a higher rate at a lower cost); "
        "point size: % of bootstrap resamples on the frontier"
    )
    if omitted:
        note += f"; not placed (no success, or a run without a cost): {name_list(omitted)}"
    return alt.LayerChart(layer=[x_bar, y_bar, line, points]).properties(
        width=420,
        height=340,
        title=title(f"Cost per success ({unit}) vs success rate", _sim(simulated, frontier), note),
    )


# ---- pass@k over pass^k -------------------------------------------------------


def pass_k_chart(
    pass_at: pl.DataFrame,
    pass_hat: pl.DataFrame,
    *,
    palette: ModelPalette | None = None,
    simulated: bool | None = None,
) -> alt.VConcatChart:
    """pass@k (at least one of k succeeds) over pass^k (all k succeed), same colours and k axis.

    Input: two ``bootstrap.pass_at_k_curve`` frames (the second with
    ``estimator="pass_hat_k"``). The gap between the panels is the reliability gap:
    a system can solve a task sometimes (high pass@k) without solving it every time
    (low pass^k).
    """
    pal = _pal(palette, pl.concat([pass_at.select("model"), pass_hat.select("model")]))
    sim = _sim(simulated, pass_at, pass_hat)
    top, bottom = (
        pass_at_k_chart(
            frame, palette=pal, simulated=sim, estimator=name, width=PANEL, legend_columns=LEGEND_COLUMNS
        )
        for frame, name in ((pass_at, "pass@k"), (pass_hat, "pass^k"))
    )
    return (
        alt.vconcat(top.properties(height=220), bottom.properties(height=220), spacing=28)
        .resolve_scale(color="shared", shape="shared", strokeDash="shared")
        .configure_legend(
            orient="bottom", columns=LEGEND_COLUMNS, direction="vertical", columnPadding=6, labelLimit=200
        )
    )


# ---- consistency ------------------------------------------------------------------

_RESOURCE_LABEL = {"tokens_cv": "tokens", "cost_cv": "dollars", "duration_cv": "time"}


def consistency_chart(
    consistency: pl.DataFrame, *, palette: ModelPalette | None = None, simulated: bool | None = None
) -> alt.VConcatChart:
    """Outcome consistency per system (top) and the spread of resources per task (below).

    Input: ``stats.reliability.consistency`` (``model, tasks_repeated,
    outcome_consistency, outcome_variance, tokens_cv, cost_cv, duration_cv``; the
    resource columns present are drawn). One row per system, systems in the same
    order in both panels (most consistent first).
    """
    require(consistency, ["model", "outcome_consistency"], "consistency")
    rows = fill_model(consistency).filter(pl.col("outcome_consistency").is_not_null())
    if rows.is_empty():
        raise ChartError("No system ran any task twice, so consistency across epochs is undefined")
    pal = _pal(palette, rows)
    rows = pal.with_labels(rows)
    models = models_in(rows)
    order = rows.sort(["outcome_consistency", "model"], descending=[True, False])["model_label"].to_list()
    y = alt.Y(
        "model_label:N", sort=order, title=None, axis=alt.Axis(labelLimit=AXIS_LABEL_PX, labelOverlap=False)
    )
    height = band_height(len(models))
    tip = [
        alt.Tooltip("model:N", title="System"),
        alt.Tooltip("outcome_consistency:Q", title="Outcome consistency", format=".2f"),
        alt.Tooltip("outcome_variance:Q", title="Mean variance of success across epochs", format=".3f"),
        alt.Tooltip("tasks_repeated:Q", title="Tasks with ≥ 2 epochs"),
    ]
    outcome = (
        alt.Chart(chart_values(rows))
        .mark_point(filled=True, size=80)
        .encode(
            x=alt.X(
                "outcome_consistency:Q",
                title="Outcome consistency (1 = same outcome every epoch)",
                scale=alt.Scale(domain=[0, 1]),
            ),
            y=y,
            color=pal.color(models, legend=False),
            shape=pal.shape_encoding(models, legend=False),
            tooltip=tip,
        )
        .properties(width=PANEL, height=height, title="Outcome")
    )
    present = [c for c in _RESOURCE_LABEL if c in rows.columns and rows[c].is_not_null().any()]
    if not present:
        return alt.vconcat(outcome).properties(
            title=title("Consistency across epochs", _sim(simulated, consistency))
        )
    long = rows.unpivot(index=["model", "model_label"], on=present, variable_name="resource", value_name="cv")
    long = long.with_columns(pl.col("resource").replace_strict(_RESOURCE_LABEL, return_dtype=pl.String))
    resource = (
        alt.Chart(chart_values(long.filter(pl.col("cv").is_not_null())))
        .mark_point(filled=False, size=70, strokeWidth=2)
        .encode(
            x=alt.X("cv:Q", title="Spread per task (coefficient of variation; 0 = the same every run)"),
            y=y,
            shape=alt.Shape("resource:N", title="Resource", legend=alt.Legend(orient="bottom")),
            color=alt.Color(
                "resource:N",
                title="Resource",
                scale=alt.Scale(
                    domain=list(_RESOURCE_LABEL.values()), range=["#0072B2", "#D55E00", "#009E73"]
                ),
                legend=alt.Legend(orient="bottom"),
            ),
            tooltip=[
                alt.Tooltip("model:N", title="System"),
                alt.Tooltip("resource:N", title="Resource"),
                alt.Tooltip("cv:Q", title="Mean CV over tasks", format=".2f"),
            ],
        )
        .properties(width=PANEL, height=height, title="Resources")
    )
    return (
        alt.vconcat(outcome, resource, spacing=20)
        .resolve_scale(color="independent", shape="independent")
        .properties(
            title=title(
                "Consistency across epochs",
                _sim(simulated, consistency),
                "top: how often a task ends the same way each epoch; bottom: how much tokens, dollars and "
                "time vary between runs of the same task (means over tasks run at least twice)",
            )
        )
    )


# ---- the planner ------------------------------------------------------------------


def planner_chart(
    curves: pl.DataFrame,
    target: float,
    *,
    palette: ModelPalette | None = None,
    simulated: bool | None = None,
    target_label: str = "target",
) -> alt.VConcatChart:
    """Interval half-width with more epochs (top) or more tasks (below), per system.

    Input: ``stats.variance.plan_curves`` (``model, axis, count, half_width,
    current``); ``target`` draws the goal as a horizontal rule. The epochs panel
    flattens at the between-task floor: past it, only more tasks help.
    """
    require(curves, ["model", "axis", "count", "half_width", "current"], "plan curves")
    rows = fill_model(curves)
    pal = _pal(palette, rows)
    rows = pal.with_labels(rows)
    models = models_in(rows)
    today = rows.filter(pl.col("current"))["half_width"].fill_null(0.0).to_list() or [0.0]
    top = 1.15 * max(max(today), target * 1.5)
    y_scale = alt.Scale(domain=[0, top], clamp=True, nice=False)

    def panel(axis: str, x_title: str) -> alt.LayerChart:
        data = rows.filter(pl.col("axis") == axis)
        base = alt.Chart(chart_values(data))
        y = alt.Y("half_width:Q", title="95% interval half-width (± success rate)", scale=y_scale)
        x = alt.X("count:Q", title=x_title, axis=alt.Axis(format="d", tickMinStep=1))
        tip = [
            alt.Tooltip("model:N", title="System"),
            alt.Tooltip("count:Q", title=x_title),
            alt.Tooltip("half_width:Q", title="± half-width", format=".3f"),
        ]
        cols = LEGEND_COLUMNS
        line = base.mark_line(clip=True).encode(
            x=x,
            y=y,
            color=pal.color(models, columns=cols),
            strokeDash=pal.dash_encoding(models, columns=cols),
            tooltip=tip,
        )
        now = (
            base.transform_filter("datum.current")
            .mark_point(filled=True, size=70, clip=True)
            .encode(
                x=x,
                y=y,
                color=pal.color(models, columns=cols),
                shape=pal.shape_encoding(models, columns=cols),
                tooltip=tip,
            )
        )
        goal = (
            alt.Chart(alt.Data(values=[{"target": target, "label": target_label}]))
            .mark_rule(color="#333333", strokeDash=[5, 3])
            .encode(y=alt.Y("target:Q", scale=y_scale), tooltip=[alt.Tooltip("label:N", title="Target")])
        )
        return alt.LayerChart(layer=[line, now, goal]).properties(width=PANEL, height=200, title=x_title)

    return (
        alt.vconcat(
            panel("epochs", "Epochs per task (tasks as today)"),
            panel("tasks", "Tasks (epochs per task as today)"),
            spacing=24,
        )
        .resolve_scale(color="shared", shape="shared", strokeDash="shared")
        .properties(
            title=title(
                "What more epochs or more tasks would give",
                _sim(simulated, curves),
                "dots: today's design; dashed rule: the target. Epochs cannot push the interval below "
                "the between-task floor; tasks can.",
            )
        )
        .configure_legend(
            orient="bottom", columns=LEGEND_COLUMNS, direction="vertical", columnPadding=6, labelLimit=200
        )
    )
