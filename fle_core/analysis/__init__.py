"""Analysis over the warehouse: loaders for the statistics layer and the old framework's names.

* ``loaders``: ``load_steps`` / ``load_summaries`` (parameterized DuckDB reads,
  superseded sweep attempts excluded, optional data-version pin) and the
  (model, config) system labels;
* ``analyzers``: ``DatabaseAnalyzer`` (the old framework's warehouse queries);
* ``performance``: ``PerformanceAnalyzer``, ``PerformanceMetrics`` (the old metric names);
* ``utils``: the old ``analysis_utils`` functions (grouping, pass@k, outliers,
  time windows, pairwise tests, leaderboard), over Polars frames.
"""

from fle_core.analysis.analyzers import DatabaseAnalyzer, PerformanceAnalyzer, PerformanceMetrics
from fle_core.analysis.loaders import load_steps, load_summaries
from fle_core.analysis.systems import NO_CONFIG, config_label, label_systems
from fle_core.analysis.utils import (
    aggregate_results_by_time,
    calculate_efficiency_metrics,
    calculate_pass_at_k,
    compare_model_performance_statistical,
    create_leaderboard,
    extract_task_metadata,
    find_performance_outliers,
    get_trajectory_summary,
    group_results_by_model,
    group_results_by_task,
)

__all__ = [
    "NO_CONFIG",
    "DatabaseAnalyzer",
    "PerformanceAnalyzer",
    "PerformanceMetrics",
    "aggregate_results_by_time",
    "calculate_efficiency_metrics",
    "calculate_pass_at_k",
    "compare_model_performance_statistical",
    "config_label",
    "create_leaderboard",
    "extract_task_metadata",
    "find_performance_outliers",
    "get_trajectory_summary",
    "group_results_by_model",
    "group_results_by_task",
    "label_systems",
    "load_steps",
    "load_summaries",
]
