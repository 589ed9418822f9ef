"""Task × model charts: metric heatmaps, none/partial/full classification, passes per task.

Input for all of them: group metrics by ``("model", "task")``
(``metrics.group_metrics``): ``model, task, n, successes, success_rate,
pass_at_{k}, ...``. The outcome classes are defined in ``classify_outcomes``.
"""

from __future__ import annotations

import altair as alt
import polars as pl

from fle_core.charts.base import (
    HEATMAP_SCHEME,
    OUTCOME_COLOURS,
    ChartError,
    ModelPalette,
    chart_values,
    fill_model,
    is_rate,
    is_simulated,
    metric_label,
    models_in,
    name_list,
    number_format,
    require,
    title,
)

OUTCOMES = ("none", "partial", "full", "no quota")


def _axis_size(n: int, per: int = 22, minimum: int = 60) -> int:
    return max(minimum, per * max(n, 1))


def _sim(simulated: bool | None, frame: pl.DataFrame) -> bool:
    return is_simulated(frame) if simulated is None else bool(simulated)


def _fill_task(frame: pl.DataFrame) -> pl.DataFrame:
    return fill_model(frame).with_columns(pl.col("task").cast(pl.String).fill_null("(unknown)"))


def task_heatmap_chart(
    group_metrics: pl.DataFrame,
    metric: str = "success_rate",
    *,
    palette: ModelPalette | None = None,
    simulated: bool | None = None,
) -> alt.LayerChart:
    """Heatmap of ``metric`` per (task, model), value printed in each cell.

    Input: group metrics by model and task (``model, task, <metric>``; ``n,
    successes`` in tooltips). Cells whose metric is null (e.g. pass@k with
    n < k) are drawn grey and say so in the tooltip. ``palette`` is accepted for
    a uniform signature; the heatmap colours encode the metric, not the model.
    """
    require(group_metrics, ["model", "task", metric], "group metrics")
    extra = [c for c in ("n", "successes") if c in group_metrics.columns]
    fmt = number_format(metric)
    rows = _fill_task(
        group_metrics.select("model", "task", pl.col(metric).cast(pl.Float64).alias("value"), *extra)
    )
    rows = rows.with_columns(
        pl.when(pl.col("value").is_finite()).then(pl.col("value")).otherwise(None).alias("value")
    )
    models, tasks = models_in(rows), sorted(rows.get_column("task").unique().to_list())
    label = metric_label(metric)
    tooltip = [
        alt.Tooltip("task:N", title="Task"),
        alt.Tooltip("model:N", title="Model"),
        alt.Tooltip("value:Q", title=label, format=fmt),
    ]
    tooltip += [alt.Tooltip(f"{c}:Q", title=c) for c in extra]
    x = alt.X("model:N", title="Model", sort=models, axis=alt.Axis(labelAngle=-40, labelLimit=160))
    y = alt.Y("task:N", title="Task", sort=tasks)
    base = alt.Chart(chart_values(rows))
    scale = (
        alt.Scale(scheme=HEATMAP_SCHEME, domain=[0, 1])
        if is_rate(metric)
        else alt.Scale(scheme=HEATMAP_SCHEME)
    )
    missing = (
        base.transform_filter("datum.value === null")
        .mark_rect(color="#DDDDDD")
        .encode(
            x=x,
            y=y,
            tooltip=[*tooltip[:2], alt.Tooltip("n:Q", title="n (too few trials)")]
            if "n" in extra
            else tooltip[:2],
        )
    )
    cells = (
        base.transform_filter("datum.value !== null")
        .mark_rect()
        .encode(
            x=x,
            y=y,
            tooltip=tooltip,
            color=alt.Color(
                "value:Q",
                title=label,
                scale=scale,
                legend=alt.Legend(format="%") if is_rate(metric) else alt.Legend(),
            ),
        )
    )
    text = (
        base.transform_filter("datum.value !== null")
        .mark_text(fontSize=9)
        .encode(
            x=x,
            y=y,
            text=alt.Text("value:Q", format=".0%" if is_rate(metric) else ",.2~f"),
            color=alt.condition("datum.value > 0.6", alt.value("black"), alt.value("white"))
            if is_rate(metric)
            else alt.value("white"),
            tooltip=tooltip,
        )
    )
    return alt.LayerChart(layer=[missing, cells, text]).properties(
        width=_axis_size(len(models), 34, 80),
        height=_axis_size(len(tasks)),
        title=title(
            f"Task × model: {label}",
            _sim(simulated, group_metrics),
            "grey: not enough trials for this metric",
        ),
    )


def classify_outcomes(group_metrics: pl.DataFrame) -> pl.DataFrame:
    """Add ``outcome`` per (model, task): none = 0 successes, partial = some, full = all.

    The denominator is ``n_scored`` (trajectories with a quota) when the frame has
    it, else ``n``. A row with null ``successes`` or no scored trajectory (the
    task has no quota, e.g. open_play) is ``"no quota"``. "full" means every
    scored trial reached the quota.
    """
    require(group_metrics, ["model", "task", "n", "successes"], "group metrics")
    s = pl.col("successes")
    n = pl.col("n_scored") if "n_scored" in group_metrics.columns else pl.col("n")
    return group_metrics.with_columns(
        pl.when(s.is_null() | n.is_null() | (n == 0))
        .then(pl.lit("no quota"))
        .when(s == 0)
        .then(pl.lit("none"))
        .when(s >= n)
        .then(pl.lit("full"))
        .otherwise(pl.lit("partial"))
        .alias("outcome")
    )


