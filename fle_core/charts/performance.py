"""Altair chart builders over finished frames from the metrics layer.

Every builder takes Polars frames that follow the contracts in
``docs/architecture.md`` and returns an Altair chart. No builder computes a
statistic of record: intervals come from the frames (Wilson, bootstrap); the
only arithmetic here is reshaping for drawing (melting wide pass@k columns,
averaging rewards per step for learning curves, marking the Pareto frontier).
The catalogue with the input frame of each chart is in ``docs/report.md``.

Common keyword arguments of every builder:

``palette``    a ``ModelPalette`` shared by all charts of one view, so a model has
               the same colour everywhere (default: built from this frame's models)
``simulated``  force the "(simulated data)" title suffix on/off (default: true
               when the frame has a ``simulated`` column with any true value)

This module holds the model-level charts; task-level charts are in
``tasks.py``, the rliable charts in ``rliable.py`` and the operational ones
(sweep cells, comparison matrix, tokens per step) in ``ops.py``. The package
``fle_core.charts`` re-exports all of them, so callers import one name.
"""

from __future__ import annotations

from typing import cast

import altair as alt
import polars as pl

from fle_core.charts.base import (
    AXIS_LABEL_PX,
    ChartError,
    ModelPalette,
    band_height,
    band_opacity,
    bootstrap_note,
    chart_values,
    fill_model,
    interval_methods,
    is_rate,
    is_simulated,
    metric_label,
    models_in,
    name_list,
    number_format,
    require,
    title,
)

WIDTH = 420


def _palette(palette: ModelPalette | None, frame: pl.DataFrame, *cols: str) -> ModelPalette:
    """The shared palette (extended by any model it lacks), else one over this frame."""
    present = models_in(frame, *cols)
    return palette.covering(present) if palette is not None else ModelPalette.from_models(present)


def _model_axis(title: str | None = "Model") -> alt.Axis:
    """A discrete model axis: labels are pre-shortened, so Vega must neither cut nor drop them."""
    return alt.Axis(title=title, labelLimit=AXIS_LABEL_PX, labelOverlap=False)


def _sim(simulated: bool | None, *frames: pl.DataFrame | None) -> bool:
    return is_simulated(*frames) if simulated is None else bool(simulated)


# ---- model comparison --------------------------------------------------------


def _comparison_rows(frame: pl.DataFrame, metric: str) -> tuple[pl.DataFrame, str]:
    """Normalize model metrics or interval estimates to model, value, ci_low, ci_high."""
    if {"metric", "estimate"} <= set(frame.columns):
        require(frame, ["model", "metric", "estimate", "ci_low", "ci_high"], "interval estimates")
        rows = frame.filter(pl.col("metric") == metric)
        if rows.height == 0:
            raise ChartError(
                f"The interval estimates have no rows for metric {metric!r}",
                hint=f"available: {sorted(frame['metric'].unique().to_list())}",
            )
        return (
            rows.select("model", pl.col("estimate").alias("value"), "ci_low", "ci_high"),
            f"95% {bootstrap_note(frame)}",
        )
    require(frame, ["model", metric], "model metrics")
    lo: str | None
    hi: str | None
    if metric == "success_rate" and {"success_ci_low", "success_ci_high"} <= set(frame.columns):
        lo, hi, note = "success_ci_low", "success_ci_high", f"95% {interval_methods(frame)} interval"
    elif {f"{metric}_ci_low", f"{metric}_ci_high"} <= set(frame.columns):
        lo, hi, note = f"{metric}_ci_low", f"{metric}_ci_high", "95% CI"
    else:
        lo = hi = None
        note = "no interval available for this metric"
    extra = [c for c in ("n", "successes", "n_tasks") if c in frame.columns]
    rows = frame.select(
        "model",
        pl.col(metric).cast(pl.Float64).alias("value"),
        (pl.col(lo) if lo else pl.lit(None, pl.Float64)).alias("ci_low"),
        (pl.col(hi) if hi else pl.lit(None, pl.Float64)).alias("ci_high"),
        *extra,
    )
    return rows, note


