"""Analysis over the warehouse: loaders for the statistics layer and the old framework's names.

* ``loaders``: ``load_steps`` / ``load_summaries`` (parameterized DuckDB reads,
  superseded sweep attempts excluded, optional data-version pin) and the
  (model, config) system labels;
* ``analyzers``: ``DatabaseAnalyzer``, ``PerformanceAnalyzer``, ``PerformanceMetrics``.
"""

from fle_core.analysis.analyzers import DatabaseAnalyzer, PerformanceAnalyzer, PerformanceMetrics
from fle_core.analysis.loaders import NO_CONFIG, config_label, label_systems, load_steps, load_summaries

__all__ = [
    "NO_CONFIG",
    "DatabaseAnalyzer",
    "PerformanceAnalyzer",
    "PerformanceMetrics",
    "config_label",
    "label_systems",
    "load_steps",
    "load_summaries",
]
