"""``DatabaseAnalyzer``: the old framework's warehouse queries (and its metric names, re-exported).

``DatabaseAnalyzer`` reads the warehouse (``loaders``); ``PerformanceAnalyzer``
and ``PerformanceMetrics`` (``performance``) compute over frames with
``stats.metrics``. Old names and parameters, same meaning, but synchronous and
returning Polars DataFrames::

    analyzer = DatabaseAnalyzer()                   # $FLE_CORE_HOME or ./.fle
    summaries = analyzer.get_trajectory_summaries([123, 124])
    metrics = PerformanceAnalyzer.calculate_metrics(summaries)
    print(metrics.success_rate, metrics.pass_at_1, metrics.pass_at_k[8])

The old class held a database client; here the warehouse is read per call (no
connection is held), and SQL is parameterized, so task patterns and model
names are data, never SQL.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from fle_core.analysis.loaders import load_steps, load_summaries, version_metadata
from fle_core.analysis.performance import PerformanceAnalyzer, PerformanceMetrics
from fle_core.errors import MetricError
from fle_core.stats.metrics import group_metrics, model_metrics
from fle_core.tasks import TaskRegistry
from fle_core.workspace import Workspace

__all__ = ["DatabaseAnalyzer", "PerformanceAnalyzer", "PerformanceMetrics"]


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class DatabaseAnalyzer:
    """Queries over the warehouse with the old framework's method names.

    Synchronous; every query returns a Polars DataFrame (``get_version_metadata``
    a dict, as before). Trajectory-level methods return the summaries contract
    (``metrics.SUMMARY_SCHEMA``). The first argument is the workspace whose
    warehouse is read (the old one took FLE's database client).
    """

    def __init__(
        self,
        workspace: Workspace | str | os.PathLike | None = None,
        *,
        registry: TaskRegistry | None = None,
        include_failed_attempts: bool = False,
    ):
        self.ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace, create=False)
        self.registry = registry or self.ws.task_registry()
        self.include_failed_attempts = include_failed_attempts

    def _summaries(self, **filters) -> pl.DataFrame:
        filters = {k: v for k, v in filters.items() if v is not None}
        return load_summaries(
            self.ws, registry=self.registry, include_failed_attempts=self.include_failed_attempts, **filters
        )

    def ensure_connection(self) -> None:
        """No-op kept for old scripts: the warehouse is opened per query (read-only)."""

    def cleanup(self) -> None:
        """No-op kept for old scripts: no connection is held between calls."""

    def get_results_by_version(self, versions: Sequence[int] | int) -> pl.DataFrame:
        """All step rows of the given versions (the steps contract, ``load_steps``),
        ordered by trajectory and depth."""
        return load_steps(self.ws, versions=versions, include_failed_attempts=self.include_failed_attempts)

    def get_results_by_model_and_task(
        self,
        model: str,
        task_pattern: str = "",
        start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> pl.DataFrame:
        """Summaries for one model on tasks whose key contains ``task_pattern`` (literal,
        not SQL), with a step created in ``[start_date, end_date]`` (naive UTC; inclusive).

        One row per trajectory (the old method returned step rows: use
        ``get_results_by_version`` or ``analysis.load_steps`` for those).
        """
        return self._summaries(models=[model], task_contains=task_pattern, since=start_date, until=end_date)

    def get_trajectory_summaries(self, versions: Sequence[int] | int) -> pl.DataFrame:
        """Summaries of the given versions (one row per (source, version, instance))."""
        return self._summaries(versions=versions)

    def get_trajectory_summaries_by_sweep(self, sweep_id: str) -> pl.DataFrame:
        """Summaries of one sweep's trajectories (succeeded attempts only by default)."""
        return self._summaries(sweep_id=sweep_id)

    def get_model_comparison(
        self,
        models: Sequence[str] | None = None,
        task_pattern: str | None = None,
        min_trajectories: int = 5,
        k_values: Sequence[int] = (1, 3, 5, 8),
    ) -> pl.DataFrame:
        """``model_metrics`` for the models (all when None) on tasks whose key contains
        ``task_pattern``, keeping models with ≥ ``min_trajectories`` trajectories.

        Success is best reward ≥ quota (the old query counted ``reward > 0``) and
        pass@k is per task, then averaged.
        """
        summaries = self._summaries(models=models, task_contains=task_pattern)
        out = model_metrics(summaries, k_values)
        return out.filter(pl.col("n") >= int(min_trajectories))

    def get_task_breakdown(
        self,
        model: str | None = None,
        min_date: datetime | None = None,
        k_values: Sequence[int] = (1, 3, 5, 8),
    ) -> pl.DataFrame:
        """``group_metrics`` per (model, task), optionally for one model and for trajectories
        with a step created at or after ``min_date`` (naive UTC)."""
        summaries = self._summaries(models=None if model is None else [model], since=min_date)
        return group_metrics(summaries, ("model", "task"), k_values)

    def get_recent_results(self, hours: float = 24, *, now: datetime | None = None) -> pl.DataFrame:
        """Summaries of trajectories with a step created in the last ``hours`` (UTC).

        One row per trajectory (the old method returned step rows)."""
        if hours <= 0:
            raise MetricError(f"hours must be positive, got {hours}")
        return self._summaries(since=(now or _utcnow()) - timedelta(hours=hours))

    def get_version_metadata(self, versions: Sequence[int] | int) -> dict[int, dict[str, Any]]:
        """``{version: {version_description, model, start_time, end_time, num_instances,
        total_steps, sources}}`` — a dict, as the old method returned (plus ``sources``:
        the same version number can come from more than one source)."""
        frame = version_metadata(
            self.ws, [versions] if isinstance(versions, int) else list(versions),
            include_failed_attempts=self.include_failed_attempts,
        )  # fmt: skip
        return {int(r.pop("version")): r for r in frame.iter_rows(named=True)}
