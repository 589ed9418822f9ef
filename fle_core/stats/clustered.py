"""Suite-level intervals that state their population: tasks as a sample, or this fixed suite.

An FLE suite is clustered: T tasks × k epochs, with success odds that differ
enormously between tasks. A suite-level number (success rate, mean score,
pass@k averaged over tasks) answers one of two questions, and each has its own
interval (docs/metrics.md §6a):

* ``population="tasks"`` (the default): *how would a system do on tasks like
  these?* The tasks are a sample, so the interval is **task-clustered**: the
  cluster-robust standard error of Miller (2024, "Adding Error Bars to Evals")
  with Inspect's finite-cluster correction ``C/(C−1)`` — exactly Inspect's
  ``stderr(cluster=…)`` — and, for a success rate, Inspect's clustered Wilson
  interval ``ci_wilson(cluster=…)`` (Korn–Graubard effective sample size, t with
  C − 1 degrees of freedom). The bootstrap views resample tasks, then runs
  within each drawn task (a two-stage cluster bootstrap).
* ``population="suite"``: *how did it do on exactly this suite?* The tasks are
  fixed strata: the variance is ``Σ_t n_t σ̂²_t / n²`` (σ̂² with ddof 0, the
  stratified bootstrap's own variance), and the bootstrap resamples runs within
  each task only.

Pure: frames and arrays in, frames and numbers out; the bootstrap takes a seed.
Data shape: a summaries frame (``metrics.summarize_trajectories``), grouped by
``model`` (a system label, see ``analysis.label_systems``) and clustered by ``task``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, cast

import numpy as np
import polars as pl
from scipy import stats

from fle_core.errors import MetricError
from fle_core.stats._intervals import wilson_interval
from fle_core.stats._resample import DEFAULT_CONFIDENCE, BootstrapResult, _rng, percentile_interval

Population = Literal["tasks", "suite"]
#: What each population's interval answers (shown in captions and exports).
POPULATIONS: dict[str, str] = {
    "tasks": "tasks like these (task-clustered)",
    "suite": "this fixed suite (stratified by task)",
}
DEFAULT_POPULATION: Population = "tasks"

#: ``suite_intervals`` columns.
INTERVAL_SCHEMA: dict[str, type[pl.DataType] | pl.DataType] = {
    "model": pl.String,
    "metric": pl.String,
    "estimate": pl.Float64,
    "se": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "n": pl.Int64,
    "n_tasks": pl.Int64,
    "population": pl.String,
    "method": pl.String,
}


def check_population(population: str) -> Population:
    """The population name, or a ``MetricError`` naming the choices."""
    if population not in POPULATIONS:
        raise MetricError(
            f"unknown population {population!r}",
            hint="use 'tasks' (tasks as a sample: task-clustered) or 'suite' (this fixed suite: stratified)",
        )
    return cast(Population, population)


# ------------------------------------------------------------------ scalars ---
def _partition(values, clusters) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(values, dtype=np.float64).ravel()
    labels = np.asarray(clusters).ravel()
    if x.size != labels.size:
        raise MetricError(f"values ({x.size}) and clusters ({labels.size}) differ in length")
    if x.size == 0:
        raise MetricError("no values")
    _, inverse = np.unique(labels, return_inverse=True)
    return x, inverse.ravel()


def clustered_variance(values, clusters) -> float:
    """Cluster-robust variance of the mean: ``C/(C−1) · Σ_c (Σ_{i∈c} (x_i − x̄))² / n²``.

    The square of Inspect's ``stderr(cluster=…)`` (Miller 2024 with the finite-
    cluster correction ``C/(C−1)``). NaN with fewer than two clusters (Inspect
    returns 0 there; one task says nothing about tasks like it).
    """
    x, g = _partition(values, clusters)
    c = int(g.max()) + 1
    if c < 2:
        return math.nan
    dev = np.bincount(g, weights=x - x.mean(), minlength=c)
    return float(c / (c - 1) * (dev * dev).sum() / (x.size * x.size))


def stratified_variance(values, clusters) -> float:
    """Variance of the mean with the clusters as fixed strata: ``Σ_t n_t σ̂²_t / n²`` (σ̂² ddof 0)."""
    x, g = _partition(values, clusters)
    n_t = np.bincount(g)
    s_t = np.bincount(g, weights=x)
    ss_t = np.bincount(g, weights=x * x)
    within = np.maximum(ss_t - s_t * s_t / n_t, 0.0)  # n_t σ̂²_t
    return float(within.sum() / (x.size * x.size))


def clustered_se(values, clusters) -> float:
    """Task-clustered standard error of the mean (= Inspect's ``stderr(cluster=…)``)."""
    return math.sqrt(clustered_variance(values, clusters))


def stratified_se(values, clusters) -> float:
    """Standard error of the mean over this fixed suite (tasks as strata)."""
    return math.sqrt(stratified_variance(values, clusters))


def t_critical(n_clusters, confidence: float = DEFAULT_CONFIDENCE):
    """Student-t critical value with ``n_clusters − 1`` degrees of freedom (scalar or array)."""
    df = np.maximum(np.asarray(n_clusters, dtype=np.float64) - 1.0, 1.0)
    return stats.t.ppf(0.5 + confidence / 2.0, df)


# ------------------------------------------------------------ frame-level ---
def suite_moments(summaries: pl.DataFrame, column: str = "success", by: str = "model") -> pl.DataFrame:
    """Per ``by`` group: ``n, n_tasks, estimate`` (the pooled mean of ``column``),
    ``var_tasks`` (task-clustered variance of that mean; null with one task) and
    ``var_suite`` (stratified). Null and non-finite values are left out; success
    is read as 0/1. One pass over (group, task) cells: no Python loop over groups.
    """
    for c in (by, "task", column):
        if c not in summaries.columns:
            raise MetricError(f"summaries frame lacks column {c!r}")
    x = pl.col(column).cast(pl.Float64)
    cells = (
        summaries.select(pl.col(by), pl.col("task"), x.alias("_x"))
        .filter(pl.col("_x").is_finite())
        .group_by(by, "task")
        .agg(
            pl.len().cast(pl.Float64).alias("_n"),
            pl.col("_x").sum().alias("_s"),
            (pl.col("_x") * pl.col("_x")).sum().alias("_ss"),
        )
    )
    per = cells.group_by(by).agg(
        pl.col("_n").sum().alias("_N"),
        pl.col("_s").sum().alias("_S"),
        pl.len().alias("n_tasks"),
    )
    cells = cells.join(per, on=by, nulls_equal=True)
    mean = pl.col("_S") / pl.col("_N")
    cells = cells.with_columns(
        ((pl.col("_s") - pl.col("_n") * mean) ** 2).alias("_dev2"),
        (pl.col("_ss") - pl.col("_s") * pl.col("_s") / pl.col("_n")).clip(lower_bound=0.0).alias("_within"),
    )
    out = cells.group_by(by).agg(
        pl.col("_N").first().cast(pl.Int64).alias("n"),
        pl.col("n_tasks").first().cast(pl.Int64),
        (pl.col("_S").first() / pl.col("_N").first()).alias("estimate"),
        pl.col("_dev2").sum().alias("_dev2"),
        pl.col("_within").sum().alias("_within"),
    )
    n2 = pl.col("n").cast(pl.Float64) ** 2
    k = pl.col("n_tasks").cast(pl.Float64)
    return out.select(
        by,
        "n",
        "n_tasks",
        "estimate",
        pl.when(k >= 2).then(k / (k - 1) * pl.col("_dev2") / n2).alias("var_tasks"),
        (pl.col("_within") / n2).alias("var_suite"),
    ).sort(by, nulls_last=True)


def clustered_wilson(p, n, variance, n_clusters, confidence: float = DEFAULT_CONFIDENCE):
    """Inspect's ``ci_wilson(cluster=…)``, vectorized: the Wilson interval at the
    Korn–Graubard effective size ``p(1−p)/v`` (capped at n; n itself when p is 0 or
    1 or v is 0) with a t critical value on ``n_clusters − 1`` df. Rows with one
    cluster get the ordinary Wilson interval (normal z on n)."""
    p = np.asarray(p, float)
    n = np.asarray(n, float)
    v = np.asarray(variance, float)
    k = np.asarray(n_clusters, float)
    num = p * (1 - p)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (num > 0) & (v > 0) & np.isfinite(v)
        n_eff = np.where(ok, np.minimum(num / np.where(ok, v, 1.0), n), n)
    z = np.where(k >= 2, t_critical(k, confidence), stats.norm.ppf(0.5 + confidence / 2))
    return wilson_interval(np.clip(p, 0, 1) * n_eff, n_eff, z)


def stratified_wilson(p, n, variance, confidence: float = DEFAULT_CONFIDENCE):
    """The Wilson interval at the effective size ``p(1−p)/v`` of the stratified variance
    (at least n, since the strata only remove between-task variance; n itself when p is
    0 or 1 or v is 0, where the plug-in variance would claim certainty)."""
    p = np.asarray(p, float)
    n = np.asarray(n, float)
    v = np.asarray(variance, float)
    num = p * (1 - p)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (num > 0) & (v > 0)
        n_eff = np.where(ok, np.maximum(num / np.where(ok, v, 1.0), n), n)
    z = stats.norm.ppf(0.5 + confidence / 2)
    return wilson_interval(np.clip(p, 0, 1) * n_eff, n_eff, z)


def _methods(population: str, success: bool, n_tasks: np.ndarray) -> list[str]:
    if population == "tasks":
        several = "task-clustered Wilson" if success else "task-clustered t"
        one = "Wilson (one task)" if success else "t (one task)"
        return [several if k >= 2 else one for k in n_tasks]
    return ["stratified Wilson" if success else "stratified normal"] * len(n_tasks)


def suite_intervals(
    summaries: pl.DataFrame,
    column: str = "success",
    population: str = DEFAULT_POPULATION,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
) -> pl.DataFrame:
    """Per model: the pooled mean of ``column`` with its analytic interval for ``population``.

    ``column="success"``: the success rate with the task-clustered Wilson interval
    (``population="tasks"``, = Inspect's ``ci_wilson(cluster="task")``) or the
    stratified Wilson interval (``"suite"``). Any numeric column (e.g.
    ``normalized_reward``): the mean ± t_{tasks−1}·SE (tasks; = Inspect's
    ``ci(cluster="task")``) or ± z·SE (suite). With one task the "tasks" question
    cannot be answered from the data; that row falls back to the within-task
    interval (Wilson / t on n − 1 df) and says so in ``method``.
    Columns: ``model, metric, estimate, se, ci_low, ci_high, n, n_tasks, population, method``.
    """
    population = check_population(population)
    if not 0 < confidence < 1:
        raise MetricError(f"confidence must be in (0, 1), got {confidence}")
    mom = suite_moments(summaries, column)
    if mom.is_empty():
        return pl.DataFrame(schema=INTERVAL_SCHEMA)
    est = mom["estimate"].to_numpy()
    n = mom["n"].to_numpy().astype(float)
    k = mom["n_tasks"].to_numpy().astype(float)
    success = column == "success"
    if population == "tasks":
        var = mom["var_tasks"].fill_null(np.nan).to_numpy()
        one = k < 2
        if success:
            lo, hi = clustered_wilson(est, n, var, k, confidence)
            var = np.where(one, est * (1 - est) / n, var)
        else:
            within = _within_variance(summaries, column, mom)
            var = np.where(one, within, var)
            crit = np.where(one, t_critical(n, confidence), t_critical(k, confidence))
            se = np.sqrt(var)
            lo, hi = est - crit * se, est + crit * se
    else:
        var = mom["var_suite"].to_numpy()
        if success:
            lo, hi = stratified_wilson(est, n, var, confidence)
        else:
            se = np.sqrt(var)
            z = stats.norm.ppf(0.5 + confidence / 2)
            lo, hi = est - z * se, est + z * se
    return pl.DataFrame(
        {
            "model": mom["model"],
            "metric": "success_rate" if success else column,
            "estimate": est,
            "se": np.sqrt(var),
            "ci_low": np.asarray(lo, float),
            "ci_high": np.asarray(hi, float),
            "n": mom["n"],
            "n_tasks": mom["n_tasks"],
            "population": population,
            "method": _methods(population, success, k),
        },
        schema=INTERVAL_SCHEMA,
    ).with_columns(pl.col(pl.Float64).fill_nan(None))


def _within_variance(summaries: pl.DataFrame, column: str, mom: pl.DataFrame) -> np.ndarray:
    """Per model (in ``mom`` order), s²/n with ddof 1: the one-task fallback's variance."""
    var = (
        summaries.select("model", pl.col(column).cast(pl.Float64).alias("_x"))
        .filter(pl.col("_x").is_finite())
        .group_by("model")
        .agg((pl.col("_x").var(ddof=1) / pl.len()).alias("_v"))
    )
    joined = mom.select("model").join(var, on="model", how="left", maintain_order="left", nulls_equal=True)
    return joined["_v"].fill_null(np.nan).to_numpy()


# ----------------------------------------------------- two-stage bootstrap ---
def cluster_count_bootstrap(
    n,
    c,
    stat_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
    reps: int,
    seed,
    confidence: float = DEFAULT_CONFIDENCE,
) -> BootstrapResult:
    """Two-stage cluster bootstrap for statistics of per-task success counts.

    Stage one draws T task slots with replacement (``rng.integers(0, T, (reps, T))``);
    stage two resamples each drawn task's ``n_j`` runs with replacement, whose
    success count is exactly ``Binomial(n_j, c_j/n_j)`` and is drawn as such. The
    replicate statistic is ``stat_fn(n[idx], draws)`` on arrays of shape (reps, T).
    The same as ``bootstrap.stratified_bootstrap(..., resample_tasks=True)`` on the
    0/1 runs in distribution, at O(reps × T) cost.
    """
    if reps < 1:
        raise MetricError(f"reps must be >= 1, got {reps}")
    n = np.asarray(n, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    if n.size == 0 or np.any(n < 1) or np.any(c < 0) or np.any(c > n):
        raise MetricError("cluster_count_bootstrap needs tasks with n >= 1 and 0 <= c <= n")
    estimate = np.asarray(stat_fn(n[None].astype(float), c[None].astype(float)))[0]
    rng = _rng(seed)
    idx = rng.integers(0, n.size, size=(reps, n.size))
    n_draw = n[idx]
    draws = rng.binomial(n_draw, c[idx] / n_draw).astype(float)
    replicates = np.asarray(stat_fn(n_draw.astype(float), draws))
    lo, hi = percentile_interval(replicates, confidence)
    return BootstrapResult(estimate, lo, hi, replicates)


def ragged_cluster_scores(
    tasks: list[np.ndarray], metrics: list[str], reps: int, rng: np.random.Generator, block_elements: int
) -> np.ndarray:
    """Two-stage cluster replicates of the score metrics when tasks differ in size.

    Draws exactly what ``bootstrap.resample_blocks(..., resample_tasks=True)`` draws (same
    RNG use: task slots, then float32 ``u`` blocks), but never sorts: each drawn run is an
    index into the observed runs, so per-slot sums come from a gather with zero padding, and
    the pooled IQM (``trim_mean(·, 0.25)``) from how often each observed value, in sorted
    order, was drawn (cumulative counts against the trimmed range ``[⌊M/4⌋, M − ⌊M/4⌋)``).
    Metrics: ``mean``, ``median``, ``optimality_gap`` (per drawn task, then over slots),
    ``iqm``, ``mean_pooled``, ``optimality_gap_pooled``. Returns ``(reps, len(metrics))``.
    """
    n = np.array([t.size for t in tasks], dtype=np.int64)
    t_count, r_max = n.size, int(n.max())
    values = np.concatenate(tasks)
    total = values.size
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    vals = np.append(values, 0.0)  # the sentinel: a padding slot adds nothing
    gaps = np.append(np.maximum(1.0 - values, 0.0), 0.0)
    order = np.argsort(values, kind="stable")
    rank = np.empty(total + 1, dtype=np.int64)
    rank[order] = np.arange(total)
    rank[total] = total
    sorted_vals = values[order]
    task_idx = rng.integers(0, t_count, size=(reps, t_count))
    n_f = n.astype(np.float32)
    itype = np.int32 if total < 2**31 - 1 else np.int64
    runs: np.ndarray = np.arange(r_max, dtype=itype)
    out = np.empty((reps, len(metrics)))
    block = max(1, block_elements // max(1, t_count * r_max))
    for start in range(0, reps, block):
        tid = task_idx[start : start + block]
        b = tid.shape[0]
        u = rng.random((b, t_count, r_max), dtype=np.float32)
        u *= n_f[tid][..., None]
        idx: np.ndarray = u.astype(itype)
        n_sel = n[tid]
        n_col: np.ndarray = n_sel[..., None].astype(itype)
        np.minimum(idx, n_col - 1, out=idx)
        idx += starts[tid][..., None].astype(itype)
        idx = np.where(runs[None, None, :] < n_col, idx, itype(total))
        drawn = vals[idx]
        slot_means = drawn.sum(axis=2) / n_sel
        slot_gaps = (
            gaps[idx].sum(axis=2) if {"optimality_gap", "optimality_gap_pooled"} & set(metrics) else None
        )
        part = out[start : start + b]
        for i, m in enumerate(metrics):
            if m == "mean":
                part[:, i] = slot_means.mean(axis=1)
            elif m == "median":
                part[:, i] = np.median(slot_means, axis=1)
            elif m == "optimality_gap" and slot_gaps is not None:
                part[:, i] = (slot_gaps / n_sel).mean(axis=1)
            elif m == "mean_pooled":
                part[:, i] = drawn.sum(axis=(1, 2)) / n_sel.sum(axis=1)
            elif m == "optimality_gap_pooled" and slot_gaps is not None:
                part[:, i] = slot_gaps.sum(axis=1) / n_sel.sum(axis=1)
            elif m == "iqm":
                keys = rank[idx].reshape(b, -1) + (np.arange(b, dtype=np.int64) * (total + 1))[:, None]
                counts = np.bincount(keys.ravel(), minlength=b * (total + 1)).reshape(b, total + 1)[:, :total]
                upper = np.cumsum(counts, axis=1)
                size = upper[:, -1:]
                g = size // 4
                kept = np.clip(np.minimum(upper, size - g) - np.maximum(upper - counts, g), 0, None)
                part[:, i] = (kept * sorted_vals).sum(axis=1) / (size[:, 0] - 2 * g[:, 0])
            else:
                raise MetricError(f"unknown score metric {m!r}")
    return out