def model_comparison_chart(
    frame: pl.DataFrame,
    metric: str = "success_rate",
    *,
    palette: ModelPalette | None = None,
    simulated: bool | None = None,
) -> alt.LayerChart:
    """Bars of ``metric`` per model with CI error bars, best model on top.

    Input: model metrics (``model, <metric>`` and, for ``success_rate``,
    ``success_ci_low, success_ci_high``; ``n, successes`` for tooltips) or
    interval estimates (``model, metric, estimate, ci_low, ci_high``).
    """
    rows, note = _comparison_rows(frame, metric)
    rows = fill_model(rows)
    pal = _palette(palette, rows)
    rows = pal.with_labels(rows)
    models = models_in(rows)
    fmt = number_format(metric)
    label = metric_label(metric)
    tooltip = [
        alt.Tooltip("model:N", title="Model"),
        alt.Tooltip("value:Q", title=label, format=fmt),
        alt.Tooltip("ci_low:Q", title="CI low", format=fmt),
        alt.Tooltip("ci_high:Q", title="CI high", format=fmt),
    ]
    tooltip += [
        alt.Tooltip(f"{c}:Q", title=c.replace("_", " "))
        for c in ("n", "successes", "n_tasks")
        if c in rows.columns
    ]
    x_axis = alt.Axis(format="%") if is_rate(metric) else alt.Axis()
    order = rows.sort(["value", "model"], descending=[True, False], nulls_last=True)["model_label"].to_list()
    y = alt.Y("model_label:N", sort=order, axis=_model_axis())
    base = alt.Chart(chart_values(rows))
    bars = base.mark_bar(opacity=0.85).encode(
        y=y,
        x=alt.X("value:Q", title=label, axis=x_axis),
        color=pal.color(models, legend=False),
        tooltip=tooltip,
    )
    layers = [bars]
    if rows.get_column("ci_low").is_not_null().any():
        layers.append(
            base.mark_rule(strokeWidth=2, color="#333333").encode(
                y=y, x=alt.X("ci_low:Q", title=label), x2="ci_high:Q", tooltip=tooltip
            )
        )
    return alt.LayerChart(layer=list(layers)).properties(
        width=WIDTH,
        height=band_height(len(models)),
        title=title(f"Model comparison: {label}", _sim(simulated, frame), note),
    )


# ---- pass@k ------------------------------------------------------------------


def _pass_at_k_long(frame: pl.DataFrame) -> pl.DataFrame:
    """A pass@k curve frame as is; wide model metrics melted to the same shape."""
    if {"k", "estimate"} <= set(frame.columns):
        require(frame, ["model", "k", "estimate", "ci_low", "ci_high"], "pass@k curve")
        cols = ["model", "k", "estimate", "ci_low", "ci_high"]
        cols += ["n_tasks"] if "n_tasks" in frame.columns else []
        return frame.select(cols)
    ks = sorted(
        int(c.removeprefix("pass_at_"))
        for c in frame.columns
        if c.startswith("pass_at_") and c.removeprefix("pass_at_").isdigit()
    )
    if not ks:
        raise ChartError("The frame has neither a pass@k curve (k, estimate) nor pass_at_{k} columns")
    require(frame, ["model"], "model metrics")
    parts = [
        frame.select(
            "model",
            pl.lit(k, pl.Int64).alias("k"),
            pl.col(f"pass_at_{k}").cast(pl.Float64).alias("estimate"),
            pl.lit(None, pl.Float64).alias("ci_low"),
            pl.lit(None, pl.Float64).alias("ci_high"),
            (pl.col(f"pass_at_{k}_tasks") if f"pass_at_{k}_tasks" in frame.columns else pl.lit(None))
            .cast(pl.Int64)
            .alias("n_tasks"),
        )
        for k in ks
    ]
    return pl.concat(parts).filter(pl.col("estimate").is_not_null())


