"""The old framework's analyzer names over the loaders and the metrics layer.

``DatabaseAnalyzer`` reads the warehouse (``loaders``); ``PerformanceAnalyzer``
and ``PerformanceMetrics`` compute over frames with ``stats.metrics``. Old
names, same meaning, but synchronous and returning Polars DataFrames::

    analyzer = DatabaseAnalyzer()                   # $FLE_CORE_HOME or ./.fle
    summaries = analyzer.get_trajectory_summaries([123, 124])
    metrics = PerformanceAnalyzer.calculate_metrics(summaries)
    print(metrics.success_rate, metrics.pass_at_1, metrics.pass_at_k[8])
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from fle_core.analysis.loaders import load_summaries
from fle_core.errors import MetricError
from fle_core.stats import compare as _compare
from fle_core.stats.metrics import (
    _finite,
    group_metrics,
    iqm,
    model_metrics,
    pass_at_k_array,
    pass_hat_k_array,
    wilson_interval,
)
from fle_core.tasks import TaskRegistry
from fle_core.workspace import Workspace


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class DatabaseAnalyzer:
    """Queries over the warehouse with the old framework's method names.

    Synchronous; every method returns a Polars DataFrame. Trajectory-level
    methods return the summaries contract (``metrics.SUMMARY_SCHEMA``).
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
        return load_summaries(
            self.ws, registry=self.registry, include_failed_attempts=self.include_failed_attempts, **filters
        )

    def get_recent_results(self, hours: float = 24, *, now: datetime | None = None) -> pl.DataFrame:
        """Summaries of trajectories with a step created in the last ``hours`` (UTC)."""
        if hours <= 0:
            raise MetricError(f"hours must be positive, got {hours}")
        return self._summaries(since=(now or _utcnow()) - timedelta(hours=hours))

    def get_results_by_model_and_task(self, model: str, task_pattern: str = "") -> pl.DataFrame:
        """Summaries for one model on tasks whose key contains ``task_pattern`` (literal)."""
        return self._summaries(models=[model], task_contains=task_pattern)

    def get_trajectory_summaries(self, versions: Sequence[int] | int) -> pl.DataFrame:
        """Summaries of the given versions (one row per (source, version, instance))."""
        return self._summaries(versions=versions)

    def get_trajectory_summaries_by_sweep(self, sweep_id: str) -> pl.DataFrame:
        """Summaries of one sweep's trajectories (succeeded attempts only by default)."""
        return self._summaries(sweep_id=sweep_id)

    def get_model_comparison(
        self,
        models: Sequence[str] | None = None,
        min_trajectories: int = 1,
        k_values: Sequence[int] = (1, 3, 5, 8),
    ) -> pl.DataFrame:
        """``model_metrics`` for the models (all when None) with ≥ min_trajectories."""
        summaries = self._summaries(models=models)
        out = model_metrics(summaries, k_values)
        return out.filter(pl.col("n") >= int(min_trajectories))

    def get_task_breakdown(
        self, model: str | None = None, k_values: Sequence[int] = (1, 3, 5, 8)
    ) -> pl.DataFrame:
        """``group_metrics`` per (model, task), optionally for one model."""
        summaries = self._summaries(models=None if model is None else [model])
        return group_metrics(summaries, ("model", "task"), k_values)


@dataclass
class PerformanceMetrics:
    """The old framework's metrics record, with correct definitions (docs/metrics.md).

    ``pass_at_1`` is a probability (the unbiased pass@1 = mean per-task success
    rate), never a reward. Undefined values are None; zeros stay zeros.
    """

    success_rate: float | None
    mean_reward: float | None
    median_reward: float | None
    std_reward: float | None
    min_reward: float | None
    max_reward: float | None
    iqm_reward: float | None
    pass_at_1: float | None
    pass_at_k: dict[int, float | None]
    pass_hat_k: dict[int, float | None]
    pass_at_k_tasks: dict[int, int]
    tasks_lacking_trials: dict[int, list[str]]
    tokens_per_success: float | None
    mean_tokens: float | None
    mean_steps: float | None
    mean_duration_s: float | None
    error_rate: float | None
    total_trajectories: int
    successful_trajectories: int
    scored_trajectories: int
    num_tasks: int
    confidence_interval: tuple[float | None, float | None]
    reward_column: str = "best_reward"
    success_definition: str = "best_reward >= task quota"

    def to_dict(self) -> dict:
        """All fields, zeros and Nones included (the old version dropped zeros)."""
        d = asdict(self)
        d["confidence_interval"] = list(self.confidence_interval)
        return d


