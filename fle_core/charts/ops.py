"""Operational charts: the sweep's live cell grid, the pairwise-comparison matrix, tokens per step.

These draw what the Monitor, Compare (Pairwise) and Trajectories pages show.
Like every builder they only reshape finished frames for drawing:

* ``sweep_cells_chart``: ``sweeps.cells_frame`` (one row per cell);
* ``comparison_matrix_chart``: ``compare.pairwise_comparisons`` (its ``task ==
  "ALL"`` rows), mirrored so every model appears on both axes;
* ``step_tokens_chart``: the steps of one trajectory (``depth, prompt_tokens,
  completion_tokens``).
"""

from __future__ import annotations

from typing import Final

import altair as alt
import polars as pl

from fle_core.charts.base import (
    AXIS_LABEL_PX,
    OKABE_ITO,
    ChartError,
    ModelPalette,
    chart_values,
    is_simulated,
    require,
    short_labels,
    task_labels,
    title,
)

#: Fixed cell-state colours (Okabe–Ito hues plus two greys that differ in lightness),
#: the same in every sweep so a state never changes colour between refreshes.
STATE_COLOURS: dict[str, str] = {
    "succeeded": "#009E73",  # bluish green
    "running": "#56B4E9",  # sky blue
    "pending": "#E5E5E5",  # light grey
    "failed": "#D55E00",  # vermillion
    "early_stopped": "#F0E442",  # yellow
    "cancelled": "#777777",  # dark grey
}
#: Colours for states outside the contract, given in sorted state order.
EXTRA_STATE_COLOURS: tuple[str, ...] = ("#CC79A7", "#0072B2", "#E69F00", "#000000")

VERDICT_SYMBOLS: dict[str, str] = {
    "significantly better": "▲",
    "significantly worse": "▼",
    "no significant difference": "·",
}
_FLIP = {"significantly better": "significantly worse", "significantly worse": "significantly better"}
#: Diverging, colour-blind-safe scheme for differences (orange: A − B > 0, blue: A − B < 0).
DIFF_SCHEME: Final = "blueorange"
#: Least plot height of the cell grid (one or two rows still read as a grid).
MIN_GRID_PX: Final = 60
NO_DIFF_GREY = "#DDDDDD"  # compared, but no finite difference (e.g. no shared task)
GAP_GREYS = {"same model": "#F7F7F7", "not compared": "#AAAAAA"}
TOKEN_COLOURS = {"prompt": OKABE_ITO[0], "completion": OKABE_ITO[1]}


def _sim(simulated: bool | None, frame: pl.DataFrame) -> bool:
    return is_simulated(frame) if simulated is None else bool(simulated)


# ---- sweep cells ---------------------------------------------------------------


def state_colours(states: list[str]) -> dict[str, str]:
    """State → colour for the contract states plus any other ``states`` (sorted, cycled)."""
    out = dict(STATE_COLOURS)
    extra = sorted(s for s in set(states) if s not in STATE_COLOURS)
    out.update({s: EXTRA_STATE_COLOURS[i % len(EXTRA_STATE_COLOURS)] for i, s in enumerate(extra)})
    return out


def _has_params(cells: pl.DataFrame) -> bool:
    if "params_json" not in cells.columns:
        return False
    values = set(cells.get_column("params_json").drop_nulls().to_list()) - {"", "{}"}
    return bool(values)