def pass_at_k_chart(
    frame: pl.DataFrame,
    *,
    palette: ModelPalette | None = None,
    simulated: bool | None = None,
    estimator: str = "pass@k",
    width: int = WIDTH,
    legend_columns: int = 3,
) -> alt.LayerChart:
    """pass@k against k per model, with bootstrap bands when the frame has them.

    Input: ``bootstrap.pass_at_k_curve`` (``model, k, estimate, ci_low, ci_high,
    n_tasks``) or model metrics with ``pass_at_{k}`` (and ``pass_at_{k}_tasks``).
    ``estimator="pass^k"`` labels a ``pass_at_k_curve(..., estimator="pass_hat_k")``
    frame (the chance that all k trials succeed).
    """
    rows = fill_model(_pass_at_k_long(frame)).filter(pl.col("estimate").is_not_null())
    if rows.height == 0:
        raise ChartError("No model has enough trials for any pass@k", hint="pass@k needs n ≥ k")
    pal = _palette(palette, rows)
    rows = pal.with_labels(rows)
    models = models_in(rows)
    tooltip = [
        alt.Tooltip("model:N", title="Model"),
        alt.Tooltip("k:Q", title="k"),
        alt.Tooltip("estimate:Q", title=estimator, format=".1%"),
        alt.Tooltip("ci_low:Q", title="CI low", format=".1%"),
        alt.Tooltip("ci_high:Q", title="CI high", format=".1%"),
    ]
    if "n_tasks" in rows.columns:
        tooltip.append(alt.Tooltip("n_tasks:Q", title="Tasks averaged"))
    ks = sorted(set(rows.get_column("k").to_list()))
    x = alt.X("k:Q", title="k (attempts per task)", axis=alt.Axis(values=ks, format="d"))
    y_title = f"{estimator} (% probability, mean over tasks)"
    # a little room beyond 0 % and 100 % so points there are drawn whole inside the plot
    y_scale = alt.Scale(domain=[-0.04, 1.04], nice=False)
    y_axis = alt.Axis(format="%", values=[0, 0.25, 0.5, 0.75, 1])
    y = alt.Y("estimate:Q", title=y_title, scale=y_scale, axis=y_axis)
    base = alt.Chart(chart_values(rows))
    has_band = rows.get_column("ci_low").is_not_null().any()
    # an area needs two k values to span: with one, each interval is drawn as a bar
    as_bars = has_band and len(ks) == 1
    layers = []
    if as_bars:
        layers.append(
            base.mark_rule(strokeWidth=6, opacity=0.45).encode(
                x=x,
                y=alt.Y("ci_low:Q", title=y_title, scale=y_scale, axis=y_axis),
                y2="ci_high:Q",
                color=pal.color(models),
                tooltip=tooltip,
            )
        )
    elif has_band:
        layers.append(
            base.mark_area(opacity=band_opacity(len(models))).encode(
                x=x,
                y=alt.Y("ci_low:Q", title=y_title, scale=y_scale, axis=y_axis),
                y2="ci_high:Q",
                color=pal.color(models, columns=legend_columns),
                detail="model:N",
            )
        )
    layers.append(
        base.mark_line().encode(
            x=x,
            y=y,
            color=pal.color(models, columns=legend_columns),
            strokeDash=pal.dash_encoding(models, columns=legend_columns),
        )
    )
    layers.append(
        base.mark_point(filled=True, size=50).encode(
            x=x,
            y=y,
            color=pal.color(models, columns=legend_columns),
            shape=pal.shape_encoding(models, columns=legend_columns),
            tooltip=tooltip,
        )
    )
    if as_bars:
        note = f"bar: 95% bootstrap CI; only k = {ks[0]} has enough trials for a curve"
    else:
        note = "band: 95% bootstrap CI" if has_band else "no bootstrap band in this frame"
    return alt.LayerChart(layer=list(layers)).properties(
        width=width,
        height=300,
        title=title(f"{estimator} by model", _sim(simulated, frame), note),
    )


# ---- rewards -----------------------------------------------------------------

