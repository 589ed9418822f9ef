"""Analysis over the warehouse: loaders for the statistics layer and the old framework's names.

* ``loaders``: ``load_steps`` / ``load_summaries`` (parameterized DuckDB reads,
  superseded sweep attempts excluded, optional data-version pin);
* ``systems``: what a system is (model, config, era, FLE solver, settings, versions),
  its labels, and why two systems are not comparable;
* ``sides``: what one side of a run-vs-run comparison names (``resolve_side``) and
  how two sides differ; ``changes``: the per-task diff of two sides; ``gate``: the
  regression gate; ``milestones``: items produced per open-play trajectory;
* ``analyzers``: ``DatabaseAnalyzer`` (the old framework's warehouse queries);
* ``performance``: ``PerformanceAnalyzer``, ``PerformanceMetrics`` (the old metric names);
* ``utils``: the old ``analysis_utils`` functions (grouping, pass@k, outliers,
  time windows, pairwise tests, leaderboard), over Polars frames.

Names are imported on first use (PEP 562), so ``fle-core gate`` does not load
scipy.stats through the old framework's modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fle_core._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "DatabaseAnalyzer": "fle_core.analysis.analyzers",
    "PerformanceAnalyzer": "fle_core.analysis.analyzers",
    "PerformanceMetrics": "fle_core.analysis.analyzers",
    "NO_CONFIG": "fle_core.analysis.systems",
    "config_label": "fle_core.analysis.systems",
    "label_systems": "fle_core.analysis.systems",
    "load_steps": "fle_core.analysis.loaders",
    "load_summaries": "fle_core.analysis.loaders",
    "resolve_side": "fle_core.analysis.sides",
    "run_gate": "fle_core.analysis.gate",
    **{
        name: "fle_core.analysis.utils"
        for name in (
            "aggregate_results_by_time",
            "calculate_efficiency_metrics",
            "calculate_pass_at_k",
            "compare_model_performance_statistical",
            "create_leaderboard",
            "extract_task_metadata",
            "find_performance_outliers",
            "get_trajectory_summary",
            "group_results_by_model",
            "group_results_by_task",
        )
    },
}

if TYPE_CHECKING:  # the real names, for type checkers and IDEs (no import cost at run time;
    # `name as name` marks each as a re-export)
    from fle_core.analysis.analyzers import DatabaseAnalyzer as DatabaseAnalyzer
    from fle_core.analysis.analyzers import PerformanceAnalyzer as PerformanceAnalyzer
    from fle_core.analysis.analyzers import PerformanceMetrics as PerformanceMetrics
    from fle_core.analysis.gate import run_gate as run_gate
    from fle_core.analysis.loaders import load_steps as load_steps
    from fle_core.analysis.loaders import load_summaries as load_summaries
    from fle_core.analysis.sides import resolve_side as resolve_side
    from fle_core.analysis.systems import NO_CONFIG as NO_CONFIG
    from fle_core.analysis.systems import config_label as config_label
    from fle_core.analysis.systems import label_systems as label_systems
    from fle_core.analysis.utils import aggregate_results_by_time as aggregate_results_by_time
    from fle_core.analysis.utils import calculate_efficiency_metrics as calculate_efficiency_metrics
    from fle_core.analysis.utils import calculate_pass_at_k as calculate_pass_at_k
    from fle_core.analysis.utils import (
        compare_model_performance_statistical as compare_model_performance_statistical,
    )
    from fle_core.analysis.utils import create_leaderboard as create_leaderboard
    from fle_core.analysis.utils import extract_task_metadata as extract_task_metadata
    from fle_core.analysis.utils import find_performance_outliers as find_performance_outliers
    from fle_core.analysis.utils import get_trajectory_summary as get_trajectory_summary
    from fle_core.analysis.utils import group_results_by_model as group_results_by_model
    from fle_core.analysis.utils import group_results_by_task as group_results_by_task

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
