"""Task × model charts: metric heatmaps, none/partial/full classification, passes per task.

Input for all of them: group metrics by ``("model", "task")``
(``metrics.group_metrics``): ``model, task, n, successes, success_rate,
pass_at_{k}, ...``. The outcome classes are defined in ``classify_outcomes``.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import polars as pl

from fle_core.charts.base import (
    AXIS_LABEL_PX,
    HEATMAP_SCHEME,
    OUTCOME_COLOURS,
    ChartError,
    ModelPalette,
    band_height,
    bottom_legend,
    chart_values,
    fill_model,
    grid_step,
    is_rate,
    is_simulated,
    metric_label,
    models_in,
    name_list,
    number_format,
    require,
    task_labels,
    title,
)

OUTCOMES = ("none", "partial", "full", "no quota", "all left out")


#: Plot height per task row (one text line; two lines: value and n), the least plot height
#: (1 or 2 tasks) and width (1 model), and the cell text size.
ROW_PX, ROW_TWO_LINES_PX, MIN_PLOT_PX, MIN_GRID_WIDTH, CELL_FONT = 24, 32, 60, 160, 11
#: Column width of a grid for a few models; the app stretches wider grids to its column.
ROOMY_COLUMN_PX = 96
#: Cell text shows only where a column is at least this wide (it would overprint otherwise).
TEXT_MIN_PX = 34


def _cell_text_opacity() -> Any:
    """Cell text where the drawn column is wide enough to hold it (decided in the browser,
    since the app fits a grid to the window's column); the tooltip has it everywhere."""
    return alt.condition(f"bandwidth('x') >= {TEXT_MIN_PX}", alt.value(1), alt.value(0))


def _grid_rows(rows: pl.DataFrame, palette: ModelPalette | None) -> tuple[pl.DataFrame, ModelPalette]:
    """Rows with ``model_label`` (palette labels) and ``task_label`` (short task names)."""
    present = models_in(rows)
    pal = palette.covering(present) if palette is not None else ModelPalette.from_models(present)
    names = task_labels(rows.get_column("task").unique().to_list())
    rows = pal.with_labels(rows).with_columns(
        pl.col("task").replace_strict(names, return_dtype=pl.String).alias("task_label")
    )
    return rows, pal


def _grid_axes(rows: pl.DataFrame, pal: ModelPalette, task_order: list[str]) -> tuple[alt.X, alt.Y, int]:
    """x: models (palette order, short labels, none dropped); y: tasks; and the column width."""
    models = pal.domain_for(rows.get_column("model").unique().to_list())
    names = dict(zip(rows["task"].to_list(), rows["task_label"].to_list(), strict=True))
    step = grid_step(len(models), roomy=ROOMY_COLUMN_PX)
    x = alt.X(
        "model_label:N",
        title="Model",
        sort=[pal.label(m) for m in models],
        axis=alt.Axis(labelAngle=-40, labelLimit=AXIS_LABEL_PX, labelOverlap=False),
    )
    y = alt.Y(
        "task_label:N",
        title="Task",
        sort=[names[t] for t in task_order],
        axis=alt.Axis(labelLimit=AXIS_LABEL_PX, labelOverlap=False),
    )
    return x, y, step


def _sim(simulated: bool | None, frame: pl.DataFrame) -> bool:
    return is_simulated(frame) if simulated is None else bool(simulated)


def _fill_task(frame: pl.DataFrame) -> pl.DataFrame:
    return fill_model(frame).with_columns(pl.col("task").cast(pl.String).fill_null("(unknown)"))


#: What a cell's infrastructure-failure count means under each rule (``stats.infrastructure``).
INFRA_MEANING = {"fail": "counted as failures", "exclude": "left out"}
INFRA_MARK = "⚠"


def _infra(frame: pl.DataFrame) -> pl.Expr:
    """The group's infrastructure failures (0 when the frame has no count)."""
    return (
        pl.col("infra_failures").fill_null(0).cast(pl.Int64)
        if "infra_failures" in frame.columns
        else pl.lit(0, pl.Int64)
    ).alias("infra")


def _infra_parts(rows: pl.DataFrame, infrastructure: str) -> tuple[list[alt.Tooltip], str]:
    """Tooltip line and subtitle sentence for the cells' infrastructure-failure counts."""
    if not rows.height or not (rows.get_column("infra") > 0).any():
        return [], ""
    meaning = INFRA_MEANING.get(infrastructure, infrastructure)
    tip = [alt.Tooltip("infra:Q", title=f"Infrastructure failures ({meaning})")]
    return tip, f"; {INFRA_MARK}n: n infrastructure failures in the cell ({meaning})"


def _cell_text(base: alt.Chart, x, y, first: str, second: str, colour, tooltip) -> alt.Chart:
    """The cell's text (Vega expressions): ``first`` and, on a second line, ``second``
    then ``⚠n`` when the cell holds infrastructure failures. Hidden where the drawn
    column is too narrow to hold it (``_cell_text_opacity``); the tooltip has it all."""
    infra = f"(datum.infra > 0 ? '{INFRA_MARK}' + datum.infra : '')"
    return (
        base.transform_calculate(rest=f"trim({second} + ' ' + {infra})")
        .transform_calculate(cell_text=f"{first} + (length(datum.rest) ? '\\n' + datum.rest : '')")
        .mark_text(fontSize=CELL_FONT, lineBreak="\n", lineHeight=CELL_FONT + 2)
        .encode(x=x, y=y, text="cell_text:N", opacity=_cell_text_opacity(), color=colour, tooltip=tooltip)
    )


def task_heatmap_chart(
    group_metrics: pl.DataFrame,
    metric: str = "success_rate",
    *,
    palette: ModelPalette | None = None,
    simulated: bool | None = None,
    infrastructure: str = "fail",
) -> alt.LayerChart:
    """Heatmap of ``metric`` per (task, model), value printed in each cell.

    Input: group metrics by model and task (``model, task, <metric>``; ``n,
    successes`` in tooltips; ``infra_failures`` when present: a second line
    ``⚠n`` in the cell and a tooltip line, meaning "counted as failures" or "left
    out" per ``infrastructure``, the rule in force). Cells whose metric is null
    (e.g. pass@k with n < k) are drawn grey and say so in the tooltip. ``palette``
    is accepted for a uniform signature; the colours encode the metric, not the model.
    """
    require(group_metrics, ["model", "task", metric], "group metrics")
    extra = [c for c in ("n", "successes") if c in group_metrics.columns]
    fmt = number_format(metric)
    rows = _fill_task(
        group_metrics.select(
            "model", "task", pl.col(metric).cast(pl.Float64).alias("value"), *extra, _infra(group_metrics)
        )
    )
    rows = rows.with_columns(
        pl.when(pl.col("value").is_finite()).then(pl.col("value")).otherwise(None).alias("value")
    )
    infra_tip, infra_note = _infra_parts(rows, infrastructure)
    rows, pal = _grid_rows(rows, palette)
    models, tasks = models_in(rows), sorted(rows.get_column("task").unique().to_list())
    label = metric_label(metric)
    tooltip = [
        alt.Tooltip("task:N", title="Task"),
        alt.Tooltip("model:N", title="Model"),
        alt.Tooltip("value:Q", title=label, format=fmt),
    ]
    tooltip += [alt.Tooltip(f"{c}:Q", title=c) for c in extra] + infra_tip
    x, y, step = _grid_axes(rows, pal, tasks)
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
            tooltip=[*tooltip[:2], alt.Tooltip("n:Q", title="n (too few trials)"), *infra_tip]
            if "n" in extra
            else [*tooltip[:2], *infra_tip],
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
                legend=alt.Legend(format="%" if is_rate(metric) else "~s", orient="top", titleLimit=400),
            ),
        )
    )
    # the value and, on a second line, how many trials it rests on (successes/n for a rate)
    counted = is_rate(metric) and "successes" in extra and "n" in extra
    second = "datum.successes + '/' + datum.n" if counted else ("'n=' + datum.n" if "n" in extra else "''")
    value = f"format(datum.value, '{'.0%' if is_rate(metric) else ',.3~s'}')"
    text = _cell_text(
        base.transform_filter("datum.value !== null"),
        x,
        y,
        value,
        second,
        alt.condition("datum.value > 0.6", alt.value("black"), alt.value("white"))
        if is_rate(metric)
        else alt.value("white"),
        tooltip,
    )
    grey_mark = _cell_text(  # a cell the rule emptied, or with too few trials, still shows its ⚠n
        base.transform_filter("datum.value === null"), x, y, "''", "''", alt.value("black"), tooltip
    )
    return alt.LayerChart(layer=[missing, cells, text, grey_mark]).properties(
        width=max(MIN_GRID_WIDTH, step * len(models)),
        height=band_height(len(tasks), ROW_TWO_LINES_PX, MIN_PLOT_PX),
        title=title(
            f"Task × model: {label}",
            _sim(simulated, group_metrics),
            "cell: the value and "
            + ("successes/n" if counted else "n, the trials it rests on")
            + "; grey: not enough trials for this metric; hover a cell for the full names"
            + infra_note,
        ),
    )