#: Most per-trajectory ticks the reward chart draws (beyond: box plots with outliers only).
MAX_TICKS = 3000
_REWARD_COLUMNS = {
    "best_reward": "Best reward",
    "final_reward": "Final reward",
    "normalized_reward": "Best reward ÷ task quota",
}
_REWARD_UNITS = {
    "best_reward": "Best reward (task units: throughput over the 60 s holdout)",
    "final_reward": "Final reward (task units: throughput over the 60 s holdout)",
    "normalized_reward": "Best reward ÷ task quota (1 = quota reached)",
}


def reward_distribution_chart(
    summaries: pl.DataFrame,
    reward: str = "both",
    *,
    palette: ModelPalette | None = None,
    simulated: bool | None = None,
) -> alt.LayerChart | alt.FacetChart:
    """Box plots of per-trajectory rewards per model, with every trajectory as a tick.

    Input: trajectory summaries (``model`` and the reward column(s); ``task,
    version, instance, source`` in tooltips). ``reward`` is ``best_reward``,
    ``final_reward``, ``normalized_reward`` (best ÷ quota: the one scale on which
    several tasks' rewards can share an axis) or ``both`` (best and final, one
    panel each). Raw rewards of different tasks are on different scales, so with
    more than one task pass ``normalized_reward`` or one task's summaries; the
    subtitle names the tasks plotted.
    """
    cols = ["best_reward", "final_reward"] if reward == "both" else [reward]
    if any(c not in _REWARD_COLUMNS for c in cols):
        raise ChartError(
            f"Unknown reward column {reward!r}",
            hint="use best_reward, final_reward, normalized_reward or both",
        )
    require(summaries, ["model", *cols], "trajectory summaries")
    # one tick per trajectory reads up to a few thousand; beyond that the boxes alone
    # (and a lean payload: no per-trajectory tooltip columns)
    ticks_too = summaries.height * len(cols) <= MAX_TICKS
    keys = (
        [c for c in ("source", "version", "instance", "task") if c in summaries.columns] if ticks_too else []
    )
    long = pl.concat(
        [
            summaries.select(
                "model",
                *keys,
                pl.lit(_REWARD_COLUMNS[c]).alias("measure"),
                pl.col(c).cast(pl.Float64).alias("reward"),
            )
            for c in cols
        ]
    )
    long = fill_model(long.filter(pl.col("reward").is_finite()))
    if long.height == 0:
        raise ChartError("No trajectory has a finite reward to plot")
    pal = _palette(palette, long)
    long = pal.with_labels(long)
    models = models_in(long)
    x = alt.X("reward:Q", title=_REWARD_UNITS[cols[0]] if len(cols) == 1 else "Reward (task units)")
    y = alt.Y("model_label:N", sort=[pal.label(m) for m in pal.domain_for(models)], axis=_model_axis())
    tooltip = [
        alt.Tooltip("model:N", title="Model"),
        alt.Tooltip("measure:N", title="Measure"),
        alt.Tooltip("reward:Q", title="Reward", format=",.3~f"),
    ]
    tooltip += [alt.Tooltip(f"{k}:N", title=k) for k in keys]
    box = (
        alt.Chart()
        .mark_boxplot(extent=1.5, opacity=0.5, outliers=not ticks_too)
        .encode(x=x, y=y, color=pal.color(models, legend=False))
    )
    layers = [box]
    if ticks_too:
        layers.append(
            alt.Chart()
            .mark_tick(opacity=0.6, thickness=1)
            .encode(x=x, y=y, color=pal.color(models, legend=False), tooltip=tooltip)
        )
    tasks = (
        sorted(summaries.get_column("task").drop_nulls().unique().to_list())
        if "task" in summaries.columns
        else []
    )
    about = "box: quartiles, whiskers 1.5×IQR; " + (
        "ticks: one per trajectory"
        if ticks_too
        else f"{long.height:,} values: points beyond the whiskers only"
    )
    if tasks:
        about += f"; task{'s' if len(tasks) > 1 else ''}: {name_list(tasks, 3)}"
    head = title("Reward distribution per model", _sim(simulated, summaries), about)
    layered = alt.layer(*layers, data=chart_values(long))
    if len(cols) == 1:
        return layered.properties(width=WIDTH, height=band_height(len(models)), title=head)
    return (
        layered.properties(width=300, height=band_height(len(models)))
        .facet(column=alt.Column("measure:N", title=None, sort=[_REWARD_COLUMNS[c] for c in cols]))
        .resolve_scale(x="independent")
        .properties(title=head)
    )


