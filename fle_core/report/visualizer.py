"""``ResultsVisualizer``: the old FLE framework's plotting names over the Altair builders.

The old class drew matplotlib figures; this one returns Altair charts (display
them in a notebook, ``chart.save("x.html")``, or hand them to Streamlit). The
method names and first arguments mirror the old API::

    viz = ResultsVisualizer()
    viz.plot_model_comparison(model_metrics, metric="success_rate")
    viz.plot_pass_at_k(model_metrics)          # or a bootstrap pass@k curve frame
    viz.create_comprehensive_report(model_metrics=mm, results_df=summaries,
                                    output_dir="./analysis_output")

Colours: pass ``models=`` (every model you will plot) for one fixed mapping
across all calls; otherwise each chart takes its palette from its own frame
(still a pure function of that frame's sorted model list).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import altair as alt
import polars as pl

from fle_core import charts as ch
from fle_core.charts.base import ModelPalette
from fle_core.report.build import DataVersion, ReportError, ReportFrames, build_report


class ResultsVisualizer:
    """Chart factory with the old method names; see the module docstring."""

    def __init__(self, models: Iterable[str] | None = None, *, simulated: bool | None = None):
        self.palette = ModelPalette.from_models(models) if models is not None else None
        self.simulated = simulated

    def _kw(self) -> dict:
        return {"palette": self.palette, "simulated": self.simulated}

    # ---- the old names ------------------------------------------------------
    def plot_model_comparison(
        self, model_metrics: pl.DataFrame, metric: str = "success_rate"
    ) -> alt.LayerChart:
        """Bars per model with CI error bars (model metrics or interval estimates)."""
        return ch.model_comparison_chart(model_metrics, metric, **self._kw())

    def plot_pass_at_k(self, model_metrics: pl.DataFrame) -> alt.LayerChart:
        """pass@k against k (model metrics' pass_at_{k}, or a pass@k curve with bands)."""
        return ch.pass_at_k_chart(model_metrics, **self._kw())

    def plot_reward_distribution(self, results_df: pl.DataFrame, reward: str = "both") -> alt.FacetChart:
        """Best/final reward distributions per model (trajectory summaries)."""
        return ch.reward_distribution_chart(results_df, reward, **self._kw())

    def plot_efficiency_scatter(self, results_df: pl.DataFrame, reward: str = "best_reward") -> alt.Chart:
        """Total tokens against reward per trajectory (trajectory summaries)."""
        return ch.efficiency_scatter_chart(results_df, reward, **self._kw())

    def plot_learning_curves(self, steps_df: pl.DataFrame, x: str | None = None):
        """Mean step reward over steps and time (steps frame); ``x`` picks one axis."""
        if x is None:
            return ch.learning_curves_chart(steps_df, **self._kw())
        return ch.learning_curve_chart(steps_df, x, **self._kw())

    def plot_task_difficulty_heatmap(
        self, group_metrics: pl.DataFrame, metric: str = "success_rate"
    ) -> alt.LayerChart:
        """Task × model heatmap of a metric (group metrics by model and task)."""
        return ch.task_heatmap_chart(group_metrics, metric, **self._kw())

    # ---- charts the old framework did not have ---------------------------------
    def plot_task_outcomes(self, group_metrics: pl.DataFrame) -> alt.LayerChart:
        return ch.classification_heatmap_chart(group_metrics, **self._kw())

    def plot_pass_histogram(self, group_metrics: pl.DataFrame) -> alt.Chart:
        return ch.pass_histogram_chart(group_metrics, **self._kw())

    def plot_interval_estimates(self, interval_estimates: pl.DataFrame) -> alt.FacetChart:
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
        model_metrics: pl.DataFrame | None = None,
        results_df: pl.DataFrame | None = None,
        output_dir: str | Path = "./analysis_output",
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
        about trajectories). The other frames are optional and add charts/tables.
        ``data_version`` is a ``report.DataVersion`` (default: unknown sync id).
        """
        if results_df is None:
            raise ReportError(
                "create_comprehensive_report needs results_df (trajectory summaries)",
                hint="analysis.load_summaries(ws, ...) returns them",
            )
        frames = ReportFrames(
            summaries=results_df,
            model_metrics=model_metrics,
            group_metrics=group_metrics,
            steps=steps_df,
            interval_estimates=interval_estimates,
            pass_at_k_curve=pass_at_k_curve,
            performance_profile=performance_profile,
            probability_of_improvement=probability_of_improvement,
            comparisons=comparisons,
        )
        files = build_report(
            frames,
            output_dir,
            data_version=data_version or DataVersion(sync_id=None),
            image_format=image_format,
            palette=self.palette,
        )
        return files.all()