def classification_heatmap_chart(
    group_metrics: pl.DataFrame, *, palette: ModelPalette | None = None, simulated: bool | None = None
) -> alt.LayerChart:
    """Task × model grid coloured none / partial / full, with "successes/n" in each cell.

    Input: group metrics by model and task (``model, task, n, successes``;
    ``n_scored`` when present).
    """
    scored = "n_scored" if "n_scored" in group_metrics.columns else "n"
    rows = _fill_task(
        classify_outcomes(group_metrics).select(
            "model", "task", pl.col(scored).alias("n"), "successes", "outcome"
        )
    )
    rows = rows.with_columns(
        pl.when(pl.col("outcome") == "no quota")
        .then(pl.lit("–"))
        .otherwise(pl.format("{}/{}", "successes", "n"))
        .alias("label")
    )
    models, tasks = models_in(rows), sorted(rows.get_column("task").unique().to_list())
    present = [o for o in OUTCOMES if o in set(rows.get_column("outcome").to_list())]
    tooltip = [
        alt.Tooltip("task:N", title="Task"),
        alt.Tooltip("model:N", title="Model"),
        alt.Tooltip("outcome:N", title="Outcome"),
        alt.Tooltip("successes:Q", title="Successes"),
        alt.Tooltip("n:Q", title="Trials"),
    ]
    x = alt.X("model:N", title="Model", sort=models, axis=alt.Axis(labelAngle=-40, labelLimit=160))
    y = alt.Y("task:N", title="Task", sort=tasks)
    base = alt.Chart(chart_values(rows))
    cells = base.mark_rect(stroke="white").encode(
        x=x,
        y=y,
        tooltip=tooltip,
        color=alt.Color(
            "outcome:N",
            title="Solved trials",
            scale=alt.Scale(domain=present, range=[OUTCOME_COLOURS[o] for o in present]),
        ),
    )
    text = base.mark_text(fontSize=9, color="black").encode(x=x, y=y, text="label:N", tooltip=tooltip)
    return alt.LayerChart(layer=[cells, text]).properties(
        width=_axis_size(len(models), 34, 80),
        height=_axis_size(len(tasks)),
        title=title(
            "Task outcomes: none / partial / full",
            _sim(simulated, group_metrics),
            "none: 0 of n trials solved; partial: some; full: all n; cell: successes/n",
        ),
    )


def pass_histogram_chart(
    group_metrics: pl.DataFrame, *, palette: ModelPalette | None = None, simulated: bool | None = None
) -> alt.Chart:
    """Passing trials per task, stacked by model; tasks ordered by total passes.

    Input: group metrics by model and task (``model, task, n, successes``;
    ``n_scored`` is used as the trial count when present). Tasks without a quota
    (null successes) are left out and named in the subtitle.
    """
    require(group_metrics, ["model", "task", "n", "successes"], "group metrics")
    scored = "n_scored" if "n_scored" in group_metrics.columns else "n"
    rows = _fill_task(group_metrics.select("model", "task", pl.col(scored).alias("n"), "successes"))
    unscored = pl.col("successes").is_null() | pl.col("n").is_null() | (pl.col("n") == 0)
    no_quota = sorted(
        rows.group_by("task").agg(unscored.all().alias("u")).filter("u").get_column("task").to_list()
    )
    rows = rows.filter(~unscored)
    if rows.height == 0:
        raise ChartError("No task has a quota, so there are no passes to count")
    models = models_in(rows)
    pal = palette if palette is not None else ModelPalette.from_models(models)
    order = (
        rows.group_by("task")
        .agg(pl.col("successes").sum().alias("total"))
        .sort(["total", "task"], descending=[True, False])
        .get_column("task")
        .to_list()
    )
    tooltip = [
        alt.Tooltip("task:N", title="Task"),
        alt.Tooltip("model:N", title="Model"),
        alt.Tooltip("successes:Q", title="Passing trials"),
        alt.Tooltip("n:Q", title="Trials"),
    ]
    note = "bar height: number of trials that reached the task quota"
    if no_quota:
        note += f"; no quota (not shown): {name_list(no_quota)}"
    return (
        alt.Chart(chart_values(rows))
        .mark_bar()
        .encode(
            x=alt.X("task:N", title="Task", sort=order, axis=alt.Axis(labelAngle=-40, labelLimit=200)),
            y=alt.Y(
                "successes:Q",
                title="Passing trials (count)",
                stack="zero",
                axis=alt.Axis(tickMinStep=1, format="d"),
            ),
            color=pal.color(models),
            order=alt.Order("model:O"),
            tooltip=tooltip,
        )
        .properties(
            width=_axis_size(len(order), 28, 160),
            height=260,
            title=title("Passes per task", _sim(simulated, group_metrics), note),
        )
    )