def efficiency_scatter_chart(
    summaries: pl.DataFrame,
    reward: str = "best_reward",
    *,
    palette: ModelPalette | None = None,
    simulated: bool | None = None,
) -> alt.Chart:
    """Tokens used against reward, one point per trajectory (efficiency).

    Input: trajectory summaries (``model, total_tokens, <reward>``; ``task,
    success, version, instance`` in tooltips when present).
    """
    require(summaries, ["model", "total_tokens", reward], "trajectory summaries")
    keys = [c for c in ("task", "success", "source", "version", "instance") if c in summaries.columns]
    rows = fill_model(
        summaries.select(
            "model",
            *keys,
            pl.col("total_tokens").cast(pl.Float64),
            pl.col(reward).cast(pl.Float64).alias("reward"),
        ).filter(pl.col("reward").is_finite() & pl.col("total_tokens").is_finite())
    )
    if rows.height == 0:
        raise ChartError("No trajectory has both tokens and a finite reward")
    pal = _palette(palette, rows)
    rows = pal.with_labels(rows)
    models = models_in(rows)
    label = metric_label(reward)
    tooltip = [
        alt.Tooltip("model:N", title="Model"),
        alt.Tooltip("total_tokens:Q", title="Total tokens", format=","),
        alt.Tooltip("reward:Q", title=label, format=",.3~f"),
    ]
    tooltip += [alt.Tooltip(f"{k}:N", title=k) for k in keys]
    return (
        alt.Chart(chart_values(rows))
        .mark_point(filled=True, size=45, opacity=0.7)
        .encode(
            x=alt.X(
                "total_tokens:Q", title="Total tokens per trajectory (tokens)", scale=alt.Scale(zero=False)
            ),
            y=alt.Y("reward:Q", title=label),
            color=pal.color(models),
            shape=pal.shape_encoding(models),
            tooltip=tooltip,
        )
        .properties(
            width=WIDTH,
            height=320,
            title=title(
                "Token efficiency: tokens vs reward", _sim(simulated, summaries), "one point per trajectory"
            ),
        )
    )


# ---- learning curves ------------------------------------------------------------


def _curve_points(steps: pl.DataFrame, x: str, time_bins: int) -> tuple[pl.DataFrame, str]:
    """Mean step reward per model at each step (or elapsed-time bin), with a 95% band.

    The band is mean ± 1.96·sd/√n over the trajectories at that x (normal
    approximation, descriptive only); it collapses to the mean when n < 2.
    """
    frame = steps.filter(pl.col("value").cast(pl.Float64).is_finite())
    if x == "step":
        require(steps, ["model", "depth", "value"], "steps")
        frame = frame.filter(pl.col("depth").is_not_null()).with_columns(
            pl.col("depth").cast(pl.Float64).alias("x")
        )
        x_title = "Step (agent step index)"
    elif x == "time":
        require(steps, ["model", "value", "created_at", "version", "instance"], "steps")
        key = [c for c in ("source", "version", "instance") if c in steps.columns]
        frame = frame.filter(pl.col("created_at").is_not_null()).with_columns(
            (
                (pl.col("created_at") - pl.col("created_at").min().over(key)).dt.total_milliseconds() / 1000.0
            ).alias("elapsed")
        )
        top = cast("float | None", frame.get_column("elapsed").max()) if frame.height else None
        unit, per = _time_unit(float(top) if top is not None else 0.0)
        frame = frame.with_columns(pl.col("elapsed") / per)
        top = (float(top) / per) if top else None
        width = (top / time_bins) if top else 1.0
        frame = frame.with_columns(
            ((pl.col("elapsed") / width).floor().clip(0, time_bins - 1) * width + width / 2).alias("x")
        )
        x_title = f"Elapsed time since trajectory start ({unit}, bin centre)"
    else:
        raise ChartError(f"Unknown learning-curve axis {x!r}", hint="use 'step' or 'time'")
    points = (
        fill_model(frame)
        .group_by("model", "x")
        .agg(
            pl.col("value").cast(pl.Float64).mean().alias("mean"),
            pl.col("value").cast(pl.Float64).std(ddof=1).alias("sd"),
            pl.len().alias("n"),
        )
        .with_columns(
            (1.96 * pl.col("sd").fill_null(0.0) / pl.col("n").cast(pl.Float64).sqrt()).alias("half")
        )
    )
    points = points.with_columns(
        (pl.col("mean") - pl.col("half")).alias("ci_low"), (pl.col("mean") + pl.col("half")).alias("ci_high")
    )
    return points.select("model", "x", "mean", "ci_low", "ci_high", "n").sort("model", "x"), x_title