def _num(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _to_polars(df) -> pl.DataFrame:
    if isinstance(df, pl.DataFrame):
        return df
    try:
        return pl.from_pandas(df)
    except Exception as exc:
        raise MetricError(f"expected a Polars or pandas DataFrame, got {type(df).__name__}") from exc


class PerformanceAnalyzer:
    """Metrics over a summaries frame, plus comparison helpers wrapping ``compare``."""

    @staticmethod
    def calculate_metrics(
        df,
        reward_column: str = "best_reward",
        success_threshold: float | None = None,
        token_column: str = "total_tokens",
        k_values: Sequence[int] = (1, 3, 5, 8),
    ) -> PerformanceMetrics:
        """Compute ``PerformanceMetrics`` for the trajectories in ``df``.

        Success is the frame's ``success`` column (best reward ≥ task quota)
        unless ``success_threshold`` is given, in which case it is
        ``reward_column >= success_threshold``. pass@k is computed per task
        (per (model, task) when a ``model`` column is present) and averaged
        over tasks with at least k scored trajectories.
        """
        frame = _to_polars(df)
        if reward_column not in frame.columns:
            raise MetricError(
                f"no column {reward_column!r} in the frame", hint=f"columns: {', '.join(frame.columns)}"
            )
        reward = _finite(reward_column)
        if success_threshold is not None:
            success = pl.when(reward.is_not_null()).then(reward >= float(success_threshold)).otherwise(False)
            definition = f"{reward_column} >= {success_threshold:g}"
        elif "success" in frame.columns:
            success = pl.col("success").cast(pl.Boolean)
            definition = "best_reward >= task quota"
        else:
            raise MetricError(
                "the frame has no success column",
                hint="pass success_threshold=..., or use load_summaries() output",
            )
        cells: list[str] = [c for c in ("model", "task") if c in frame.columns]
        work = frame.with_columns(success.alias("_s"), reward.alias("_r"))
        if not cells:
            work = work.with_columns(pl.lit("all").alias("_cell"))
            cells = ["_cell"]
        return _performance_metrics(work, cells, k_values, token_column, reward_column, definition)

    # ---- comparison helpers (wrap fle_core.compare) -------------------------
    @staticmethod
    def compare_models(
        summaries, model_a: str, model_b: str, metric: str = "success", **kwargs
    ) -> pl.DataFrame:
        """A vs baseline B per task and across tasks (``compare.compare_models``)."""
        return _compare.compare_models(_to_polars(summaries), model_a, model_b, metric, **kwargs)

    @staticmethod
    def pairwise_comparisons(
        summaries,
        models: Sequence[str] | None = None,
        metric: str = "success",
        correction: str = "holm",
        **kwargs,
    ) -> pl.DataFrame:
        """All model pairs × tasks with corrected p-values and verdicts."""
        return _compare.pairwise_comparisons(_to_polars(summaries), models, metric, correction, **kwargs)

    @staticmethod
    def comparison_markdown(comparisons: pl.DataFrame) -> str:
        """The comparison as experiment-log Markdown tables."""
        return _compare.comparison_markdown(comparisons)

    @staticmethod
    def trials_needed(p_a: float, p_b: float, alpha: float = 0.05, power: float = 0.8) -> int:
        return _compare.trials_needed(p_a, p_b, alpha, power)

    @staticmethod
    def minimum_detectable_difference(
        n: int, p_baseline: float, alpha: float = 0.05, power: float = 0.8
    ) -> float:
        return _compare.minimum_detectable_difference(n, p_baseline, alpha, power)


def _performance_metrics(
    work: pl.DataFrame, cells: list[str], k_values, token_column: str, reward_column: str, definition: str
) -> PerformanceMetrics:
    ks = sorted({int(k) for k in k_values} | {1})
    if any(k < 1 for k in ks):
        raise MetricError(f"k values must be >= 1, got {list(k_values)}")
    counts = work.group_by(cells).agg(pl.col("_s").count().alias("n"), pl.col("_s").sum().alias("c"))
    counts = counts.filter(pl.col("n") > 0)
    n = counts["n"].to_numpy().astype(float)
    c = counts["c"].to_numpy().astype(float)
    names = ["/".join(str(v) for v in row) for row in counts.select(cells).iter_rows()]
    pass_at, pass_hat, used, lacking = {}, {}, {}, {}
    for k in ks:
        pk, hk = pass_at_k_array(n, c, k), pass_hat_k_array(n, c, k)
        ok = ~np.isnan(pk)
        pass_at[k] = float(pk[ok].mean()) if ok.any() else None
        pass_hat[k] = float(hk[ok].mean()) if ok.any() else None
        used[k] = int(ok.sum())
        lacking[k] = sorted(nm for nm, good in zip(names, ok, strict=True) if not good)
    stats_row = work.select(
        pl.len().alias("total"),
        pl.col("_s").count().alias("scored"),
        pl.col("_s").sum().alias("succ"),
        pl.col("_r").mean().alias("mean"),
        pl.col("_r").median().alias("median"),
        pl.col("_r").std(ddof=1).alias("std"),
        pl.col("_r").min().alias("min"),
        pl.col("_r").max().alias("max"),
        (
            pl.col(token_column).filter(pl.col("_s")).mean() if token_column in work.columns else pl.lit(None)
        ).alias("tps"),
        (pl.col(token_column).mean() if token_column in work.columns else pl.lit(None)).alias("tok"),
        (pl.col("steps").mean() if "steps" in work.columns else pl.lit(None)).alias("steps"),
        (pl.col("duration_s").mean() if "duration_s" in work.columns else pl.lit(None)).alias("dur"),
        (
            pl.col("error_occurred").cast(pl.Float64).mean()
            if "error_occurred" in work.columns
            else pl.lit(None)
        ).alias("err"),
    ).row(0, named=True)
    scored, succ = int(stats_row["scored"]), int(stats_row["succ"] or 0)
    lo, hi = wilson_interval(succ, scored) if scored else (math.nan, math.nan)
    tasks = work["task"].drop_nulls().n_unique() if "task" in work.columns else 1
    return PerformanceMetrics(
        success_rate=succ / scored if scored else None,
        mean_reward=_num(stats_row["mean"]),
        median_reward=_num(stats_row["median"]),
        std_reward=_num(stats_row["std"]),
        min_reward=_num(stats_row["min"]),
        max_reward=_num(stats_row["max"]),
        iqm_reward=_num(iqm(work["_r"].drop_nulls().to_numpy())),
        pass_at_1=pass_at[1],
        pass_at_k={k: pass_at[k] for k in ks},
        pass_hat_k={k: pass_hat[k] for k in ks},
        pass_at_k_tasks=used,
        tasks_lacking_trials=lacking,
        tokens_per_success=_num(stats_row["tps"]),
        mean_tokens=_num(stats_row["tok"]),
        mean_steps=_num(stats_row["steps"]),
        mean_duration_s=_num(stats_row["dur"]),
        error_rate=_num(stats_row["err"]),
        total_trajectories=int(stats_row["total"]),
        successful_trajectories=succ,
        scored_trajectories=scored,
        num_tasks=int(tasks),
        confidence_interval=(_num(lo), _num(hi)),
        reward_column=reward_column,
        success_definition=definition,
    )
