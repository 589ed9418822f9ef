"""FLE evaluation workbench core: sync, metrics, sweeps, tracking, charts.

Public names are imported lazily (PEP 562) so that ``import fle_core`` stays
fast and does not pull in wandb, scipy or altair until they are used. The
names mirror the old FLE analysis framework where one existed.
"""

from __future__ import annotations

from fle_core._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    # workspace, registry, errors
    "Workspace": "fle_core.workspace",
    "SourceSpec": "fle_core.workspace",
    "TaskRegistry": "fle_core.tasks",
    "Task": "fle_core.tasks",
    "FleError": "fle_core.errors",
    "ConfigError": "fle_core.errors",
    "SourceError": "fle_core.errors",
    "SourceUnavailable": "fle_core.errors",
    "WarehouseBusy": "fle_core.errors",
    "UnknownTask": "fle_core.errors",
    "QueueError": "fle_core.errors",
    "MetricError": "fle_core.errors",
    # sync (the function is ``fle_core.warehouse.sync.sync``)
    "SyncResult": "fle_core.warehouse.sync",
    # metrics (pure functions over Polars frames)
    "summarize_trajectories": "fle_core.stats.metrics",
    "group_metrics": "fle_core.stats.metrics",
    "model_metrics": "fle_core.stats.metrics",
    "pass_at_k": "fle_core.stats.metrics",
    "pass_hat_k": "fle_core.stats.metrics",
    "wilson_interval": "fle_core.stats.metrics",
    "iqm": "fle_core.stats.metrics",
    "stratified_bootstrap": "fle_core.stats.bootstrap",
    "interval_estimates": "fle_core.stats.bootstrap",
    "pass_at_k_curve": "fle_core.stats.bootstrap",
    "performance_profile": "fle_core.stats.bootstrap",
    "probability_of_improvement": "fle_core.stats.bootstrap",
    "power_two_proportions": "fle_core.stats.compare",
    "suite_intervals": "fle_core.stats.clustered",
    "variance_components": "fle_core.stats.variance",
    "leading_system": "fle_core.stats.leader",
    "cost_estimates": "fle_core.stats.cost",
    "load_steps": "fle_core.analysis",
    "load_summaries": "fle_core.analysis",
    "label_systems": "fle_core.analysis",
    "config_label": "fle_core.analysis",
    "NO_CONFIG": "fle_core.analysis",
    "compare_models": "fle_core.stats.compare",
    "pairwise_comparisons": "fle_core.stats.compare",
    "comparison_markdown": "fle_core.stats.compare",
    "minimum_detectable_difference": "fle_core.stats.compare",
    "trials_needed": "fle_core.stats.compare",
    # scripting API with the old framework's names
    "DatabaseAnalyzer": "fle_core.analysis",
    "PerformanceAnalyzer": "fle_core.analysis",
    "PerformanceMetrics": "fle_core.analysis",
    "SweepConfig": "fle_core.sweeps.config",
    "SweepManager": "fle_core.sweeps.manager",
    "demo_config": "fle_core.sweeps.config",
    "load_config": "fle_core.sweeps.config",
    "save_config": "fle_core.sweeps.config",
    "simulate_trajectory": "fle_core.sweeps.simulate",
    "success_probability": "fle_core.sweeps.simulate",
    "log_job_run": "fle_core.tracking",
    "log_sweep_summary": "fle_core.tracking",
    "read_offline_run": "fle_core.tracking",
    "WandBLogger": "fle_core.tracking",
    "WandBSweepLogger": "fle_core.tracking",
    # the old analysis_utils functions
    "group_results_by_model": "fle_core.analysis",
    "group_results_by_task": "fle_core.analysis",
    "calculate_pass_at_k": "fle_core.analysis",
    "get_trajectory_summary": "fle_core.analysis",
    "extract_task_metadata": "fle_core.analysis",
    "calculate_efficiency_metrics": "fle_core.analysis",
    "find_performance_outliers": "fle_core.analysis",
    "aggregate_results_by_time": "fle_core.analysis",
    "compare_model_performance_statistical": "fle_core.analysis",
    "create_leaderboard": "fle_core.analysis",
    # runs of any metric: the experiment log
    "read_runs": "fle_core.sources.runs",
    "RunsTable": "fle_core.sources.runs",
    "compare_runs": "fle_core.stats.runs",
    "runs_markdown": "fle_core.stats.runs",
    "stratified_t_test": "fle_core.stats.compare",
    "ResultsVisualizer": "fle_core.report.visualizer",
    "ModelPalette": "fle_core.charts.base",
    "build_report": "fle_core.report",
    "ReportFrames": "fle_core.report",
    "DataVersion": "fle_core.report",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