def _time_unit(top_s: float) -> tuple[str, float]:
    """Seconds for runs under 2 minutes, minutes under 2 hours, else hours (name, seconds per unit)."""
    if top_s < 120:
        return "seconds", 1.0
    if top_s < 7200:
        return "minutes", 60.0
    return "hours", 3600.0


def learning_curve_chart(
    steps: pl.DataFrame,
    x: str = "step",
    *,
    time_bins: int = 30,
    palette: ModelPalette | None = None,
    simulated: bool | None = None,
    quota: float | None = None,
    y_max: float | None = None,
) -> alt.LayerChart:
    """Mean step reward per model over steps (``x="step"``) or elapsed time (``"time"``).

    Input: the steps frame (``model, depth, value`` for steps; ``created_at,
    source, version, instance`` for time). Band: mean ± 1.96 SE across trajectories.
    ``quota`` draws the task's quota as a dashed line (a run at 15.16 against a quota of
    16 visibly misses it); ``y_max`` fixes the top of the y axis, so two curves drawn
    side by side share one scale (``curve_y_max``).
    """
    points, x_title = _curve_points(steps, x, time_bins)
    if points.height == 0:
        raise ChartError("No step has a finite reward to plot")
    pal = _palette(palette, points)
    points = pal.with_labels(points)
    models = models_in(points)
    # one trajectory per model: no band, and the line is that run's own reward
    single = int(cast("int | None", points.get_column("n").max()) or 0) <= 1
    # steps are whole numbers: no 0.5 ticks between them
    x_axis = alt.Axis(format="d", tickMinStep=1) if x == "step" else alt.Axis(format="~g")
    xe = alt.X("x:Q", title=x_title, axis=x_axis)
    y_title = "Step reward (task units)" if single else "Mean step reward (task units)"
    tops = [v for v in (y_max, quota) if v is not None]
    # a little headroom above the highest reward or the quota line, so neither sits on the frame
    y_scale = alt.Scale(domainMax=1.05 * max(tops), nice=False) if tops and max(tops) > 0 else alt.Undefined
    y = alt.Y("mean:Q", title=y_title, axis=alt.Axis(format="~g"), scale=y_scale)
    tooltip = [
        alt.Tooltip("model:N", title="Model"),
        alt.Tooltip("x:Q", title=x_title, format=",.2~f"),
        alt.Tooltip("mean:Q", title="Mean reward", format=",.3~f"),
        alt.Tooltip("ci_low:Q", title="Band low", format=",.3~f"),
        alt.Tooltip("ci_high:Q", title="Band high", format=",.3~f"),
        alt.Tooltip("n:Q", title="Trajectories"),
    ]
    base = alt.Chart(chart_values(points))
    line = base.mark_line(point=False).encode(
        x=xe, y=y, color=pal.color(models), strokeDash=pal.dash_encoding(models)
    )
    dots = base.mark_point(filled=True, size=18).encode(x=xe, y=y, color=pal.color(models), tooltip=tooltip)
    if single:
        layers = [line, dots]
        about = "line: the step reward of this trajectory"
    else:
        band = base.mark_area(opacity=band_opacity(len(models)), clip=True).encode(
            x=xe,
            y=alt.Y("ci_low:Q", title=y_title, scale=y_scale),
            y2="ci_high:Q",
            color=pal.color(models),
            detail="model:N",
        )
        layers = [band, line, dots]
        about = "line: mean over trajectories; band: mean ± 1.96 SE"
    if quota is not None:
        layers.append(
            alt.Chart(chart_values(pl.DataFrame({"quota": [float(quota)]})))
            .mark_rule(strokeDash=[6, 4], color="#555555")
            .encode(y=alt.Y("quota:Q", scale=y_scale), tooltip=[alt.Tooltip("quota:Q", title="Quota")])
        )
        about += f"; dashed: the task's quota ({quota:,.4g})"
    what = "steps" if x == "step" else "time"
    return alt.LayerChart(layer=list(layers)).properties(
        width=WIDTH,
        height=300,
        title=title(f"Learning curve: reward over {what}", _sim(simulated, steps), about),
    )