def _cell_rows(cells: pl.DataFrame) -> pl.DataFrame:
    """One row per cell with a ``row`` label (model · task [· params], short names) and a state."""
    models = cells.get_column("model").cast(pl.String).fill_null("(unknown)")
    tasks = cells.get_column("task").cast(pl.String).fill_null("(unknown)")
    model_names = short_labels(models.unique().sort().to_list())
    task_names = task_labels(tasks.unique().sort().to_list())
    label = [
        pl.col("model")
        .cast(pl.String)
        .fill_null("(unknown)")
        .replace_strict(model_names, return_dtype=pl.String),
        pl.lit(" · "),
        pl.col("task")
        .cast(pl.String)
        .fill_null("(unknown)")
        .replace_strict(task_names, return_dtype=pl.String),
    ]
    if _has_params(cells):
        label += [pl.lit(" · "), pl.col("params_json").fill_null("{}")]
    optional = [
        c
        for c in (
            "params_json",
            "attempts",
            "failures",
            "version",
            "last_outcome",
            "last_error",
            "updated_at",
            "cell_id",
        )
        if c in cells.columns
    ]
    rows = cells.select(
        pl.concat_str(label).alias("row"),
        pl.col("model").cast(pl.String).fill_null("(unknown)"),
        pl.col("task").cast(pl.String).fill_null("(unknown)"),
        pl.col("trial").cast(pl.Int64),
        pl.col("status").cast(pl.String).fill_null("(unknown)").alias("state"),
        *optional,
    )
    return rows.sort("row", "trial")