def classify_outcomes(group_metrics: pl.DataFrame) -> pl.DataFrame:
    """Add ``outcome`` per (model, task): none = 0 successes, partial = some, full = all.

    The denominator is ``n_scored`` (trajectories with a quota) when the frame has
    it, else ``n``. A row with null ``successes`` or no scored trajectory (the
    task has no quota, e.g. open_play) is ``"no quota"``; one whose every trajectory
    was an infrastructure failure left out by the rule (``n = 0``, ``infra_failures > 0``)
    is ``"all left out"``. "full" means every scored trial reached the quota.
    """
    require(group_metrics, ["model", "task", "n", "successes"], "group metrics")
    s = pl.col("successes")
    n = pl.col("n_scored") if "n_scored" in group_metrics.columns else pl.col("n")
    emptied = (
        (pl.col("n") == 0) & (pl.col("infra_failures") > 0)
        if "infra_failures" in group_metrics.columns
        else pl.lit(False)
    )
    return group_metrics.with_columns(
        pl.when(emptied.fill_null(False))
        .then(pl.lit("all left out"))
        .when(s.is_null() | n.is_null() | (n == 0))
        .then(pl.lit("no quota"))
        .when(s == 0)
        .then(pl.lit("none"))
        .when(s >= n)
        .then(pl.lit("full"))
        .otherwise(pl.lit("partial"))
        .alias("outcome")
    )