def curve_y_max(*steps: pl.DataFrame, quotas: tuple[float | None, ...] = ()) -> float | None:
    """The top of a shared y axis for learning curves drawn side by side: the largest finite
    step reward or quota of any of them (None when there is none)."""
    tops = [float(q) for q in quotas if q is not None]
    for frame in steps:
        if "value" in frame.columns and frame.height:
            finite = (
                frame.get_column("value").cast(pl.Float64).filter(frame["value"].cast(pl.Float64).is_finite())
            )
            if finite.len():
                tops.append(float(cast("float", finite.max())))
    return max(tops) if tops else None


def learning_curves_chart(
    steps: pl.DataFrame, *, palette: ModelPalette | None = None, simulated: bool | None = None
) -> alt.HConcatChart | alt.LayerChart:
    """Reward over steps and, when timestamps exist, over elapsed time, side by side."""
    require(steps, ["model", "depth", "value"], "steps")
    pal = _palette(palette, fill_model(steps))
    by_step = learning_curve_chart(steps, "step", palette=pal, simulated=simulated)
    if "created_at" not in steps.columns or steps.get_column("created_at").is_null().all():
        return by_step
    by_time = learning_curve_chart(steps, "time", palette=pal, simulated=simulated)
    return alt.hconcat(by_step, by_time).resolve_scale(color="shared", strokeDash="shared")


# ---- cost and the Pareto frontier -------------------------------------------


def pareto_frontier(
    xs: list[float | None], ys: list[float | None], *, maximize_x: bool = True, minimize_y: bool = True
) -> list[bool]:
    """Which points no other point dominates (better or equal on both axes, better on one).

    Null / NaN points are never on the frontier and never dominate. Identical
    points are all on the frontier (neither dominates the other). The rule is
    ``stats.cost.pareto_mask``'s (the frontier share of the cost view uses it too).
    """
    import numpy as np

    from fle_core.stats.cost import pareto_mask as dominance

    x = np.array([np.nan if v is None else v for v in xs], dtype=float)
    y = np.array([np.nan if v is None else v for v in ys], dtype=float)
    return [bool(b) for b in dominance(x if maximize_x else -x, y if minimize_y else -y)]


def pareto_mask(
    frame: pl.DataFrame, x: str = "success_rate", y: str = "tokens_per_success", **kwargs
) -> pl.Series:
    """``pareto_frontier`` over two columns of a frame, as a Boolean Series."""
    flags = pareto_frontier(
        frame.get_column(x).cast(pl.Float64).to_list(),
        frame.get_column(y).cast(pl.Float64).to_list(),
        **kwargs,
    )
    return pl.Series("on_frontier", flags, dtype=pl.Boolean)


