"""rliable-style charts (Agarwal et al. 2021) over finished bootstrap frames.

* interval estimates: ``model, metric, estimate, ci_low, ci_high``
  (``bootstrap.interval_estimates``), one panel per metric;
* performance profiles: ``model, tau, fraction, ci_low, ci_high``
  (``bootstrap.performance_profile``);
* probability of improvement: ``model_x, model_y, estimate, ci_low, ci_high``
  (``bootstrap.probability_of_improvement``).

These frames carry no ``simulated`` column, so pass ``simulated=`` (the
visualizer and report do, from the summaries they were computed from).
"""

from __future__ import annotations

import altair as alt
import polars as pl

from fle_core.charts.base import (
    AXIS_LABEL_PX,
    ModelPalette,
    band_height,
    band_opacity,
    bootstrap_note,
    chart_values,
    fill_model,
    is_simulated,
    metric_label,
    models_in,
    require,
    title,
)

_METRIC_ORDER = ("success_rate", "mean", "iqm", "median", "optimality_gap")


def _sim(simulated: bool | None, frame: pl.DataFrame) -> bool:
    return is_simulated(frame) if simulated is None else bool(simulated)


#: Per-panel x-axis titles and formats: each panel says its own unit.
_PANEL_AXES = {
    "success_rate": ("Success rate (% of trials)", "%"),
    "mean": ("Mean score (best ÷ quota)", ".2~f"),
    "iqm": ("IQM score (best ÷ quota)", ".2~f"),
    "median": ("Median score (best ÷ quota)", ".2~f"),
    "optimality_gap": ("Optimality gap (lower = better)", ".2~f"),
}
#: Panels per row, and each panel's plot width: two rows of 32-character labels and two
#: panels fit the main column of a 1024 px window (564 px) as well as a 1400 px one.
PANELS_PER_ROW, PANEL_PX, PANEL_GAP_PX = 2, 150, 16


def interval_estimates_chart(
    frame: pl.DataFrame, *, palette: ModelPalette | None = None, simulated: bool | None = None
) -> alt.ConcatChart:
    """Point estimate and 95% CI per model, one panel per aggregate metric, two panels a row.

    Input: interval estimates (``model, metric, estimate, ci_low, ci_high``).
    Each panel has its own x axis, titled with its unit (success rate in %; IQM,
    mean and optimality gap on the bootstrap's score, by default best reward ÷
    quota; the optimality gap is lower-is-better). Models are in the same order
    in every panel; only the left panel of a row repeats their labels. An
    interval of zero width (every resample gave the same value, e.g. 0/n or n/n
    successes in every task) is drawn as a ring so it is not mistaken for a
    missing bar.
    """
    require(frame, ["model", "metric", "estimate", "ci_low", "ci_high"], "interval estimates")
    rows = fill_model(frame.select("model", "metric", "estimate", "ci_low", "ci_high"))
    metrics = rows.get_column("metric").unique().to_list()
    order = [m for m in _METRIC_ORDER if m in metrics] + sorted(m for m in metrics if m not in _METRIC_ORDER)
    present = models_in(rows)
    pal = palette.covering(present) if palette is not None else ModelPalette.from_models(present)
    rows = pal.with_labels(rows).with_columns(
        (pl.col("ci_high") - pl.col("ci_low")).abs().le(1e-12).fill_null(False).alias("zero_width")
    )
    models = pal.domain_for(present)
    panels = []
    for i, metric in enumerate(order):
        axis_title, fmt = _PANEL_AXES.get(metric, (metric_label(metric), ",.3~f"))
        tip_fmt = ".1%" if fmt == "%" else ",.3~f"
        tooltip = [
            alt.Tooltip("model:N", title="Model"),
            alt.Tooltip("estimate:Q", title=axis_title, format=tip_fmt),
            alt.Tooltip("ci_low:Q", title="95% CI low", format=tip_fmt),
            alt.Tooltip("ci_high:Q", title="95% CI high", format=tip_fmt),
        ]
        left = i % PANELS_PER_ROW == 0
        y = alt.Y(
            "model_label:N",
            sort=[pal.label(m) for m in models],
            # no "Model" title: the names say it, and the 20 px keep two panels inside a 1024 px column
            axis=alt.Axis(title=None, labels=left, labelLimit=AXIS_LABEL_PX, labelOverlap=False),
        )
        scale = alt.Scale(domain=[0, 1]) if metric == "success_rate" else alt.Scale(zero=False)
        x = alt.X("ci_low:Q", title=axis_title, scale=scale, axis=alt.Axis(format=fmt, tickCount=4))
        base = alt.Chart(chart_values(rows.filter(pl.col("metric") == metric)))
        interval = base.mark_rule(strokeWidth=6, opacity=0.45).encode(
            y=y, x=x, x2="ci_high:Q", color=pal.color(models, legend=False), tooltip=tooltip
        )
        point = base.mark_tick(thickness=2, size=16, color="black").encode(
            y=y, x=alt.X("estimate:Q", title=axis_title), tooltip=tooltip
        )
        ring = (
            base.transform_filter("datum.zero_width")
            .mark_point(size=70, filled=False, strokeWidth=1.5)
            .encode(
                y=y,
                x=alt.X("estimate:Q", title=axis_title),
                color=pal.color(models, legend=False),
                tooltip=tooltip,
            )
        )
        panels.append(
            alt.layer(interval, point, ring).properties(width=PANEL_PX, height=band_height(len(models)))
        )
    return alt.concat(*panels, columns=PANELS_PER_ROW, spacing=PANEL_GAP_PX).properties(
        title=title(
            "Aggregate metrics with 95% CIs",
            _sim(simulated, frame),
            f"bar: 95% {bootstrap_note(frame)}; tick: point estimate; ring: a zero-width interval "
            "(every resample gave the same value, e.g. 0/n or n/n in every task); mean, IQM and "
            "optimality gap are on the bootstrap score (default: best reward ÷ quota)",
        )
    )


