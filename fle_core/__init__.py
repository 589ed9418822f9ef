"""FLE evaluation workbench core: sync, metrics, sweeps, tracking, charts.

Public names are imported lazily (PEP 562) so that ``import fle_core`` stays
fast and does not pull in wandb, scipy or altair until they are used. The
names mirror the old FLE analysis framework where one existed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    # run vs run: the regression gate, what changed, the leaderboard export
    "run_gate": "fle_core.analysis.gate",
    "changes": "fle_core.analysis.changes",
    "resolve_side": "fle_core.analysis.sides",
    "regression_tests": "fle_core.stats.gate",
    "task_changes": "fle_core.stats.changes",
    "load_leaderboard": "fle_core.report.leaderboard",
    "ResultsVisualizer": "fle_core.report.visualizer",
    "ModelPalette": "fle_core.charts.base",
    "build_report": "fle_core.report",
    "ReportFrames": "fle_core.report",
    "DataVersion": "fle_core.report",
}

if TYPE_CHECKING:  # the real names, for type checkers and IDEs (no import cost at run time;
    # `name as name` marks each as a re-export)
    from fle_core.analysis import NO_CONFIG as NO_CONFIG
    from fle_core.analysis import DatabaseAnalyzer as DatabaseAnalyzer
    from fle_core.analysis import PerformanceAnalyzer as PerformanceAnalyzer
    from fle_core.analysis import PerformanceMetrics as PerformanceMetrics
    from fle_core.analysis import aggregate_results_by_time as aggregate_results_by_time
    from fle_core.analysis import calculate_efficiency_metrics as calculate_efficiency_metrics
    from fle_core.analysis import calculate_pass_at_k as calculate_pass_at_k
    from fle_core.analysis import (
        compare_model_performance_statistical as compare_model_performance_statistical,
    )
    from fle_core.analysis import config_label as config_label
    from fle_core.analysis import create_leaderboard as create_leaderboard
    from fle_core.analysis import extract_task_metadata as extract_task_metadata
    from fle_core.analysis import find_performance_outliers as find_performance_outliers
    from fle_core.analysis import get_trajectory_summary as get_trajectory_summary
    from fle_core.analysis import group_results_by_model as group_results_by_model
    from fle_core.analysis import group_results_by_task as group_results_by_task
    from fle_core.analysis import label_systems as label_systems
    from fle_core.analysis import load_steps as load_steps
    from fle_core.analysis import load_summaries as load_summaries
    from fle_core.analysis.changes import changes as changes
    from fle_core.analysis.gate import run_gate as run_gate
    from fle_core.analysis.sides import resolve_side as resolve_side
    from fle_core.charts.base import ModelPalette as ModelPalette
    from fle_core.errors import ConfigError as ConfigError
    from fle_core.errors import FleError as FleError
    from fle_core.errors import MetricError as MetricError
    from fle_core.errors import QueueError as QueueError
    from fle_core.errors import SourceError as SourceError
    from fle_core.errors import SourceUnavailable as SourceUnavailable
    from fle_core.errors import UnknownTask as UnknownTask
    from fle_core.errors import WarehouseBusy as WarehouseBusy
    from fle_core.report import DataVersion as DataVersion
    from fle_core.report import ReportFrames as ReportFrames
    from fle_core.report import build_report as build_report
    from fle_core.report.leaderboard import load_leaderboard as load_leaderboard
    from fle_core.report.visualizer import ResultsVisualizer as ResultsVisualizer
    from fle_core.sources.runs import RunsTable as RunsTable
    from fle_core.sources.runs import read_runs as read_runs
    from fle_core.stats.bootstrap import interval_estimates as interval_estimates
    from fle_core.stats.bootstrap import pass_at_k_curve as pass_at_k_curve
    from fle_core.stats.bootstrap import performance_profile as performance_profile
    from fle_core.stats.bootstrap import probability_of_improvement as probability_of_improvement
    from fle_core.stats.bootstrap import stratified_bootstrap as stratified_bootstrap
    from fle_core.stats.changes import task_changes as task_changes
    from fle_core.stats.clustered import suite_intervals as suite_intervals
    from fle_core.stats.compare import compare_models as compare_models
    from fle_core.stats.compare import comparison_markdown as comparison_markdown
    from fle_core.stats.compare import minimum_detectable_difference as minimum_detectable_difference
    from fle_core.stats.compare import pairwise_comparisons as pairwise_comparisons
    from fle_core.stats.compare import power_two_proportions as power_two_proportions
    from fle_core.stats.compare import stratified_t_test as stratified_t_test
    from fle_core.stats.compare import trials_needed as trials_needed
    from fle_core.stats.cost import cost_estimates as cost_estimates
    from fle_core.stats.gate import regression_tests as regression_tests
    from fle_core.stats.leader import leading_system as leading_system
    from fle_core.stats.metrics import group_metrics as group_metrics
    from fle_core.stats.metrics import iqm as iqm
    from fle_core.stats.metrics import model_metrics as model_metrics
    from fle_core.stats.metrics import pass_at_k as pass_at_k
    from fle_core.stats.metrics import pass_hat_k as pass_hat_k
    from fle_core.stats.metrics import summarize_trajectories as summarize_trajectories
    from fle_core.stats.metrics import wilson_interval as wilson_interval
    from fle_core.stats.runs import compare_runs as compare_runs
    from fle_core.stats.runs import runs_markdown as runs_markdown
    from fle_core.stats.variance import variance_components as variance_components
    from fle_core.sweeps.config import SweepConfig as SweepConfig
    from fle_core.sweeps.config import demo_config as demo_config
    from fle_core.sweeps.config import load_config as load_config
    from fle_core.sweeps.config import save_config as save_config
    from fle_core.sweeps.manager import SweepManager as SweepManager
    from fle_core.sweeps.simulate import simulate_trajectory as simulate_trajectory
    from fle_core.sweeps.simulate import success_probability as success_probability
    from fle_core.tasks import Task as Task
    from fle_core.tasks import TaskRegistry as TaskRegistry
    from fle_core.tracking import WandBLogger as WandBLogger
    from fle_core.tracking import WandBSweepLogger as WandBSweepLogger
    from fle_core.tracking import log_job_run as log_job_run
    from fle_core.tracking import log_sweep_summary as log_sweep_summary
    from fle_core.tracking import read_offline_run as read_offline_run
    from fle_core.warehouse.sync import SyncResult as SyncResult
    from fle_core.workspace import SourceSpec as SourceSpec
    from fle_core.workspace import Workspace as Workspace

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