def _cell_size(n: int, roomy: int, tight: int, budget: int) -> int:
    """Pixels per row/column: roomy for small grids, shrinking to fit ``budget`` for big ones."""
    return max(tight, min(roomy, budget // max(n, 1)))


def sweep_cells_chart(
    cells: pl.DataFrame, *, palette: ModelPalette | None = None, simulated: bool | None = None
) -> alt.Chart:
    """The sweep's live grid: a rect per cell, rows model × task (× params), columns trial.

    Input: ``sweeps.cells_frame`` (``model, task, trial, status``;
    ``params_json, attempts, failures, version, last_outcome, last_error,
    updated_at`` in tooltips when present). Colours are fixed per state
    (``STATE_COLOURS``); the legend always lists the six contract states so it does
    not jump while a sweep runs, plus any other state present. Rows and columns
    shrink (down to 8 px) so ~2,000 cells stay on one screen. ``palette`` is
    accepted for a uniform signature; colours here encode the state.
    """
    require(cells, ["model", "task", "trial", "status"], "sweep cells")
    rows = _cell_rows(cells)
    states = rows.get_column("state").unique().to_list()
    colours = state_colours(states)
    domain = list(colours)
    labels = rows.get_column("row").unique(maintain_order=True).to_list()
    trials = rows.get_column("trial").n_unique()
    tooltip = [alt.Tooltip("model:N", title="Model"), alt.Tooltip("task:N", title="Task")]
    if _has_params(cells):
        tooltip.append(alt.Tooltip("params_json:N", title="Params"))
    tooltip += [alt.Tooltip("trial:O", title="Trial"), alt.Tooltip("state:N", title="State")]
    names = {
        "attempts": ("Q", "Attempts"),
        "failures": ("Q", "Failed attempts"),
        "version": ("Q", "Version (latest attempt)"),
        "last_outcome": ("N", "Last outcome"),
        "last_error": ("N", "Error"),
        "updated_at": ("N", "Updated (UTC)"),
    }
    tooltip += [alt.Tooltip(f"{c}:{t}", title=name) for c, (t, name) in names.items() if c in rows.columns]
    row_px = _cell_size(len(labels), 22, 8, 900)
    col_px = _cell_size(trials, 36, 8, 600)
    # no axis title: the labels say what they are, and a title beside 300 px labels can overlap
    # them when the browser's font is wider than Vega measured
    y = alt.Y(
        "row:N",
        title=None,
        sort=None,  # data order (sorted); an explicit list of hundreds of labels is slow in Vega
        axis=alt.Axis(
            labelLimit=2 * AXIS_LABEL_PX,
            labelFontSize=11 if row_px >= 18 else 10 if row_px >= 14 else 8,
            labelOverlap=False,
        ),
    )
    x = alt.X("trial:O", title="Trial (repeat index)", axis=alt.Axis(labelAngle=0, labelOverlap=True))
    colour = alt.Color(
        "state:N",
        title="Cell state",
        scale=alt.Scale(domain=domain, range=[colours[s] for s in domain]),
        # below the grid, in columns: beside it, it would push a 30-model grid past a 1024 px column
        legend=alt.Legend(
            symbolLimit=len(domain) + 1,
            symbolType="square",
            labelExpr="replace(datum.label, '_', ' ')",
            orient="bottom",
            columns=2,
            direction="vertical",
        ),
    )
    what = "model · task" + (" · params" if _has_params(cells) else "")
    counts = rows.group_by("state").len().sort("state")
    summary = ", ".join(f"{r['len']} {r['state'].replace('_', ' ')}" for r in counts.iter_rows(named=True))
    return (
        alt.Chart(chart_values(rows))
        .mark_rect(stroke="white", strokeWidth=1 if min(row_px, col_px) >= 12 else 0)
        .encode(
            x=x,
            y=y,
            color=colour,
            tooltip=tooltip,
        )
        .properties(
            width=max(160, col_px * max(trials, 1)),
            height=max(MIN_GRID_PX, row_px * len(labels)),
            title=title(
                "Sweep cells by state",
                _sim(simulated, cells),
                f"rows: {what}; {rows.height:,} cell{'s' if rows.height != 1 else ''}: {summary}",
            ),
        )
    )


# ---- pairwise comparison matrix --------------------------------------------------

_COMPARISON_COLUMNS = [
    "model_a",
    "model_b",
    "task",
    "metric",
    "diff",
    "diff_ci_low",
    "diff_ci_high",
    "p_value",
    "p_adjusted",
    "correction",
    "prob_improvement",
    "verdict",
]


def _mirror(rows: pl.DataFrame) -> pl.DataFrame:
    """Each A-vs-B row seen from B's side: −diff, negated CI, 1 − P(A > B), flipped verdict.

    P(A > B) counts ties ½, so P(B > A) = 1 − P(A > B) exactly; p-values are symmetric.
    """
    return rows.select(
        pl.col("model_b").alias("model_a"),
        pl.col("model_a").alias("model_b"),
        "metric",
        (-pl.col("diff")).alias("diff"),
        (-pl.col("diff_ci_high")).alias("diff_ci_low"),
        (-pl.col("diff_ci_low")).alias("diff_ci_high"),
        "p_value",
        "p_adjusted",
        "correction",
        (1.0 - pl.col("prob_improvement")).alias("prob_improvement"),
        pl.col("verdict").replace(_FLIP),
        pl.col("b_n").alias("a_n"),
        pl.col("a_n").alias("b_n"),
        pl.lit("mirrored (B vs A row)").alias("direction"),
    )


def _matrix_rows(comparisons: pl.DataFrame, mirror: bool) -> tuple[pl.DataFrame, list[str]]:
    """The ALL rows (mirrored when asked) plus a placeholder for every pair not compared."""
    require(comparisons, _COMPARISON_COLUMNS, "comparisons")
    frame = comparisons
    for c in ("a_n", "b_n"):
        if c not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.Int64).alias(c))
    rows = frame.filter(pl.col("task") == "ALL").select(
        pl.col("model_a").cast(pl.String).fill_null("(unknown)"),
        pl.col("model_b").cast(pl.String).fill_null("(unknown)"),
        "metric",
        *[
            pl.col(c).cast(pl.Float64)
            for c in ("diff", "diff_ci_low", "diff_ci_high", "p_value", "p_adjusted")
        ],
        "correction",
        pl.col("prob_improvement").cast(pl.Float64),
        "verdict",
        pl.col("a_n").cast(pl.Int64),
        pl.col("b_n").cast(pl.Int64),
        pl.lit("as computed (A vs B row)").alias("direction"),
    )
    if rows.height == 0:
        raise ChartError(
            "The comparisons frame has no across-task (task = 'ALL') rows",
            hint="pairwise_comparisons adds one per pair; check the filters",
        )
    if mirror:
        back = _mirror(rows).join(rows.select("model_a", "model_b"), on=["model_a", "model_b"], how="anti")
        rows = pl.concat([rows, back], how="vertical_relaxed")
    rows = rows.with_columns(
        pl.col("diff").is_finite().fill_null(False).alias("has_diff"),
        pl.col("verdict").replace_strict(VERDICT_SYMBOLS, default="?").alias("symbol"),
    )
    models = sorted(set(rows["model_a"].to_list()) | set(rows["model_b"].to_list()))
    return rows, models