def performance_profile_chart(
    frame: pl.DataFrame,
    *,
    palette: ModelPalette | None = None,
    simulated: bool | None = None,
    score_title: str = "best reward ÷ task quota",
) -> alt.LayerChart:
    """Fraction of runs scoring above τ, per model, with a 95% bootstrap band.

    Input: performance profile (``model, tau, fraction, ci_low, ci_high``).
    ``score_title`` names the score τ is on (``bootstrap.performance_profile``
    defaults to the normalized reward, best reward ÷ quota).
    """
    require(frame, ["model", "tau", "fraction", "ci_low", "ci_high"], "performance profile")
    rows = fill_model(frame.select("model", "tau", "fraction", "ci_low", "ci_high")).sort("model", "tau")
    models = models_in(rows)
    pal = palette.covering(models) if palette is not None else ModelPalette.from_models(models)
    rows = pal.with_labels(rows)
    x = alt.X("tau:Q", title=f"Score threshold τ ({score_title})")
    y_title = "Fraction of runs with score > τ (%)"
    y = alt.Y("fraction:Q", title=y_title, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"))
    tooltip = [
        alt.Tooltip("model:N", title="Model"),
        alt.Tooltip("tau:Q", title="τ", format=",.3~f"),
        alt.Tooltip("fraction:Q", title="Fraction > τ", format=".1%"),
        alt.Tooltip("ci_low:Q", title="CI low", format=".1%"),
        alt.Tooltip("ci_high:Q", title="CI high", format=".1%"),
    ]
    base = alt.Chart(chart_values(rows))
    band = base.mark_area(opacity=band_opacity(len(models)), interpolate="step-after").encode(
        x=x, y=alt.Y("ci_low:Q", title=y_title), y2="ci_high:Q", color=pal.color(models), detail="model:N"
    )
    line = base.mark_line(interpolate="step-after").encode(
        x=x, y=y, color=pal.color(models), strokeDash=pal.dash_encoding(models)
    )
    dots = base.mark_point(size=20, filled=True).encode(x=x, y=y, color=pal.color(models), tooltip=tooltip)
    return alt.LayerChart(layer=[band, line, dots]).properties(
        width=420,
        height=300,
        title=title("Performance profiles", _sim(simulated, frame), "band: 95% bootstrap CI"),
    )


#: Most pairs drawn at once; beyond this the chart shows the most decisive ones and says so.
MAX_PAIRS = 40


def probability_of_improvement_chart(
    frame: pl.DataFrame,
    *,
    palette: ModelPalette | None = None,
    simulated: bool | None = None,
    max_pairs: int = MAX_PAIRS,
) -> alt.LayerChart:
    """P(X > Y) per pair of models with its 95% CI; 0.5 means no difference.

    Input: probability of improvement (``model_x, model_y, estimate, ci_low,
    ci_high``). Each unordered pair is drawn once, turned so that X is the model
    more likely to be better (P(Y > X) = 1 − P(X > Y) adds nothing), labelled
    "X > Y" with the palette's short names and coloured by X. With more than
    ``max_pairs`` pairs only the ``max_pairs`` farthest from ½ are drawn and the
    subtitle says how many of how many; choose a baseline to see every pair with
    one model.
    """
    require(frame, ["model_x", "model_y", "estimate", "ci_low", "ci_high"], "probability of improvement")
    rows = frame.select(
        pl.col("model_x").cast(pl.String).fill_null("(unknown)"),
        pl.col("model_y").cast(pl.String).fill_null("(unknown)"),
        pl.col("estimate").cast(pl.Float64),
        pl.col("ci_low").cast(pl.Float64),
        pl.col("ci_high").cast(pl.Float64),
    )
    flip = pl.col("estimate") < 0.5
    rows = rows.select(
        pl.when(flip).then("model_y").otherwise("model_x").alias("model_x"),
        pl.when(flip).then("model_x").otherwise("model_y").alias("model_y"),
        pl.when(flip).then(1 - pl.col("estimate")).otherwise("estimate").alias("estimate"),
        pl.when(flip).then(1 - pl.col("ci_high")).otherwise("ci_low").alias("ci_low"),
        pl.when(flip).then(1 - pl.col("ci_low")).otherwise("ci_high").alias("ci_high"),
    )
    key = pl.concat_str(
        pl.min_horizontal("model_x", "model_y"), pl.lit("\x00"), pl.max_horizontal("model_x", "model_y")
    )
    rows = (
        rows.with_columns(key.alias("_pair")).unique("_pair", keep="first", maintain_order=True).drop("_pair")
    )
    total = rows.height
    rows = rows.sort(["estimate", "model_x", "model_y"], descending=[True, False, False])
    shown = rows.head(max_pairs)
    present = set(rows["model_x"].to_list()) | set(rows["model_y"].to_list())
    pal = palette.covering(present) if palette is not None else ModelPalette.from_models(present)
    shown = pal.with_labels(pal.with_labels(shown, "model_x"), "model_y").with_columns(
        pl.format("{} > {}", "model_x_label", "model_y_label").alias("pair")
    )
    tooltip = [
        alt.Tooltip("model_x:N", title="X (more likely better)"),
        alt.Tooltip("model_y:N", title="Y"),
        alt.Tooltip("estimate:Q", title="P(X > Y)", format=".3f"),
        alt.Tooltip("ci_low:Q", title="CI low", format=".3f"),
        alt.Tooltip("ci_high:Q", title="CI high", format=".3f"),
    ]
    # sort=None keeps the data order (most decisive first); an explicit sort list of
    # hundreds of pairs makes Vega's ordinal sort quadratic.
    y = alt.Y(
        "pair:N", title=None, sort=None, axis=alt.Axis(labelLimit=2 * AXIS_LABEL_PX, labelOverlap=False)
    )
    x_title = "P(X > Y) (probability; ties count ½)"
    xs = alt.Scale(domain=[0, 1])
    ticks = alt.Axis(values=[i / 10 for i in range(11)], format=".1f")
    base = alt.Chart(chart_values(shown))
    xmodels = shown["model_x"].unique().to_list()
    interval = base.mark_rule(strokeWidth=6, opacity=0.5).encode(
        y=y,
        x=alt.X("ci_low:Q", title=x_title, scale=xs, axis=ticks),
        x2="ci_high:Q",
        color=pal.color(xmodels, field="model_x_label", title="X", legend=False),
        tooltip=tooltip,
    )
    point = base.mark_tick(thickness=2, size=14, color="black").encode(
        y=y, x=alt.X("estimate:Q", title=x_title, scale=xs), tooltip=tooltip
    )
    even = (
        alt.Chart({"values": [{"p": 0.5}]})
        .mark_rule(strokeDash=[4, 3], color="#777777")
        .encode(x=alt.X("p:Q", title=x_title, scale=xs))
    )
    note = "P(X > Y) + ½P(X = Y) per task, averaged; bar: 95% bootstrap CI; each pair once, X the likelier winner"
    if total > shown.height:
        note += f"; showing the {shown.height} of {total} pairs farthest from ½ (choose a baseline to see all pairs with one model)"
    return alt.LayerChart(layer=[interval, point, even]).properties(
        width=420,
        height=band_height(shown.height, 20),
        title=title("Probability of improvement", _sim(simulated, frame), note),
    )
