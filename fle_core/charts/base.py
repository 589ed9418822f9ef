"""Shared plumbing for the chart builders: palette, data conversion, titles.

Nothing here computes a statistic. The builders in ``charts*.py`` take finished
frames from the metrics layer and only reshape them for drawing.

Colour mapping (the same in every chart)
----------------------------------------
``ModelPalette.from_models(models)`` gives model *i* of the list the colour
``OKABE_ITO[i % 8]`` and the shape / dash pattern number ``i // 8``. The list's
order is what keeps colours stable: the app builds it once per warehouse with
``ModelPalette.first_seen(summaries)``, which orders models by their first
trajectory (earliest ``started_at``, then name), so a model added later (a new
sweep) is appended and never shifts the colours of the models before it, and every
chart on every page, whatever its filters, takes colours from that one palette.
Without a palette a chart sorts the names it shows (fine for a one-off chart).
Each chart shows only the models present in its data (``palette.domain_for``).

Okabe–Ito (8 colours) is safe for the common colour-vision deficiencies. Beyond
8 models colours repeat, so point marks also vary their *shape* and line marks
their *dash pattern* by ``i // 8``: 8 colours × 8 shapes/dashes distinguish 64
models; beyond that the (colour, shape) pairs cycle, and the model name stays in
every tooltip and axis label.

Labels: model and task names are shortened by the one rule of ``fle_core.names``
(``short_label`` = ``names.short_model``, head + "…" + tail; ``task_labels``: the
``_throughput`` suffix dropped), the same rule the app's tables, filters and pickers
use, so a name reads the same everywhere; names whose labels would collide keep
their full text, and the full name is in every tooltip.

Sizes: every builder's ``height`` (and a grid's ``width``) is the *plot* size,
computed from its content (``band_height``: a readable height per row of models,
tasks or pairs; ``grid_step``: a column width per model). Titles, axis labels and
legends add to it. Vega's default ``autosize`` (``pad``, used by the report)
keeps that; Streamlit's theme sets ``fit``, which makes ``height`` the *total*
height and squashes the plot, so the app draws charts with ``FIT_X`` (fill the
column's width, keep the plot height) or, for grids and multi-panel charts,
``PAD`` (``pages/_ui/widgets.grid_chart``). Builders set no ``autosize``
themselves, so the report can still concatenate them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import altair as alt
import polars as pl

from fle_core import names
from fle_core.errors import FleError

#: Okabe & Ito (2008) colour-blind-safe palette, ordered so that the first
#: colours are the most distinct from each other and the pale yellow comes late.
OKABE_ITO: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow
)
SHAPES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle-up",
    "diamond",
    "cross",
    "triangle-down",
    "triangle-left",
    "triangle-right",
)
DASHES: tuple[tuple[int, ...], ...] = (
    (1, 0),
    (6, 3),
    (2, 2),
    (8, 3, 2, 3),
    (12, 4),
    (4, 4, 1, 4),
    (1, 3),
    (10, 2, 2, 2, 2, 2),
)
#: Sequential scheme for heatmaps (perceptually uniform and CVD-safe).
HEATMAP_SCHEME: Final = "viridis"
#: none / partial / full classification colours (Okabe–Ito vermillion, orange, green).
OUTCOME_COLOURS = {
    "none": "#D55E00",
    "partial": "#E69F00",
    "full": "#009E73",
    "no quota": "#BBBBBB",
    "all left out": "#E8E8E8",
}
SIMULATED_SUFFIX = " (simulated data)"
MISSING = "(unknown)"


#: The one rule for short names (``fle_core.names``), under the charts' own names.
LABEL_CHARS = names.LABEL_CHARS
short_label = names.short_model
short_labels = names.short_names
task_labels = names.task_labels


class ChartError(FleError):
    """A chart was asked to draw a frame that lacks columns or rows."""


@dataclass(frozen=True)
class ModelPalette:
    """Model → (colour, shape, dash, short label) mapping; see the module docstring."""

    models: tuple[str, ...]

    @classmethod
    def from_models(cls, models: Iterable[Any], *, keep_order: bool = False) -> ModelPalette:
        """A palette over ``models``: sorted names, or their given order with ``keep_order``."""
        names = [MISSING if m is None else str(m) for m in models]
        if keep_order:
            return cls(tuple(dict.fromkeys(names)))
        return cls(tuple(sorted(set(names))))

    @classmethod
    def first_seen(cls, summaries: pl.DataFrame, *, column: str = "model") -> ModelPalette:
        """Models in the order of their first trajectory (``started_at``, then name).

        Appending a model (a later sweep) leaves every earlier model's index, and so
        its colour, unchanged. Without ``started_at`` the names are sorted.
        """
        if summaries.is_empty() or column not in summaries.columns:
            return cls(())
        frame = fill_model(
            summaries.select(column, *(["started_at"] if "started_at" in summaries.columns else [])), column
        )
        if "started_at" not in frame.columns:
            return cls.from_models(frame.get_column(column).to_list())
        first = frame.group_by(column).agg(pl.col("started_at").min().alias("_first"))
        order = first.sort(["_first", column], nulls_last=True).get_column(column).to_list()
        return cls(tuple(order))

    @classmethod
    def from_frames(
        cls,
        *frames: pl.DataFrame | None,
        columns: Sequence[str] = ("model", "model_x", "model_y", "model_a", "model_b"),
    ) -> ModelPalette:
        """The palette over every model named in any of ``frames``."""
        names: set[Any] = set()
        for frame in frames:
            if frame is None:
                continue
            for col in columns:
                if col in frame.columns:
                    names.update(frame.get_column(col).unique().to_list())
        return cls.from_models(names)

    def covering(self, present: Iterable[Any]) -> ModelPalette:
        """This palette, with any model of ``present`` it lacks appended (never reordered)."""
        extra = sorted({MISSING if m is None else str(m) for m in present} - set(self.models))
        return self if not extra else ModelPalette((*self.models, *extra))

    def index(self, model: str) -> int:
        try:
            return self._positions()[model]
        except KeyError:
            raise ChartError(
                f"Model {model!r} is not in the chart palette",
                hint="build the palette from every model you plot",
            ) from None

    def _positions(self) -> dict[str, int]:
        return _positions(self.models)

    def colour(self, model: str) -> str:
        return OKABE_ITO[self.index(model) % len(OKABE_ITO)]

    def shape(self, model: str) -> str:
        return SHAPES[(self.index(model) // len(OKABE_ITO)) % len(SHAPES)]

    def dash(self, model: str) -> list[int]:
        return list(DASHES[(self.index(model) // len(OKABE_ITO)) % len(DASHES)])

    def label(self, model: str) -> str:
        """The model's short label (the same on every chart drawn with this palette)."""
        return _labels(self.models).get(model, model)

    def labels(self) -> dict[str, str]:
        return dict(_labels(self.models))

    def with_labels(
        self, frame: pl.DataFrame, column: str = "model", alias: str | None = None
    ) -> pl.DataFrame:
        """``frame`` plus ``<column>_label``: each model's short label."""
        names = _labels(self.models)
        return frame.with_columns(
            pl.col(column)
            .cast(pl.String)
            .replace_strict(names, default=pl.col(column).cast(pl.String), return_dtype=pl.String)
            .alias(alias or f"{column}_label")
        )

    def domain_for(self, present: Iterable[Any]) -> list[str]:
        """The models in ``present``, in palette order."""
        wanted = {MISSING if m is None else str(m) for m in present}
        return [m for m in self.models if m in wanted]

    def _encoding(
        self,
        channel: type,
        mark,
        present: Iterable[Any],
        field: str,
        title: str,
        legend: bool,
        columns: int | None = None,
    ):
        domain = self.domain_for(present)
        labelled = field.endswith("_label")
        return channel(
            f"{field}:N",
            title=title,
            scale=alt.Scale(
                domain=[self.label(m) for m in domain] if labelled else domain,
                range=[mark(m) for m in domain],
            ),
            legend=_legend(len(domain), columns) if legend else None,
        )

    def color(
        self,
        present: Iterable[Any],
        field: str = "model_label",
        title: str = "Model",
        legend: bool = True,
        columns: int | None = None,
    ) -> alt.Color:
        return self._encoding(alt.Color, self.colour, present, field, title, legend, columns)

    def shape_encoding(
        self,
        present: Iterable[Any],
        field: str = "model_label",
        title: str = "Model",
        legend: bool = True,
        columns: int | None = None,
    ) -> alt.Shape:
        return self._encoding(alt.Shape, self.shape, present, field, title, legend, columns)

    def dash_encoding(
        self,
        present: Iterable[Any],
        field: str = "model_label",
        title: str = "Model",
        legend: bool = True,
        columns: int | None = None,
    ) -> alt.StrokeDash:
        return self._encoding(alt.StrokeDash, self.dash, present, field, title, legend, columns)