def classification_heatmap_chart(
    group_metrics: pl.DataFrame,
    *,
    palette: ModelPalette | None = None,
    simulated: bool | None = None,
    infrastructure: str = "fail",
) -> alt.LayerChart:
    """Task × model grid coloured none / partial / full, with "successes/n" in each cell.

    Input: group metrics by model and task (``model, task, n, successes``;
    ``n_scored`` when present; ``infra_failures`` as in ``task_heatmap_chart``).
    """
    scored = "n_scored" if "n_scored" in group_metrics.columns else "n"
    rows = _fill_task(
        classify_outcomes(group_metrics).select(
            "model", "task", pl.col(scored).alias("n"), "successes", "outcome", _infra(group_metrics)
        )
    )
    rows = rows.with_columns(
        pl.when(pl.col("outcome").is_in(["no quota", "all left out"]))
        .then(pl.lit("–"))
        .otherwise(pl.format("{}/{}", "successes", "n"))
        .alias("label")
    )
    infra_tip, infra_note = _infra_parts(rows, infrastructure)
    rows, pal = _grid_rows(rows, palette)
    models, tasks = models_in(rows), sorted(rows.get_column("task").unique().to_list())
    present = [o for o in OUTCOMES if o in set(rows.get_column("outcome").to_list())]
    tooltip = [
        alt.Tooltip("task:N", title="Task"),
        alt.Tooltip("model:N", title="Model"),
        alt.Tooltip("outcome:N", title="Outcome"),
        alt.Tooltip("successes:Q", title="Successes"),
        alt.Tooltip("n:Q", title="Trials"),
        *infra_tip,
    ]
    x, y, step = _grid_axes(rows, pal, tasks)
    base = alt.Chart(chart_values(rows))
    cells = base.mark_rect(stroke="white").encode(
        x=x,
        y=y,
        tooltip=tooltip,
        color=alt.Color(
            "outcome:N",
            title="Solved trials",
            scale=alt.Scale(domain=present, range=[OUTCOME_COLOURS[o] for o in present]),
            legend=alt.Legend(orient="top", direction="horizontal"),
        ),
    )
    text = _cell_text(base, x, y, "datum.label", "''", alt.value("black"), tooltip)
    return alt.LayerChart(layer=[cells, text]).properties(
        width=max(MIN_GRID_WIDTH, step * len(models)),
        height=band_height(len(tasks), ROW_PX, MIN_PLOT_PX),
        title=title(
            "Task outcomes: none / partial / full",
            _sim(simulated, group_metrics),
            "none: 0 of n trials solved; partial: some; full: all n; cell: successes/n" + infra_note,
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
    rows, pal = _grid_rows(rows, palette)
    models = models_in(rows)
    order = (
        rows.group_by("task")
        .agg(pl.col("successes").sum().alias("total"))
        .sort(["total", "task"], descending=[True, False])
        .get_column("task")
        .to_list()
    )
    names = dict(zip(rows["task"].to_list(), rows["task_label"].to_list(), strict=True))
    tooltip = [
        alt.Tooltip("task:N", title="Task"),
        alt.Tooltip("model:N", title="Model"),
        alt.Tooltip("successes:Q", title="Passing trials"),
        alt.Tooltip("n:Q", title="Trials"),
    ]
    note = "bar length: trials that reached the task quota, stacked by model; most passes first"
    if no_quota:
        note += f"; no quota (not shown): {name_list(no_quota)}"
    return (
        alt.Chart(chart_values(rows))
        .mark_bar()
        .encode(
            # many models: task names on the right, so the two-column legend below (which starts
            # at the plot's left edge) fits a 1024 px window's column
            y=alt.Y(
                "task_label:N",
                title="Task",
                sort=[names[t] for t in order],
                axis=alt.Axis(
                    labelLimit=AXIS_LABEL_PX,
                    labelOverlap=False,
                    orient="left" if len(models) <= 12 else "right",
                ),
            ),
            x=alt.X(
                "successes:Q",
                title="Passing trials (count)",
                stack="zero",
                axis=alt.Axis(tickMinStep=1, format="d"),
            ),
            # the legend below the bars: beside them it left a 1024 px window's column too narrow
            color=pal.color(models).legend(bottom_legend(len(models))),
            order=alt.Order("model_label:N"),
            tooltip=tooltip,
        )
        .properties(
            width=420,
            height=band_height(len(order), ROW_PX, MIN_PLOT_PX),
            title=title("Passes per task", _sim(simulated, group_metrics), note),
        )
    )
