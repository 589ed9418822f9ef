"""Altair chart builders over finished frames from the statistics layer.

Every builder takes Polars frames that follow the contracts in
``docs/architecture.md`` and returns an ``alt.Chart``; none computes a
statistic of record. The modules split by what a chart shows:

* ``base``: palette (``ModelPalette``), Polars→Vega data, titles, ``ChartError``;
* ``performance``: model comparison, pass@k, rewards, efficiency, learning curves, cost;
* ``tasks``: task × model heatmaps, none/partial/full classification, passes per task;
* ``rliable``: interval estimates, performance profiles, probability of improvement;
* ``ops``: the sweep cell grid, the pairwise comparison matrix, tokens per step;
* ``reliability``: the cost–success frontier with intervals, pass@k beside pass^k,
  consistency across epochs, the planner's curves.

``ResultsVisualizer`` (the old framework's plotting names) is in
``fle_core.report.visualizer``: it also writes reports, so it sits above both.
"""

from fle_core.charts.base import ChartError, ModelPalette
from fle_core.charts.ops import comparison_matrix_chart, step_tokens_chart, sweep_cells_chart
from fle_core.charts.performance import (
    cost_chart,
    curve_y_max,
    efficiency_scatter_chart,
    learning_curve_chart,
    learning_curves_chart,
    model_comparison_chart,
    pareto_frontier,
    pareto_mask,
    pass_at_k_chart,
    reward_distribution_chart,
)
from fle_core.charts.reliability import consistency_chart, frontier_chart, pass_k_chart, planner_chart
from fle_core.charts.rliable import (
    MAX_PAIRS as MAX_POI_PAIRS,
)
from fle_core.charts.rliable import (
    interval_estimates_chart,
    performance_profile_chart,
    probability_of_improvement_chart,
)
from fle_core.charts.tasks import (
    classification_heatmap_chart,
    classify_outcomes,
    pass_histogram_chart,
    task_heatmap_chart,
)

__all__ = [
    "MAX_POI_PAIRS",
    "ChartError",
    "ModelPalette",
    "classification_heatmap_chart",
    "classify_outcomes",
    "comparison_matrix_chart",
    "consistency_chart",
    "cost_chart",
    "curve_y_max",
    "efficiency_scatter_chart",
    "frontier_chart",
    "interval_estimates_chart",
    "learning_curve_chart",
    "learning_curves_chart",
    "model_comparison_chart",
    "pareto_frontier",
    "pareto_mask",
    "pass_at_k_chart",
    "pass_histogram_chart",
    "pass_k_chart",
    "performance_profile_chart",
    "planner_chart",
    "probability_of_improvement_chart",
    "reward_distribution_chart",
    "step_tokens_chart",
    "sweep_cells_chart",
    "task_heatmap_chart",
]