def _missing_pairs(rows: pl.DataFrame, models: list[str], mirror: bool) -> pl.DataFrame:
    """(row, column) pairs without a comparison: the diagonal and pairs never compared."""
    seen = set(zip(rows["model_a"].to_list(), rows["model_b"].to_list(), strict=True))
    a_axis = models if mirror else sorted(set(rows["model_a"].to_list()))
    b_axis = models if mirror else sorted(set(rows["model_b"].to_list()))
    out = [
        {
            "model_a": a,
            "model_b": b,
            "reason": "same model" if a == b else "not compared",
            "symbol": "—" if a == b else "",
        }
        for a in a_axis
        for b in b_axis
        if (a, b) not in seen
    ]
    schema = {"model_a": pl.String, "model_b": pl.String, "reason": pl.String, "symbol": pl.String}
    return pl.DataFrame(out, schema=schema)


def _diff_format(metric: str) -> tuple[str, str]:
    if metric == "success":
        return "+.1%", "Difference A − B (success rate, percentage points)"
    return "+,.3~f", f"Difference A − B ({metric.replace('_', ' ')}, task units)"


def _matrix_cell(n: int) -> int:
    """Cell size: roomy for a few models, 18 px at 30 so the matrix fits a 1400 px window."""
    return max(16, min(48, 560 // max(n, 1)))


def comparison_matrix_chart(
    comparisons: pl.DataFrame,
    *,
    mirror: bool = True,
    palette: ModelPalette | None = None,
    simulated: bool | None = None,
) -> alt.LayerChart:
    """Row model A × column model B heatmap of the across-task difference A − B.

    Input: ``compare.pairwise_comparisons`` (``model_a, model_b, task, metric,
    diff, diff_ci_low, diff_ci_high, p_value, p_adjusted, correction,
    prob_improvement, verdict``; ``a_n, b_n`` in tooltips); only ``task ==
    "ALL"`` rows are drawn. With ``mirror`` (default) each A-vs-B row also fills
    the B-vs-A cell (``_mirror``), so every model is on both axes. Colour:
    diverging scheme centred on 0; text: ▲ significantly better, ▼ significantly
    worse, · no significant difference (from the row model's side). Pairs that
    were not compared (e.g. with a baseline) are grey; the diagonal shows "—".
    """
    rows, models = _matrix_rows(comparisons, mirror)
    missing = _missing_pairs(rows, models, mirror)
    pal = palette.covering(models) if palette is not None else ModelPalette.from_models(models)
    rows = pal.with_labels(pal.with_labels(rows, "model_a"), "model_b")
    missing = pal.with_labels(pal.with_labels(missing, "model_a"), "model_b")
    metrics = sorted(set(rows["metric"].drop_nulls().to_list()))
    metric = metrics[0] if len(metrics) == 1 else "value"
    fmt, label = _diff_format(metric)
    finite = rows.filter("has_diff")
    top = max(abs(v) for v in finite["diff"].to_list()) if finite.height else 1.0
    top = top if top > 0 else 1.0
    a_axis = pal.domain_for(set(rows["model_a"].to_list()) | set(missing["model_a"].to_list()))
    b_axis = pal.domain_for(set(rows["model_b"].to_list()) | set(missing["model_b"].to_list()))
    x = alt.X(
        "model_b_label:N",
        title="Model B (column)",
        sort=[pal.label(m) for m in b_axis],
        # many columns: upright labels, which do not reach past the last column the way slanted
        # ones do (the app fits the matrix to the window's column, labels included)
        axis=alt.Axis(
            labelAngle=-40 if len(b_axis) <= 8 else -90,
            labelLimit=AXIS_LABEL_PX,
            orient="top",
            labelOverlap=False,
        ),
    )
    y = alt.Y(
        "model_a_label:N",
        title="Model A (row)",
        sort=[pal.label(m) for m in a_axis],
        axis=alt.Axis(labelLimit=AXIS_LABEL_PX, labelOverlap=False),
    )
    size = _matrix_cell(max(len(a_axis), len(b_axis)))
    tooltip = [
        alt.Tooltip("model_a:N", title="A (row)"),
        alt.Tooltip("model_b:N", title="B (column)"),
        alt.Tooltip("verdict:N", title="Verdict (A vs B)"),
        alt.Tooltip("diff:Q", title=label, format=fmt),
        alt.Tooltip("diff_ci_low:Q", title="95% CI low", format=fmt),
        alt.Tooltip("diff_ci_high:Q", title="95% CI high", format=fmt),
        alt.Tooltip("p_value:Q", title="p-value", format=".4g"),
        alt.Tooltip("p_adjusted:Q", title="p adjusted", format=".4g"),
        alt.Tooltip("correction:N", title="Correction"),
        alt.Tooltip("prob_improvement:Q", title="P(A > B)", format=".3f"),
        alt.Tooltip("a_n:Q", title="n (A)"),
        alt.Tooltip("b_n:Q", title="n (B)"),
        alt.Tooltip("direction:N", title="Row"),
    ]
    data = chart_values(rows.drop("has_diff"))
    cells = (
        alt.Chart(data)
        .transform_filter("isValid(datum.diff)")
        .mark_rect(stroke="white")
        .encode(
            x=x,
            y=y,
            tooltip=tooltip,
            color=alt.Color(
                "diff:Q",
                title="Difference A − B",
                scale=alt.Scale(scheme=DIFF_SCHEME, domain=[-top, top], domainMid=0),
                # above the matrix: beside it, it would leave 30 columns too narrow at 1024 px
                legend=alt.Legend(format=fmt.lstrip("+"), orient="top", direction="horizontal"),
            ),
        )
    )
    no_diff = (
        alt.Chart(data)
        .transform_filter("!isValid(datum.diff)")
        .mark_rect(color=NO_DIFF_GREY, stroke="white")
        .encode(x=x, y=y, tooltip=tooltip)
    )
    text = (
        alt.Chart(data)
        .mark_text(fontSize=max(9, min(17, size * 0.6)), fontWeight="bold")
        .encode(
            x=x,
            y=y,
            text="symbol:N",
            tooltip=tooltip,
            color=alt.condition(f"abs(datum.diff) > {0.6 * top!r}", alt.value("white"), alt.value("black")),
        )
    )
    layers = [cells, no_diff, text]
    if missing.height:
        gap = alt.Chart(chart_values(missing))
        gap_tip = [
            alt.Tooltip("model_a:N", title="A (row)"),
            alt.Tooltip("model_b:N", title="B (column)"),
            alt.Tooltip("reason:N", title="Cell"),
        ]
        reasons = [r for r in GAP_GREYS if r in set(missing["reason"].to_list())]
        layers += [
            gap.mark_rect(stroke="white").encode(
                x=x,
                y=y,
                tooltip=gap_tip,
                color=alt.Color(
                    "reason:N",
                    title="No comparison",
                    scale=alt.Scale(domain=reasons, range=[GAP_GREYS[r] for r in reasons]),
                    # the diagonal needs no legend; pairs never compared do
                    legend=alt.Legend() if "not compared" in reasons else None,
                ),
            ),
            gap.mark_text(fontSize=12, color="#888888").encode(x=x, y=y, text="symbol:N", tooltip=gap_tip),
        ]
    correction = ", ".join(sorted(set(rows["correction"].drop_nulls().to_list()))) or "none"
    return (
        alt.layer(*layers)
        .resolve_scale(color="independent")
        .properties(
            width=size * len(b_axis),
            height=size * len(a_axis),
            title=title(
                f"Pairwise comparison across tasks: {metric.replace('_', ' ')}",
                _sim(simulated, comparisons),
                f"row − column; ▲ row better, ▼ worse, · n.s. ({correction}-adjusted p)",
            ),
        )
    )


# ---- tokens per step --------------------------------------------------------------

_KEY = ("source", "version", "instance")


def step_tokens_chart(
    steps: pl.DataFrame, *, palette: ModelPalette | None = None, simulated: bool | None = None
) -> alt.Chart:
    """Prompt and completion tokens per step of one trajectory, stacked bars.

    Input: the steps of one trajectory (``depth`` and ``prompt_tokens`` and/or
    ``completion_tokens``; ``total_tokens, value, model, task`` in tooltips and
    the subtitle). Steps of several trajectories raise ``ChartError`` (their
    bars would silently add up). A step with unknown tokens has no bar.
    """
    kinds = [k for k in TOKEN_COLOURS if f"{k}_tokens" in steps.columns]
    if not kinds:
        require(steps, ["depth", "prompt_tokens", "completion_tokens"], "steps")
    require(steps, ["depth"], "steps")
    key = [c for c in _KEY if c in steps.columns]
    if key and steps.select(key).unique().height > 1:
        raise ChartError(
            f"Tokens per step needs the steps of one trajectory, got {steps.select(key).unique().height}",
            hint="filter on source, version, instance",
        )
    cols = [f"{k}_tokens" for k in kinds]
    wide = steps.select(
        pl.col("depth").cast(pl.Float64).alias("step"),
        *[pl.col(c).cast(pl.Float64) for c in cols],
        *[c for c in ("value",) if c in steps.columns],
    ).with_columns(pl.sum_horizontal(cols).alias("step_total"))
    if wide.select(pl.any_horizontal(pl.col(cols).is_not_null())).to_series().sum() == 0:
        raise ChartError(
            "No step of this trajectory has token counts",
            hint="the source did not record prompt/completion tokens",
        )
    long = (
        pl.concat(
            [
                wide.select(
                    "step",
                    pl.lit(k).alias("kind"),
                    pl.col(f"{k}_tokens").alias("tokens"),
                    *cols,
                    "step_total",
                    *[c for c in ("value",) if c in wide.columns],
                )
                for k in kinds
            ]
        )
        .filter(pl.col("tokens").is_not_null() & pl.col("step").is_not_null())
        .sort("step", "kind")
    )
    tooltip = [alt.Tooltip("step:Q", title="Step"), alt.Tooltip("kind:N", title="Tokens")]
    tooltip += [
        alt.Tooltip(f"{c}:Q", title=f"{c.split('_')[0].capitalize()} tokens", format=",") for c in cols
    ]
    tooltip.append(alt.Tooltip("step_total:Q", title="Step total (tokens)", format=","))
    if "value" in long.columns:
        tooltip.append(alt.Tooltip("value:Q", title="Reward", format=",.3~f"))
    n_steps = long.get_column("step").n_unique()
    about = " · ".join(
        str(steps[c].drop_nulls()[0])
        for c in ("model", "task")
        if c in steps.columns and steps[c].drop_nulls().len()
    )
    total = int(wide.get_column("step_total").sum())
    return (
        alt.Chart(chart_values(long))
        .mark_bar()
        .encode(
            x=alt.X(
                "step:O",
                title="Step (agent step index)",
                axis=alt.Axis(labelAngle=0, labelOverlap=True, format="d"),
            ),
            y=alt.Y("tokens:Q", title="Tokens per step (tokens)", stack="zero"),
            color=alt.Color(
                "kind:N",
                title="Tokens",
                scale=alt.Scale(domain=kinds, range=[TOKEN_COLOURS[k] for k in kinds]),
            ),
            order=alt.Order("kind:N", sort="descending"),
            tooltip=tooltip,
        )
        .properties(
            width=max(200, min(520, 14 * n_steps)),
            height=180,
            title=title(
                "Tokens per step",
                _sim(simulated, steps),
                f"{about + ' · ' if about else ''}{n_steps} steps, {total:,} tokens "
                "in total; bars stacked prompt + completion",
            ),
        )
    )
