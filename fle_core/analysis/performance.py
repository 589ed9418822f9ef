"""``PerformanceMetrics`` and ``PerformanceAnalyzer``: the old framework's metric names.

Same names, parameters and meanings as FLE 0.4.3's ``performance_metrics``
module, synchronous, over Polars (or pandas) frames. Where the old code
computed something wrong, the name stays and the number is computed right;
each such method says so (see ``docs/metrics.md`` §5 and PRODUCT.md):

* success is ``best reward >= task quota`` (the frame's ``success`` column),
  not ``reward > 0``; ``success_threshold=`` still sets a threshold (``>=``);
* ``pass_at_1`` is a probability (the unbiased pass@1, averaged over tasks),
  never the maximum reward; pass@k is per task, then averaged, never pooled;
* standard deviations use ddof = 1; undefined values are None, zeros stay 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from fle_core.errors import MetricError
from fle_core.stats import compare as _compare
from fle_core.stats.metrics import (
    finite_or_null,
    iqm,
    newcombe_interval,
    pass_at_k_array,
    pass_hat_k_array,
    wilson_interval,
)


@dataclass
class PerformanceMetrics:
    """The old framework's metrics record (its fields first, in its order), computed right.

    ``pass_at_1`` is a probability (the unbiased pass@1 = mean per-task success
    rate), never a reward. ``std_reward`` uses ddof = 1 (the old one ddof = 0).
    ``confidence_interval_95`` is the Wilson interval of ``success_rate`` (for
    any n; the old one only from n >= 5). ``production_score_*`` summarize the
    open-play production score when the frame has one. Undefined values are
    None; zeros stay zeros.
    """

    num_trajectories: int
    mean_reward: float | None
    std_reward: float | None
    median_reward: float | None
    min_reward: float | None
    max_reward: float | None
    success_count: int
    success_rate: float | None
    pass_at_1: float | None
    pass_at_k: dict[int, float | None] | None = None
    mean_tokens: float | None = None
    mean_steps: float | None = None
    tokens_per_success: float | None = None
    production_score_mean: float | None = None
    production_score_max: float | None = None
    production_score_std: float | None = None
    confidence_interval_95: tuple[float | None, float | None] | None = None
    # ---- beyond the old record
    iqm_reward: float | None = None
    pass_hat_k: dict[int, float | None] = field(default_factory=dict)
    pass_at_k_tasks: dict[int, int] = field(default_factory=dict)
    tasks_lacking_trials: dict[int, list[str]] = field(default_factory=dict)
    mean_duration_s: float | None = None
    error_rate: float | None = None
    scored_trajectories: int = 0
    num_tasks: int = 0
    reward_column: str = "best_reward"
    success_definition: str = "best_reward >= task quota"

    @property
    def total_trajectories(self) -> int:
        return self.num_trajectories

    @property
    def successful_trajectories(self) -> int:
        return self.success_count

    @property
    def confidence_interval(self) -> tuple[float | None, float | None]:
        return self.confidence_interval_95 or (None, None)

    def to_dict(self) -> dict[str, Any]:
        """Every field, zeros and Nones included (the old one dropped zeros), plus the old
        ``ci_95_lower`` / ``ci_95_upper`` keys and the ``total_trajectories``,
        ``successful_trajectories`` and ``confidence_interval`` aliases."""
        d = asdict(self)
        low, high = self.confidence_interval
        d["confidence_interval_95"] = [low, high]
        d.update(ci_95_lower=low, ci_95_upper=high, confidence_interval=[low, high])
        d.update(total_trajectories=self.num_trajectories, successful_trajectories=self.success_count)
        return d


def _num(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def to_polars(df) -> pl.DataFrame:
    """A Polars frame from a Polars or pandas one (clear error otherwise)."""
    if isinstance(df, pl.DataFrame):
        return df
    try:
        return pl.from_pandas(df)
    except Exception as exc:
        raise MetricError(f"expected a Polars or pandas DataFrame, got {type(df).__name__}") from exc


def metrics_frame(metrics_dict: Mapping[str, Any]) -> pl.DataFrame:
    """One row per model of ``to_dict()`` values; pass@k/pass^k as ``pass_at_{k}`` columns."""
    rows = []
    for model, m in metrics_dict.items():
        d = dict(m.to_dict() if hasattr(m, "to_dict") else m)
        row: dict[str, Any] = {"model": model}
        for key, value in d.items():
            if key in ("pass_at_k", "pass_hat_k") and isinstance(value, Mapping):
                row.update({f"{key.replace('_k', '')}_{k}": v for k, v in value.items()})
            elif isinstance(value, (list, tuple, Mapping)):
                continue  # intervals and per-k lists are in their own scalar columns
            else:
                row[key] = value
        rows.append(row)
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    return pl.DataFrame({c: [r.get(c) for r in rows] for c in cols}, strict=False)


class PerformanceAnalyzer:
    """Metrics over a summaries frame, plus comparison helpers wrapping ``stats.compare``."""

    @staticmethod
    def calculate_metrics(
        df,
        reward_column: str = "best_reward",
        success_threshold: float | None = None,
        token_column: str | None = "total_tokens",
        step_column: str | None = "steps",
        k_values: Sequence[int] = (1, 3, 5, 8),
    ) -> PerformanceMetrics:
        """``PerformanceMetrics`` for the trajectories in ``df`` (one row per trajectory).

        Success is the frame's ``success`` column (best reward ≥ task quota)
        unless ``success_threshold`` is given: then ``reward_column >=
        success_threshold``. (The old default was ``reward > 0.0`` on
        ``final_reward``, which in the old summaries was the *maximum* step
        value: ``best_reward`` here.) pass@k is computed per task (per
        (model, task) when a ``model`` column is present) and averaged over
        tasks with at least k scored trajectories. ``step_column`` gives
        ``mean_steps``; ``production_score`` (when present) the
        ``production_score_*`` fields.
        """
        frame = to_polars(df)
        if reward_column not in frame.columns:
            raise MetricError(
                f"no column {reward_column!r} in the frame", hint=f"columns: {', '.join(frame.columns)}"
            )
        reward = finite_or_null(reward_column)
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
        columns = {"tokens": token_column, "steps": step_column}
        return _performance_metrics(work, cells, k_values, columns, reward_column, definition)

    @staticmethod
    def calculate_pass_at_k(successes, k: int) -> float:
        """Unbiased pass@k for one task's trials (``successes``: booleans or 0/1).

        ``1 - C(n-c, k)/C(n, k)`` in the stable product form. NaN when n < k:
        the estimator is undefined with fewer than k trials (the old code
        returned ``any(successes)`` there, and sampled when the binomials
        overflowed; the product form never overflows).
        """
        s = np.asarray(successes, dtype=bool).ravel()
        return float(pass_at_k_array(np.array([s.size]), np.array([int(s.sum())]), int(k))[0])

    @staticmethod
    def binomial_confidence_interval(
        successes: int, trials: int, confidence: float = 0.95
    ) -> tuple[float, float]:
        """Wilson score interval for ``successes / trials`` at ``confidence``.

        As the old one (Wilson), except that no trials gives ``(nan, nan)``
        (undefined), not ``(0.0, 0.0)``.
        """
        if not 0 < confidence < 1:
            raise MetricError(f"confidence must be in (0, 1), got {confidence}")
        if trials <= 0:
            return (math.nan, math.nan)
        z = float(stats.norm.ppf(0.5 + confidence / 2))
        lo, hi = wilson_interval(int(successes), int(trials), z)
        return (float(lo), float(hi))

    @staticmethod
    def compare_models(metrics_dict, primary_metric: str = "success_rate", *args, **kwargs) -> pl.DataFrame:
        """The old table: one row per model of its ``PerformanceMetrics``, best first.

        ``metrics_dict`` maps model → ``PerformanceMetrics`` (or a dict);
        columns are ``model`` and the ``to_dict()`` fields, pass@k as
        ``pass_at_{k}`` columns; sorted by ``primary_metric`` descending,
        undefined values last. Given a summaries frame instead —
        ``compare_models(summaries, model_a, model_b, metric=..., **kw)`` — it
        runs the statistical comparison ``stats.compare.compare_models``.
        """
        if isinstance(metrics_dict, Mapping):
            out = metrics_frame(metrics_dict)
            if primary_metric in out.columns:
                out = out.sort(primary_metric, descending=True, nulls_last=True, maintain_order=True)
            return out
        model_b = args[0] if args else kwargs.pop("model_b")
        return _compare.compare_models(to_polars(metrics_dict), primary_metric, model_b, *args[1:], **kwargs)

    @staticmethod
    def statistical_significance_test(
        metrics1: PerformanceMetrics, metrics2: PerformanceMetrics, metric: str = "success_rate"
    ) -> dict[str, Any]:
        """Two-sided test of model 1 vs model 2 from their records.

        ``success_rate``: Fisher's exact test on the pooled success counts
        (``p_value``; the old code's pooled two-proportion z-test is still
        reported as ``z_score`` / ``z_p_value`` — its normal approximation is
        unreliable at FLE's 8 trials per task), with the Newcombe interval of
        the difference. ``mean_reward``: Welch's t-test from the records'
        means, sds and counts (the old code had no test for it). Other
        metrics raise ``MetricError`` (the old code returned an error dict).
        Counts are pooled over tasks: for per-task, corrected comparisons use
        ``stats.compare.pairwise_comparisons``.
        """
        if metric == "success_rate":
            n1, n2 = (
                metrics1.scored_trajectories or metrics1.num_trajectories,
                (metrics2.scored_trajectories or metrics2.num_trajectories),
            )
            x1, x2 = metrics1.success_count, metrics2.success_count
            if n1 <= 0 or n2 <= 0:
                raise MetricError("both records need scored trajectories")
            p_pool = (x1 + x2) / (n1 + n2)
            se = math.sqrt(p_pool * (1 - p_pool) * (1 / n1 + 1 / n2))
            z = (x1 / n1 - x2 / n2) / se if se > 0 else 0.0
            p = float(stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]]).pvalue)
            lo, hi = newcombe_interval(x1, n1, x2, n2)
            return {
                "test_type": "fisher_exact",
                "p_value": p,
                "significant_at_05": p < 0.05,
                "difference": x1 / n1 - x2 / n2,
                "difference_ci_95": (lo, hi),
                "z_score": z,
                "z_p_value": float(2 * stats.norm.sf(abs(z))) if se > 0 else 1.0,
            }
        if metric == "mean_reward":
            m1, m2 = metrics1, metrics2
            if (
                m1.mean_reward is None
                or m2.mean_reward is None
                or m1.std_reward is None
                or m2.std_reward is None
            ):
                raise MetricError("both records need mean_reward and std_reward (n >= 2)")
            res = stats.ttest_ind_from_stats(
                m1.mean_reward, m1.std_reward, m1.num_trajectories,
                m2.mean_reward, m2.std_reward, m2.num_trajectories, equal_var=False,
            )  # fmt: skip
            p = float(res.pvalue)
            return {
                "test_type": "welch_t",
                "t_statistic": float(res.statistic),
                "p_value": p,
                "significant_at_05": p < 0.05,
                "difference": m1.mean_reward - m2.mean_reward,
            }
        raise MetricError(
            f"no significance test for {metric!r}",
            hint="use 'success_rate' or 'mean_reward', or stats.compare.pairwise_comparisons on summaries",
        )

    # ---- comparison helpers (wrap fle_core.stats.compare) ---------------------
    @staticmethod
    def pairwise_comparisons(
        summaries,
        models: Sequence[str] | None = None,
        metric: str = "success",
        correction: str = "holm",
        **kwargs,
    ) -> pl.DataFrame:
        """All model pairs × tasks with corrected p-values and verdicts."""
        return _compare.pairwise_comparisons(to_polars(summaries), models, metric, correction, **kwargs)

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


def _optional_mean(work: pl.DataFrame, column: str | None, where: pl.Expr | None = None) -> pl.Expr:
    if not column or column not in work.columns:
        return pl.lit(None, pl.Float64)
    col = pl.col(column).cast(pl.Float64)
    return (col.filter(where) if where is not None else col).mean()


def _pass_at(work: pl.DataFrame, cells: list[str], ks: list[int]) -> tuple[dict, dict, dict, dict]:
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
    return pass_at, pass_hat, used, lacking


def _performance_metrics(
    work: pl.DataFrame, cells: list[str], k_values, columns: dict, reward_column: str, definition: str
) -> PerformanceMetrics:
    ks = sorted({int(k) for k in k_values} | {1})
    if any(k < 1 for k in ks):
        raise MetricError(f"k values must be >= 1, got {list(k_values)}")
    pass_at, pass_hat, used, lacking = _pass_at(work, cells, ks)
    prod = (
        finite_or_null("production_score") if "production_score" in work.columns else pl.lit(None, pl.Float64)
    )
    row = work.select(
        pl.len().alias("total"),
        pl.col("_s").count().alias("scored"),
        pl.col("_s").sum().alias("succ"),
        pl.col("_r").mean().alias("mean"),
        pl.col("_r").median().alias("median"),
        pl.col("_r").std(ddof=1).alias("std"),
        pl.col("_r").min().alias("min"),
        pl.col("_r").max().alias("max"),
        _optional_mean(work, columns["tokens"], pl.col("_s")).alias("tps"),
        _optional_mean(work, columns["tokens"]).alias("tok"),
        _optional_mean(work, columns["steps"]).alias("steps"),
        _optional_mean(work, "duration_s").alias("dur"),
        _optional_mean(work, "error_occurred").alias("err"),
        prod.mean().alias("prod_mean"),
        prod.max().alias("prod_max"),
        prod.std(ddof=1).alias("prod_std"),
    ).row(0, named=True)
    scored, succ = int(row["scored"]), int(row["succ"] or 0)
    lo, hi = wilson_interval(succ, scored) if scored else (math.nan, math.nan)
    tasks = work["task"].drop_nulls().n_unique() if "task" in work.columns else 1
    return PerformanceMetrics(
        num_trajectories=int(row["total"]),
        mean_reward=_num(row["mean"]),
        std_reward=_num(row["std"]),
        median_reward=_num(row["median"]),
        min_reward=_num(row["min"]),
        max_reward=_num(row["max"]),
        success_count=succ,
        success_rate=succ / scored if scored else None,
        pass_at_1=pass_at[1],
        pass_at_k={k: pass_at[k] for k in ks},
        mean_tokens=_num(row["tok"]),
        mean_steps=_num(row["steps"]),
        tokens_per_success=_num(row["tps"]),
        production_score_mean=_num(row["prod_mean"]),
        production_score_max=_num(row["prod_max"]),
        production_score_std=_num(row["prod_std"]),
        confidence_interval_95=(_num(lo), _num(hi)),
        iqm_reward=_num(iqm(work["_r"].drop_nulls().to_numpy())),
        pass_hat_k={k: pass_hat[k] for k in ks},
        pass_at_k_tasks=used,
        tasks_lacking_trials=lacking,
        mean_duration_s=_num(row["dur"]),
        error_rate=_num(row["err"]),
        scored_trajectories=scored,
        num_tasks=int(tasks),
        reward_column=reward_column,
        success_definition=definition,
    )
