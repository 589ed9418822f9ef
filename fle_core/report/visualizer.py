"""``ResultsVisualizer``: the old FLE framework's plotting names over the Altair builders.

The old class drew matplotlib figures; this one returns Altair charts (display
them in a notebook, ``chart.save("x.html")``, or hand them to Streamlit). The
method names and parameters are the old ones (FLE 0.4.3), ``title=`` and
``save_path=`` included (``.html``, ``.json``, ``.svg`` or ``.png``)::

    viz = ResultsVisualizer()
    viz.plot_model_comparison(model_metrics, metric="success_rate", title="Lab play")
    viz.plot_pass_at_k(model_metrics, save_path="pass_at_k.svg")   # frame or {model: PerformanceMetrics}
    viz.plot_task_success_classification_heatmap(summaries)
    viz.create_comprehensive_report(model_metrics=mm, results_df=summaries, output_dir="./analysis_output")

``model_metrics`` may be a model-metrics frame, a ``pass_at_k_curve`` /
interval-estimates frame, or the old ``{model: PerformanceMetrics}`` dict.
``results_df`` is trajectory summaries (or, for the heatmaps, group metrics).
Fixed on the way: success is the summaries' ``success`` (best reward ≥ task
quota) unless ``success_threshold`` is given — the old heatmaps hard-coded
quotas 16 and 400 (the real fluid quota is 250) and the others used
``reward > 0`` — and pass@k is the unbiased per-task estimator.

Colours: pass ``models=`` (every model you will plot) for one fixed mapping
across all calls; otherwise each chart takes its palette from its own frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl

from fle_core import charts as ch
from fle_core.analysis.performance import metrics_frame, to_polars
from fle_core.charts.base import ChartError, ModelPalette, is_simulated
from fle_core.charts.base import title as chart_title
from fle_core.report.build import DataVersion, ReportError, ReportFrames, build_report
from fle_core.stats.metrics import group_metrics as _group_metrics
from fle_core.tasks import parse_version_description

_RENAME = {
    "num_trajectories": "n",
    "success_count": "successes",
    "ci_95_lower": "success_ci_low",
    "ci_95_upper": "success_ci_high",
}


def _model_frame(model_metrics: Any) -> pl.DataFrame:
    """A model-metrics frame from a frame or the old ``{model: PerformanceMetrics}`` dict."""
    if isinstance(model_metrics, Mapping):
        frame = metrics_frame(model_metrics)
        return frame.rename(
            {k: v for k, v in _RENAME.items() if k in frame.columns and v not in frame.columns}
        )
    return to_polars(model_metrics)


def _task_names(frame: pl.DataFrame, task_col: str) -> pl.Series:
    if task_col != "version_description":
        return frame[task_col].cast(pl.String)
    names = []
    for text in frame[task_col].cast(pl.String).to_list():
        parsed = parse_version_description(text)
        names.append(parsed.task if parsed.parsed else text)
    return pl.Series(names, dtype=pl.String)


class ResultsVisualizer:
    """Chart factory with the old method names; see the module docstring.

    ``figsize`` (inches) × ``dpi`` fixes single-panel charts' size in pixels;
    by default charts size themselves from their content. ``dpi`` also sets the
    resolution of PNGs written by ``save_path`` (100 = 1×).
    """

    def __init__(
        self,
        figsize: tuple[float, float] | None = None,
        dpi: int = 100,
        *,
        models: Iterable[str] | None = None,
        simulated: bool | None = None,
    ):
        self.figsize, self.dpi = figsize, dpi
        self.palette = ModelPalette.from_models(models) if models is not None else None
        self.simulated = simulated
        self.enabled = True  # the old flag: plotting is always available

    def _kw(self) -> dict:
        return {"palette": self.palette, "simulated": self.simulated}

    def _finish(self, chart, title: str | None, save_path, *frames: pl.DataFrame):
        """Apply ``title`` (keeping the simulated label), the size, and write ``save_path``."""
        if title:
            sim = self.simulated if self.simulated is not None else is_simulated(*frames)
            chart = chart.properties(title=chart_title(title, sim))
        if self.figsize and isinstance(chart, (alt.Chart, alt.LayerChart)):
            chart = chart.properties(
                width=self.figsize[0] * self.dpi / 2, height=self.figsize[1] * self.dpi / 2
            )
        if save_path:
            path = Path(save_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            extra = {"scale_factor": self.dpi / 100} if path.suffix.lower() == ".png" else {}
            chart.save(str(path), **extra)
        return chart

    def _groups(
        self,
        results_df,
        model_col: str,
        task_col: str,
        reward_col: str,
        success_threshold: float | None,
        k_values,
    ) -> pl.DataFrame:
        """Group metrics by (model, task): as given, or computed from trajectory summaries."""
        frame = to_polars(results_df)
        if {"model", "task", "n", "successes"} <= set(frame.columns):
            return frame
        for col in (model_col, task_col):
            if col not in frame.columns:
                raise ChartError(
                    f"results_df has no column {col!r}", hint=f"columns: {', '.join(frame.columns)}"
                )
        frame = frame.with_columns(
            pl.col(model_col).alias("model"), _task_names(frame, task_col).alias("task")
        )
        if success_threshold is not None:
            frame = frame.with_columns(
                (pl.col(reward_col).cast(pl.Float64) >= success_threshold).alias("success")
            )
        if "success" not in frame.columns:
            raise ChartError(
                "results_df has no success column", hint="pass success_threshold=... or summaries"
            )
        column = reward_col if reward_col in frame.columns else "best_reward"
        return _group_metrics(frame, ("model", "task"), k_values, reward_column=column)

    # ---- the old names ------------------------------------------------------
    def plot_model_comparison(
        self, model_metrics, metric: str = "success_rate", title: str | None = None, save_path=None
    ) -> alt.LayerChart:
        """Bars per model with CI error bars (model metrics, interval estimates or the old dict)."""
        frame = _model_frame(model_metrics)
        return self._finish(ch.model_comparison_chart(frame, metric, **self._kw()), title, save_path, frame)

    def plot_pass_at_k(
        self, model_metrics, k_values: Sequence[int] | None = None, title: str | None = None, save_path=None
    ) -> alt.LayerChart:
        """pass@k against k: a ``pass_at_k_curve`` frame (with bands), model metrics'
        ``pass_at_{k}`` columns or the old dict; ``k_values`` picks the k shown."""
        frame = _model_frame(model_metrics)
        if k_values is not None:
            ks = {int(k) for k in k_values}
            if "k" in frame.columns:
                frame = frame.filter(pl.col("k").is_in(ks))
            else:
                drop = [c for c in frame.columns if c.startswith("pass_at_") and c.split("_")[2].isdigit()]
                frame = frame.drop([c for c in drop if int(c.split("_")[2]) not in ks])
        return self._finish(ch.pass_at_k_chart(frame, **self._kw()), title, save_path, frame)

    def plot_reward_distribution(
        self,
        results_df,
        group_by: str = "model",
        reward_col: str = "both",
        title: str | None = None,
        save_path=None,
    ) -> alt.FacetChart:
        """Reward distributions per ``group_by`` (trajectory summaries); ``reward_col`` is
        ``best_reward``, ``final_reward`` or ``both`` (the old "final_reward" was the max:
        ``best_reward`` here)."""
        frame = to_polars(results_df)
        if group_by != "model":
            frame = frame.with_columns(pl.col(group_by).cast(pl.String).alias("model"))
        chart = ch.reward_distribution_chart(frame, reward_col, **self._kw())
        return self._finish(chart, title, save_path, frame)

    def plot_efficiency_scatter(
        self,
        results_df,
        x_col: str = "total_tokens",
        y_col: str = "best_reward",
        color_by: str = "model",
        title: str | None = None,
        save_path=None,
    ) -> alt.Chart:
        """Total tokens against ``y_col`` per trajectory, coloured by ``color_by``."""
        frame = to_polars(results_df)
        if x_col != "total_tokens":
            raise ChartError(f"the efficiency scatter plots total_tokens on x, not {x_col!r}")
        if color_by != "model":
            frame = frame.with_columns(pl.col(color_by).cast(pl.String).alias("model"))
        return self._finish(ch.efficiency_scatter_chart(frame, y_col, **self._kw()), title, save_path, frame)

    def plot_learning_curves(
        self,
        results_df,
        time_col: str = "created_at",
        metric_col: str = "value",
        group_by: str = "model",
        window: str = "1H",
        title: str | None = None,
        save_path=None,
        *,
        x: str | None = None,
    ):
        """Mean step reward over steps and time (a steps frame), per ``group_by``.

        ``x`` picks one axis (``step`` or ``time``). ``metric_col`` and
        ``time_col`` name the value and timestamp columns; ``window`` is accepted
        for old scripts (the time axis is binned into 30 bins).
        """
        frame = to_polars(results_df)
        renames = {metric_col: "value", time_col: "created_at", group_by: "model"}
        for src, dst in renames.items():
            if src != dst and src in frame.columns:
                frame = frame.with_columns(pl.col(src).alias(dst))
        if x is None:
            chart = ch.learning_curves_chart(frame, **self._kw())
        else:
            chart = ch.learning_curve_chart(frame, x, **self._kw())
        return self._finish(chart, title, save_path, frame)

    def plot_task_difficulty_heatmap(
        self,
        results_df,
        model_col: str = "model",
        task_col: str = "task",
        metric_col: str = "success_rate",
        success_threshold: float | None = None,
        title: str | None = None,
        save_path=None,
    ) -> alt.LayerChart:
        """Task × model heatmap of ``metric_col`` (group metrics, or summaries aggregated here)."""
        gm = self._groups(results_df, model_col, task_col, "best_reward", success_threshold, (1, 3, 5, 8))
        return self._finish(ch.task_heatmap_chart(gm, metric_col, **self._kw()), title, save_path, gm)

    def plot_task_success_classification_heatmap(
        self,
        results_df,
        model_col: str = "model",
        task_col: str = "task",
        metric_col: str = "best_reward",
        title: str | None = None,
        save_path=None,
    ) -> alt.LayerChart:
        """None / partial / full success per model × task (group metrics or summaries)."""
        gm = self._groups(results_df, model_col, task_col, metric_col, None, (1,))
        return self._finish(ch.classification_heatmap_chart(gm, **self._kw()), title, save_path, gm)

    def plot_pass_histogram(
        self,
        results_df,
        model_col: str = "model",
        task_col: str = "task",
        reward_col: str = "best_reward",
        success_threshold: float | None = None,
        max_k: int = 10,
        title: str | None = None,
        save_path=None,
    ) -> alt.Chart:
        """Passes out of trials per task and model (``max_k`` is accepted; all trials are shown)."""
        gm = self._groups(results_df, model_col, task_col, reward_col, success_threshold, (1,))
        return self._finish(ch.pass_histogram_chart(gm, **self._kw()), title, save_path, gm)

    def plot_task_specific_pass_at_k(
        self,
        results_df,
        model_col: str = "model",
        task_col: str = "task",
        reward_col: str = "best_reward",
        success_threshold: float | None = None,
        k_values: Sequence[int] | None = None,
        title: str | None = None,
        save_path=None,
    ):
        """pass@k against k, one panel per task (unbiased per-task pass@k; k > n is left out)."""
        ks = list(k_values or (1, 2, 3, 5, 8))
        gm = self._groups(results_df, model_col, task_col, reward_col, success_threshold, ks)
        pal = self.palette or ModelPalette.from_models(gm["model"].drop_nulls().unique().to_list())
        panels = []
        for task in sorted(gm["task"].drop_nulls().unique().to_list()):
            sub = gm.filter(pl.col("task") == task).drop("task")
            try:
                panels.append(
                    ch.pass_at_k_chart(sub, palette=pal, simulated=self.simulated).properties(title=str(task))
                )
            except ChartError:
                continue  # no model has k trials on this task
        if not panels:
            raise ChartError("No task has enough trials for any pass@k", hint="pass@k needs n ≥ k")
        chart = alt.concat(*panels, columns=3).resolve_scale(color="shared")
        return self._finish(chart, title or "pass@k by task", save_path, gm)

    # ---- charts the old framework did not have ---------------------------------
    def plot_task_outcomes(self, group_metrics: pl.DataFrame) -> alt.LayerChart:
        return ch.classification_heatmap_chart(group_metrics, **self._kw())

    def plot_interval_estimates(self, interval_estimates: pl.DataFrame) -> alt.ConcatChart:
        return ch.interval_estimates_chart(interval_estimates, **self._kw())

    def plot_performance_profile(self, profile: pl.DataFrame) -> alt.LayerChart:
        return ch.performance_profile_chart(profile, **self._kw())

    def plot_probability_of_improvement(self, poi: pl.DataFrame) -> alt.LayerChart:
        return ch.probability_of_improvement_chart(poi, **self._kw())

    def plot_cost(self, model_metrics: pl.DataFrame) -> alt.LayerChart:
        return ch.cost_chart(model_metrics, **self._kw())

    # ---- report ---------------------------------------------------------------
    def create_comprehensive_report(
        self,
        model_metrics=None,
        results_df: pl.DataFrame | None = None,
        output_dir: str | Path = "./analysis_output",
        report_name: str = "evaluation_report",
        *,
        group_metrics: pl.DataFrame | None = None,
        steps_df: pl.DataFrame | None = None,
        interval_estimates: pl.DataFrame | None = None,
        pass_at_k_curve: pl.DataFrame | None = None,
        performance_profile: pl.DataFrame | None = None,
        probability_of_improvement: pl.DataFrame | None = None,
        comparisons: pl.DataFrame | None = None,
        data_version=None,
        image_format: str = "svg",
    ) -> list[Path]:
        """Write the self-contained report (``report.build_report``); return the files written.

        ``results_df`` is the trajectory summaries frame (required: the report is
        about trajectories). ``report_name`` is the report's title. The other
        frames are optional and add charts/tables. ``data_version`` is a
        ``report.DataVersion`` (default: unknown sync id). Returns the paths
        (the old method returned ``{plot: path}``).
        """
        if results_df is None:
            raise ReportError(
                "create_comprehensive_report needs results_df (trajectory summaries)",
                hint="analysis.load_summaries(ws, ...) returns them",
            )
        frames = ReportFrames(
            summaries=to_polars(results_df),
            model_metrics=None if model_metrics is None else _model_frame(model_metrics),
            group_metrics=group_metrics,
            steps=steps_df,
            interval_estimates=interval_estimates,
            pass_at_k_curve=pass_at_k_curve,
            performance_profile=performance_profile,
            probability_of_improvement=probability_of_improvement,
            comparisons=comparisons,
        )
        title = "FLE evaluation report" if report_name == "evaluation_report" else report_name
        files = build_report(
            frames,
            output_dir,
            data_version=data_version or DataVersion(sync_id=None),
            title=title,
            image_format=image_format,
            palette=self.palette,
        )
        return files.all()