def cost_chart(
    model_metrics: pl.DataFrame,
    *,
    log_y: bool = True,
    palette: ModelPalette | None = None,
    simulated: bool | None = None,
) -> alt.LayerChart:
    """Cost per success against success rate per model, Pareto frontier marked.

    Input: model metrics (``model, success_rate`` and ``cost_per_success`` (total
    tokens of all scored runs ÷ successes), else ``tokens_per_success``; ``n,
    successes`` in tooltips). Frontier: no other model has both a
    higher-or-equal success rate and a lower-or-equal cost per success. Models
    without successes (no cost per success) cannot be placed and are named in
    the subtitle.
    """
    require(model_metrics, ["model", "success_rate"], "model metrics")
    cost = "cost_per_success" if "cost_per_success" in model_metrics.columns else "tokens_per_success"
    require(model_metrics, [cost], "model metrics")
    extra = [c for c in ("n", "successes", "tokens_per_success") if c in model_metrics.columns and c != cost]
    rows = fill_model(
        model_metrics.select(
            "model",
            pl.col("success_rate").cast(pl.Float64),
            pl.col(cost).cast(pl.Float64).alias("cost"),
            *[pl.col(c).cast(pl.Float64) for c in extra],
        )
    )
    placeable = pl.col("cost").is_finite() & (pl.col("cost") > 0) & pl.col("success_rate").is_finite()
    dropped = rows.filter(~placeable.fill_null(False)).get_column("model").to_list()
    rows = rows.filter(placeable.fill_null(False))
    if rows.height == 0:
        raise ChartError("No model has a success, so the cost per success is undefined for all")
    rows = rows.with_columns(pareto_mask(rows, "success_rate", "cost")).sort("success_rate")
    pal = _palette(palette, rows)
    rows = pal.with_labels(rows)
    models = models_in(rows)
    cost_title = (
        "Cost per success (tokens: all runs' tokens ÷ successes)"
        if cost == "cost_per_success"
        else "Mean tokens of a successful run (tokens)"
    )
    tooltip = [
        alt.Tooltip("model:N", title="Model"),
        alt.Tooltip("success_rate:Q", title="Success rate", format=".1%"),
        alt.Tooltip("cost:Q", title=cost_title, format=",.0f"),
        alt.Tooltip("on_frontier:N", title="On Pareto frontier"),
    ]
    names = {
        "n": "Trajectories",
        "successes": "Successes",
        "tokens_per_success": "Mean tokens of a successful run",
    }
    tooltip += [alt.Tooltip(f"{c}:Q", title=names[c], format=",.0f") for c in extra]
    x = alt.X(
        "success_rate:Q",
        title="Success rate (% of trials)",
        axis=alt.Axis(format="%", values=[i / 10 for i in range(11)]),
        scale=alt.Scale(domain=[0, 1.04], nice=False),
    )
    y = alt.Y(
        "cost:Q",
        title=f"{cost_title}, lower is cheaper",
        scale=alt.Scale(type="log") if log_y else alt.Scale(zero=False),
        axis=alt.Axis(format="~s"),
    )
    base = alt.Chart(chart_values(rows))
    frontier = (
        base.transform_filter("datum.on_frontier")
        .mark_line(color="#555555", strokeDash=[4, 3])
        .encode(x=x, y=y, order="success_rate:Q")
    )
    ring = (
        base.transform_filter("datum.on_frontier")
        .mark_point(size=260, color="#555555", filled=False, strokeWidth=1.5)
        .encode(x=x, y=y)
    )
    points = base.mark_point(filled=True, size=80).encode(
        x=x, y=y, color=pal.color(models), shape=pal.shape_encoding(models), tooltip=tooltip
    )
    note = "dashed line and rings: Pareto frontier (higher success at lower cost)"
    if dropped:
        note += f"; not shown (no successes, so no cost per success): {name_list(dropped)}"
    return alt.LayerChart(layer=[frontier, ring, points]).properties(
        width=WIDTH,
        height=320,
        title=title("Cost per success vs success rate", _sim(simulated, model_metrics), note),
    )