@functools.lru_cache(maxsize=64)
def _positions(models: tuple[str, ...]) -> dict[str, int]:
    return {m: i for i, m in enumerate(models)}


@functools.lru_cache(maxsize=64)
def _labels(models: tuple[str, ...]) -> dict[str, str]:
    return short_labels(models)


def grid_step(n: int, budget: int = 600, roomy: int = 48, tight: int = 20) -> int:
    """Pixels per column of a grid (heatmap), so 1 and 30 columns both fit a 1400 px window."""
    return max(tight, min(roomy, budget // max(n, 1)))


def _legend(n: int, columns: int | None = None) -> alt.Legend:
    # Vega drops legend entries past symbolLimit; show every model. Many models go
    # below the plot in columns, so the legend is never taller than the page.
    # symbolOpacity=1: a translucent CI band layer must not fade the legend symbols.
    # labelLimit: labels are already short (short_labels); Vega must not cut them again.
    if n <= 12:
        return alt.Legend(symbolLimit=n + 1, symbolOpacity=1, labelLimit=LEGEND_LABEL_PX)
    return bottom_legend(n, columns)


def bottom_legend(n: int, columns: int | None = None) -> alt.Legend:
    """A legend below the plot: one column for a few models, two for more (three ran past a
    1024 px window's column). It starts at the plot's left edge, so a chart with wide
    labels on its left must leave room for two columns of ~200 px names."""
    return alt.Legend(
        symbolLimit=n + 1,
        symbolOpacity=1,
        orient="bottom",
        columns=columns or (1 if n <= 12 else 2),
        labelLimit=LEGEND_LABEL_PX,
        direction="vertical",
    )


#: Pixels a short label may take (LABEL_CHARS at 12 px Source Sans, with room to spare).
LEGEND_LABEL_PX = 240

AXIS_LABEL_PX = 260
#: How the app draws a single-view chart: fill the width, ``height`` is the plot's own height.
FIT_X = alt.AutoSizeParams(type="fit-x", contains="padding")
#: Grids (heatmaps, the comparison matrix, the sweep cells): width and height are the
#: plot's own, and labels, titles and legends add to them (draw with width="content").
PAD = alt.AutoSizeParams(type="pad")


# ---- data ------------------------------------------------------------------


def require(frame: pl.DataFrame | None, columns: Iterable[str], what: str) -> pl.DataFrame:
    """Check that ``frame`` has rows and the contract columns a chart needs."""
    if frame is None:
        raise ChartError(f"No {what} frame was given")
    if not isinstance(frame, pl.DataFrame):
        raise ChartError(f"The {what} input must be a Polars DataFrame, not {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ChartError(
            f"The {what} frame lacks column(s) {', '.join(missing)}",
            hint="see the frame contracts in docs/architecture.md",
        )
    if frame.height == 0:
        raise ChartError(f"The {what} frame has no rows to plot")
    return frame


def chart_values(frame: pl.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Polars → inline Vega-Lite data, explicitly (no pandas, no row limit).

    A plain ``{"values": rows}`` dict, not ``alt.Data``/``alt.InlineData``: those
    schema-validate every row when constructed and again in ``to_dict``, which
    took seconds for 5,760 rows (bench/report.py). Altair moves a plain dict's
    rows into the spec's top-level ``datasets`` before validating, so layers that
    share the rows store them once.

    Datetimes become ISO-8601 strings, durations seconds, lists ``;``-joined
    strings, and NaN/±inf become null (JSON has no NaN; Vega treats null as
    missing), so the spec is plain JSON a browser can parse.
    """
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.Datetime or dtype == pl.Date:
            exprs.append(
                col.dt.to_string("%Y-%m-%dT%H:%M:%S%.f").alias(name)
                if dtype == pl.Datetime
                else col.cast(pl.String)
            )
        elif dtype == pl.Duration:
            exprs.append(col.dt.total_microseconds().cast(pl.Float64).truediv(1e6).alias(name))
        elif isinstance(dtype, pl.List):
            exprs.append(col.cast(pl.List(pl.String)).list.join(";").alias(name))
        elif dtype.is_float():
            exprs.append(pl.when(col.is_finite()).then(col).otherwise(None).alias(name))
        else:
            exprs.append(col)
    rows = frame.select(exprs).to_dicts()
    return {"values": rows}


def is_simulated(*frames: pl.DataFrame | None) -> bool:
    """True when any given frame has a ``simulated`` column with a true value."""
    for frame in frames:
        if (
            frame is not None
            and "simulated" in frame.columns
            and frame.get_column("simulated").cast(pl.Boolean).fill_null(False).any()
        ):
            return True
    return False


#: Characters per subtitle line: subtitles wrap rather than being cut at the chart's width.
SUBTITLE_CHARS = 95


def wrap(text: str, width: int = SUBTITLE_CHARS) -> list[str]:
    """``text`` as lines of at most ``width`` characters, broken at ``; `` and spaces."""
    import textwrap

    lines: list[str] = []
    for part in text.split("\n"):
        lines += textwrap.wrap(part, width=width, break_long_words=False) or [""]
    return lines


def title(text: str, simulated: bool, subtitle: str | None = None) -> alt.TitleParams:
    """Chart title; says "(simulated data)" when any plotted row is simulated.

    ``limit=0``: Vega must not cut the title (Streamlit would set the chart's width
    less 40 px); long subtitles wrap onto several lines instead.
    """
    full = text + (SIMULATED_SUFFIX if simulated else "")
    if subtitle:
        lines = wrap(subtitle)
        return alt.TitleParams(
            text=full, subtitle=lines[0] if len(lines) == 1 else lines, anchor="start", limit=0
        )
    return alt.TitleParams(text=full, anchor="start", limit=0)


def fill_model(frame: pl.DataFrame, column: str = "model") -> pl.DataFrame:
    """Null model names become ``(unknown)`` so they plot and match the palette."""
    return frame.with_columns(pl.col(column).cast(pl.String).fill_null(MISSING))


def models_in(frame: pl.DataFrame, *columns: str) -> list[str]:
    names: set[str] = set()
    for col in columns or ("model",):
        names.update(str(m) for m in frame.get_column(col).drop_nulls().to_list())
    return sorted(names)


def name_list(names: Iterable[Any], limit: int = 5) -> str:
    """``a, b, c and 7 more``: keeps subtitles one line when 30 models are named."""
    items = sorted(str(n) for n in names)
    if len(items) <= limit:
        return ", ".join(items)
    return f"{', '.join(items[:limit])} and {len(items) - limit} more"


def band_opacity(n_models: int) -> float:
    """CI bands fade as models are added, so 30 overlapping bands stay readable."""
    return 0.18 if n_models <= 6 else max(0.04, 0.18 * 6 / n_models)


def band_height(n: int, per_row: int = 22, minimum: int = 80) -> int:
    """Plot height of a chart with one row per model/task/pair: ``per_row`` px each, at least
    ``minimum``, so 1 and 30 rows both read well."""
    return max(minimum, per_row * max(n, 1))


# ---- metric names and units --------------------------------------------------

_RATE_METRICS = {"success_rate", "success_rate_pooled", "error_rate"}


def is_rate(metric: str) -> bool:
    """Metrics in [0, 1] that read best as percentages."""
    return (
        metric in _RATE_METRICS
        or metric.startswith("pass_at_")
        or metric.startswith("pass_hat_")
        or metric in {"fraction", "estimate_rate"}
    )


_LABELS = {
    "success_rate": "Success rate (% of trials)",
    "error_rate": "Error rate (% of trials)",
    "reward_mean": "Mean best reward (reward units)",
    "reward_median": "Median best reward (reward units)",
    "reward_iqm": "IQM of best reward (reward units)",
    "reward_max": "Max best reward (reward units)",
    "tokens_mean": "Mean tokens per trajectory (tokens)",
    "tokens_per_success": "Tokens per success (tokens)",
    "mean_steps": "Mean steps per trajectory (steps)",
    "mean_steps_to_success": "Mean steps to first success (steps)",
    "best_reward": "Best reward (reward units)",
    "final_reward": "Final reward (reward units)",
    "total_tokens": "Total tokens per trajectory (tokens)",
    "iqm": "IQM (interquartile mean)",
    "mean": "Mean of task means",
    "median": "Median of task means",
    "optimality_gap": "Optimality gap (lower is better)",
    "success_rate_pooled": "Success rate, pooled over trials (%)",
    "mean_pooled": "Mean over all trials",
    "optimality_gap_pooled": "Optimality gap over all trials (lower is better)",
}


def metric_label(metric: str) -> str:
    """A readable axis title with units for a contract metric name."""
    if metric in _LABELS:
        return _LABELS[metric]
    if metric.startswith("pass_at_"):
        return f"pass@{metric.removeprefix('pass_at_')} (% probability)"
    if metric.startswith("pass_hat_"):
        return f"pass^{metric.removeprefix('pass_hat_')} (% probability)"
    return metric.replace("_", " ")


def number_format(metric: str) -> str:
    return ".1%" if is_rate(metric) else ",.3~f"


# ---- which interval a frame carries ------------------------------------------

_POPULATION_NOTE = {
    "tasks": "cluster-bootstrap CI (tasks, then runs within them, resampled)",
    "suite": "stratified-bootstrap CI (runs resampled within each task)",
}


def bootstrap_note(frame: pl.DataFrame) -> str:
    """How a bootstrap frame's intervals were drawn, from its ``population`` column."""
    if "population" in frame.columns and frame.height:
        pops = frame.get_column("population").drop_nulls().unique().to_list()
        if len(pops) == 1 and pops[0] in _POPULATION_NOTE:
            return _POPULATION_NOTE[pops[0]]
    return "bootstrap CI"


def interval_methods(frame: pl.DataFrame) -> str:
    """The interval method(s) named in model metrics' ``success_ci_method`` (Wilson without it)."""
    if "success_ci_method" not in frame.columns:
        return "Wilson score"
    methods = frame.get_column("success_ci_method").drop_nulls().unique().sort().to_list()
    return " / ".join(methods) if methods else "Wilson score"
