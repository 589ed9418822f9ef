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
    ModelPalette,
    band_height,
    band_opacity,
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


def interval_estimates_chart(
    frame: pl.DataFrame, *, palette: ModelPalette | None = None, simulated: bool | None = None
) -> alt.FacetChart:
    """Point estimate and 95% CI per model, one panel per aggregate metric.

    Input: interval estimates (``model, metric, estimate, ci_low, ci_high``).
    Each panel has its own x scale (success rate is a fraction; IQM, mean and
    optimality gap are on the bootstrap's score, by default best reward ÷ quota;
    the optimality gap is lower-is-better).
    """
    require(frame, ["model", "metric", "estimate", "ci_low", "ci_high"], "interval estimates")
    rows = fill_model(frame.select("model", "metric", "estimate", "ci_low", "ci_high"))
    metrics = rows.get_column("metric").unique().to_list()
    order = [m for m in _METRIC_ORDER if m in metrics] + sorted(m for m in metrics if m not in _METRIC_ORDER)
    labels = {m: metric_label(m) for m in order}
    rows = rows.with_columns(
        pl.col("metric").replace_strict(labels, return_dtype=pl.String).alias("metric_label")
    )
    models = models_in(rows)
    pal = palette if palette is not None else ModelPalette.from_models(models)
    tooltip = [
        alt.Tooltip("model:N", title="Model"),
        alt.Tooltip("metric_label:N", title="Metric"),
        alt.Tooltip("estimate:Q", title="Estimate", format=",.3~f"),
        alt.Tooltip("ci_low:Q", title="CI low", format=",.3~f"),
        alt.Tooltip("ci_high:Q", title="CI high", format=",.3~f"),
    ]
    y = alt.Y("model:N", title="Model", sort=models)
    interval = (
        alt.Chart()
        .mark_rule(strokeWidth=6, opacity=0.45)
        .encode(
            y=y,
            x=alt.X("ci_low:Q", title="Estimate (panel units)", scale=alt.Scale(zero=False)),
            x2="ci_high:Q",
            color=pal.color(models, legend=False),
            tooltip=tooltip,
        )
    )
    point = (
        alt.Chart()
        .mark_tick(thickness=2, size=16, color="black")
        .encode(y=y, x=alt.X("estimate:Q", title="Estimate (panel units)"), tooltip=tooltip)
    )
    return (
        alt.layer(interval, point, data=chart_values(rows))
        .properties(width=200, height=band_height(len(models)))
        .facet(
            column=alt.Column("metric_label:N", title=None, sort=[labels[m] for m in order]),
        )
        .resolve_scale(x="independent")
        .properties(
            title=title(
                "Aggregate metrics with 95% CIs",
                _sim(simulated, frame),
                "bar: stratified-bootstrap 95% CI; tick: point estimate; mean, IQM and "
                "optimality gap are on the bootstrap score (default: best reward ÷ quota)",
            )
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
    pal = palette if palette is not None else ModelPalette.from_models(models)
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
        title=title("Performance profiles", _sim(simulated, frame), "band: 95% stratified-bootstrap CI"),
    )


def probability_of_improvement_chart(
    frame: pl.DataFrame, *, palette: ModelPalette | None = None, simulated: bool | None = None
) -> alt.LayerChart:
    """P(model_x > model_y) per pair with its 95% CI; 0.5 means no difference.

    Input: probability of improvement (``model_x, model_y, estimate, ci_low,
    ci_high``). Coloured by ``model_x``.
    """
    require(frame, ["model_x", "model_y", "estimate", "ci_low", "ci_high"], "probability of improvement")
    rows = frame.select(
        pl.col("model_x").cast(pl.String).fill_null("(unknown)"),
        pl.col("model_y").cast(pl.String).fill_null("(unknown)"),
        "estimate",
        "ci_low",
        "ci_high",
    )
    rows = rows.with_columns(pl.format("{} vs {}", "model_x", "model_y").alias("pair")).sort(
        "model_x", "model_y"
    )
    models = sorted(set(rows["model_x"].to_list()))
    pal = (
        palette
        if palette is not None
        else ModelPalette.from_models(set(models) | set(rows["model_y"].to_list()))
    )
    tooltip = [
        alt.Tooltip("model_x:N", title="X"),
        alt.Tooltip("model_y:N", title="Y"),
        alt.Tooltip("estimate:Q", title="P(X > Y)", format=".3f"),
        alt.Tooltip("ci_low:Q", title="CI low", format=".3f"),
        alt.Tooltip("ci_high:Q", title="CI high", format=".3f"),
    ]
    pairs = rows.get_column("pair").to_list()
    # sort=None keeps the data order (already sorted by model_x, model_y); an explicit
    # sort list of hundreds of pairs makes Vega's ordinal sort quadratic.
    y = alt.Y("pair:N", title="X vs Y", sort=None)
    x_title = "P(X > Y) (probability; ties count ½)"
    base = alt.Chart(chart_values(rows))
    interval = base.mark_rule(strokeWidth=6, opacity=0.5).encode(
        y=y,
        x=alt.X("ci_low:Q", title=x_title, scale=alt.Scale(domain=[0, 1])),
        x2="ci_high:Q",
        color=pal.color(models, field="model_x", title="X"),
        tooltip=tooltip,
    )
    point = base.mark_tick(thickness=2, size=16, color="black").encode(
        y=y, x=alt.X("estimate:Q", title=x_title), tooltip=tooltip
    )
    even = (
        alt.Chart({"values": [{"p": 0.5}]})
        .mark_rule(strokeDash=[4, 3], color="#777777")
        .encode(x=alt.X("p:Q", title=x_title))
    )
    return alt.LayerChart(layer=[interval, point, even]).properties(
        width=420,
        height=band_height(len(pairs), 18),
        title=title(
            "Probability of improvement",
            _sim(simulated, frame),
            "P(X > Y) + ½P(X = Y) per task, averaged; bar: 95% bootstrap CI",
        ),
    )
