"""Stratified bootstrap confidence intervals, rliable-style, fully vectorized.

Data shape (as in rliable): **runs × tasks**. Runs are trials (trajectories)
of one model on one task; tasks are the strata. Tasks may have different run
counts, so data can also be given as a list of 1-D arrays, one per task.

``stratified_bootstrap`` resamples runs with replacement *within* each task
(optionally also resamples the tasks), applies a metric function to all
resamples at once and returns the point estimate and percentile CI. No Python
loop runs over resamples: resamples are drawn as one array, in blocks of reps
to bound memory. Same ``seed`` → same result.

Defaults: ``reps = 2000`` (rliable uses 50k; with 2000 the Monte-Carlo error
of a 95% percentile bound is about 0.06 × the statistic's standard error, and
the call stays interactive), ``seed = 0``, ``confidence = 0.95``.

The frame-level functions (``interval_estimates``, ``pass_at_k_curve``,
``performance_profile``, ``probability_of_improvement``) take a summaries
frame (``metrics.summarize_trajectories``) and return the documented frames.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from fle_core.errors import MetricError
from fle_core.stats import ranks
from fle_core.stats._resample import (
    DEFAULT_CONFIDENCE,
    BootstrapResult,
    _rng,
    as_task_arrays,
    pad_tasks,
    percentile_interval,
)
from fle_core.stats.clustered import (
    DEFAULT_POPULATION,
    check_population,
    cluster_count_bootstrap,
    ragged_cluster_scores,
)
from fle_core.stats.metrics import pass_at_k_array, pass_hat_k_array

DEFAULT_REPS = 2000
DEFAULT_SEED = 0
_BLOCK_ELEMENTS = 4_000_000  # values per resample block (~32 MB of float64)

MetricFn = Callable[[np.ndarray], np.ndarray]


def resample_blocks(
    padded: np.ndarray, n: np.ndarray, reps: int, rng: np.random.Generator, resample_tasks: bool = False
):
    """Yield resample blocks of shape ``(b, tasks, max_runs)``, NaN-padded.

    RNG consumption (the seed semantics, reproduced by the brute-force test):
    first ``task_idx = rng.integers(0, T, (reps, T))`` if ``resample_tasks``;
    then ``u = rng.random((reps, T, R), dtype=float32)`` in C order, block by
    block; run r of task slot t in rep b is the observed run
    ``min(floor(u[b,t,r] * n[task]), n[task] - 1)`` for ``r < n[task]``, else NaN.
    """
    t_count, r_max = padded.shape
    task_idx = (
        rng.integers(0, t_count, size=(reps, t_count))
        if resample_tasks
        else np.broadcast_to(np.arange(t_count), (reps, t_count))
    )
    width = r_max + 1  # one NaN sentinel column per task for padding slots
    flat = np.full((t_count, width), np.nan)
    flat[:, :r_max] = padded
    flat = flat.ravel()
    itype = np.int32 if flat.size < 2**31 else np.int64
    n_f = n.astype(np.float32)
    runs = np.arange(r_max)
    ragged = bool((n != r_max).any())
    block = max(1, _BLOCK_ELEMENTS // max(1, t_count * r_max))
    for start in range(0, reps, block):
        tid = task_idx[start : start + block]
        u = rng.random((tid.shape[0], t_count, r_max), dtype=np.float32)
        u *= n_f[tid][..., None]  # in place: u becomes u·n
        idx: np.ndarray = u.astype(itype)
        n_sel: np.ndarray = n[tid][..., None].astype(itype)
        np.minimum(idx, n_sel - 1, out=idx)  # float32 rounding can reach n
        if ragged:
            idx[np.broadcast_to(runs >= n_sel, idx.shape)] = r_max
        idx += (tid * width).astype(itype)[..., None]
        yield flat[idx]


def stratified_bootstrap(
    values_by_task,
    metric_fn: MetricFn,
    reps: int = DEFAULT_REPS,
    seed=DEFAULT_SEED,
    resample_tasks: bool = False,
    confidence: float = DEFAULT_CONFIDENCE,
) -> BootstrapResult:
    """Bootstrap any metric over runs × tasks data, resampling runs within tasks.

    ``metric_fn(x)`` receives ``x`` of shape ``(B, tasks, max_runs)`` where
    missing runs are NaN, and returns shape ``(B,)`` or ``(B, m)``. It is
    called once on the observed data (``B = 1``) for the point estimate and
    once per block of resamples. ``seed`` is anything ``np.random.default_rng``
    accepts. With ``resample_tasks`` the tasks are resampled too (then each
    task slot's runs are resampled from the drawn task).
    """
    if reps < 1:
        raise MetricError(f"reps must be >= 1, got {reps}")
    padded, n = pad_tasks(as_task_arrays(values_by_task))
    estimate = np.asarray(metric_fn(padded[None]))[0]
    rng = _rng(seed)
    parts = [np.asarray(metric_fn(block)) for block in resample_blocks(padded, n, reps, rng, resample_tasks)]
    replicates = np.concatenate(parts, axis=0)
    lo, hi = percentile_interval(replicates, confidence)
    return BootstrapResult(estimate, lo, hi, replicates)


def count_bootstrap(
    n,
    c,
    stat_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
    reps: int = DEFAULT_REPS,
    seed=DEFAULT_SEED,
    confidence: float = DEFAULT_CONFIDENCE,
) -> BootstrapResult:
    """Stratified bootstrap for statistics of per-task success counts (0/1 runs).

    Resampling task j's ``n_j`` runs with replacement gives a success count
    distributed exactly as ``Binomial(n_j, c_j/n_j)``, so that count is drawn
    directly: ``rng.binomial(n, c/n, size=(reps, tasks))``. Same distribution
    as ``stratified_bootstrap`` on the 0/1 runs, at O(reps × tasks) cost.
    ``stat_fn(n, c)`` takes arrays of shape (B, tasks) and returns (B,) or (B, m).
    """
    if reps < 1:
        raise MetricError(f"reps must be >= 1, got {reps}")
    n = np.asarray(n, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    if n.size == 0 or np.any(n < 1) or np.any(c < 0) or np.any(c > n):
        raise MetricError("count_bootstrap needs tasks with n >= 1 and 0 <= c <= n")
    estimate = np.asarray(stat_fn(n[None].astype(float), c[None].astype(float)))[0]
    draws = _rng(seed).binomial(n, c / n, size=(reps, n.size)).astype(float)
    replicates = np.asarray(stat_fn(np.broadcast_to(n.astype(float), draws.shape), draws))
    lo, hi = percentile_interval(replicates, confidence)
    return BootstrapResult(estimate, lo, hi, replicates)


def pooled_rate_stat(n: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Pooled success rate Σc / Σn per row (count_bootstrap statistic)."""
    return c.sum(axis=1) / n.sum(axis=1)


def task_rate_stat(n: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Mean over tasks of the per-task success rate c/n per row (count_bootstrap statistic)."""
    return (c / n).mean(axis=1)


def pass_at_k_stat(k: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Mean over tasks with n ≥ k of pass@k(n, c, k) per row (count_bootstrap statistic)."""
    return _task_average(pass_at_k_array, k)


def pass_hat_k_stat(k: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Mean over tasks with n ≥ k of pass^k(n, c, k) per row (count_bootstrap statistic)."""
    return _task_average(pass_hat_k_array, k)


def _task_average(per_task, k: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def fn(n: np.ndarray, c: np.ndarray) -> np.ndarray:
        p = per_task(n, c, k)
        ok = ~np.isnan(p)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ok, p, 0.0).sum(axis=1) / ok.sum(axis=1)

    return fn


# ------------------------------------------------ metric functions (B,T,R) ---
def mean_metric(x: np.ndarray) -> np.ndarray:
    """Mean over all runs × tasks pooled (equal weight per run)."""
    return np.nanmean(x.reshape(x.shape[0], -1), axis=1)


def task_mean_metric(x: np.ndarray) -> np.ndarray:
    """Mean over tasks of the per-task mean (equal weight per task)."""
    return np.nanmean(np.nanmean(x, axis=2), axis=1)


def iqm_metric(x: np.ndarray) -> np.ndarray:
    """IQM of all runs × tasks pooled (``scipy.stats.trim_mean(·, 0.25)`` per resample)."""
    flat = x.reshape(x.shape[0], -1)
    counts = np.isfinite(flat).sum(axis=1)
    if counts.size and np.all(counts == counts[0]):  # same n in every row: O(n) selection
        n = int(counts[0])
        g = n // 4
        part = np.sort(flat, axis=1) if n - g - 1 <= g else np.partition(flat, [g, n - g - 1], axis=1)
        return part[:, g : n - g].mean(axis=1)
    s = np.sort(flat, axis=1)  # NaN last
    cs = np.concatenate([np.zeros((s.shape[0], 1)), np.cumsum(np.nan_to_num(s), axis=1)], axis=1)
    g = counts // 4
    rows = np.arange(s.shape[0])
    return (cs[rows, counts - g] - cs[rows, g]) / (counts - 2 * g)


def median_task_metric(x: np.ndarray) -> np.ndarray:
    """rliable's median: median over tasks of the per-task mean."""
    return np.median(np.nanmean(x, axis=2), axis=1)


def optimality_gap_metric(x: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """Optimality gap pooled over runs: mean of ``max(0, gamma - score)`` (equal weight per run)."""
    flat = x.reshape(x.shape[0], -1)
    return np.nanmean(np.maximum(gamma - flat, 0.0), axis=1)


def task_optimality_gap_metric(x: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """rliable's optimality gap with equal weight per task: mean over tasks of the
    per-task mean of ``max(0, gamma - score)`` (the same as rliable's when every
    task has the same number of runs)."""
    return np.nanmean(np.nanmean(np.maximum(gamma - x, 0.0), axis=2), axis=1)


#: score metrics of ``interval_estimates`` as (B, tasks, runs) metric functions
SCORE_METRICS: dict[str, MetricFn] = {
    "mean": task_mean_metric,
    "median": median_task_metric,
    "iqm": iqm_metric,
    "optimality_gap": task_optimality_gap_metric,
    "mean_pooled": mean_metric,
    "optimality_gap_pooled": optimality_gap_metric,
}
SUCCESS_METRICS = ("success_rate", "success_rate_pooled")


def pass_at_k_metric(k: int) -> MetricFn:
    """Mean over tasks (with n ≥ k) of per-task pass@k; x holds 0/1 success."""

    def fn(x: np.ndarray) -> np.ndarray:
        n = np.isfinite(x).sum(axis=2)
        c = np.nansum(x, axis=2)
        p = pass_at_k_array(n, c, k)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no task with n >= k: NaN
            return np.nanmean(p, axis=1)

    return fn


def profile_metric(taus: Sequence[float] | np.ndarray) -> MetricFn:
    """rliable score distribution: mean over tasks of the fraction of runs with score > tau."""
    tau_arr = np.asarray(taus, dtype=np.float64)

    def fn(x: np.ndarray) -> np.ndarray:
        n = np.isfinite(x).sum(axis=2)
        out = np.empty((x.shape[0], tau_arr.size))
        for i, tau in enumerate(tau_arr):  # loop over thresholds, not resamples
            out[:, i] = ((x > tau).sum(axis=2) / n).mean(axis=1)
        return out

    return fn


# ------------------------------------------------- frame-level functions ---
def _model_seed(seed, *names: str) -> list[int]:
    """Per-model RNG seed: reproducible and independent of model order."""
    base = [int(s) for s in np.atleast_1d(seed)] if seed is not None else []
    return base + [zlib.crc32(str(n).encode()) for n in names]


def _task_values(summaries: pl.DataFrame, column: str) -> dict[str, dict[str, np.ndarray]]:
    """{model: {task: finite values of column}} (null/non-finite dropped)."""
    for c in ("model", "task", column):
        if c not in summaries.columns:
            raise MetricError(f"summaries frame lacks column {c!r}")
    frame = (
        summaries.select("model", "task", pl.col(column).cast(pl.Float64).alias("_x"))
        .filter(pl.col("_x").is_finite() & pl.col("model").is_not_null())
        .group_by("model", "task")
        .agg(pl.col("_x"))
        .sort("model", "task", nulls_last=True)
    )
    out: dict[str, dict[str, np.ndarray]] = {}
    for model, task, xs in frame.iter_rows():
        out.setdefault(model, {})[task] = np.asarray(xs, dtype=np.float64)
    return out


_INTERVAL_SCHEMA = {
    "model": pl.String,
    "metric": pl.String,
    "estimate": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "n": pl.Int64,
    "n_tasks": pl.Int64,
}


def _resolve_population(population: str, resample_tasks: bool | None) -> str:
    """``resample_tasks`` (the older switch) wins when given: True = tasks, False = suite."""
    if resample_tasks is not None:
        return "tasks" if resample_tasks else "suite"
    return check_population(population)


def interval_estimates(
    summaries: pl.DataFrame,
    metrics: Sequence[str] = ("success_rate", "iqm", "mean", "median", "optimality_gap"),
    reps: int = DEFAULT_REPS,
    seed=DEFAULT_SEED,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    population: str = DEFAULT_POPULATION,
    resample_tasks: bool | None = None,
    score_column: str = "normalized_reward",
    success_column: str = "success",
) -> pl.DataFrame:
    """Per model: point estimate and bootstrap CI of aggregate metrics.

    rliable's aggregates, which weigh every **task** equally (docs/metrics.md §6):
    ``success_rate`` (mean over tasks of the per-task success rate; bootstrapped
    from binomial counts per task), and over ``score_column`` (default
    ``normalized_reward = best_reward / quota``, so tasks with different quotas
    are comparable): ``mean`` (mean of task means), ``median`` (median of task
    means), ``optimality_gap`` (mean over tasks of the mean ``max(0, 1 − score)``,
    γ = 1) and ``iqm`` (IQM of all runs × tasks pooled, as rliable defines it).
    The trajectory-weighted versions are available as ``success_rate_pooled``,
    ``mean_pooled`` and ``optimality_gap_pooled``; they equal the task-weighted
    ones when every task has the same number of trajectories.

    ``population="tasks"`` (default: tasks as a sample) runs the two-stage cluster
    bootstrap (tasks resampled, then runs within each drawn task);
    ``population="suite"`` (this fixed suite) the stratified bootstrap (runs
    within each task). ``resample_tasks=True``/``False`` is the older spelling of
    the same choice. Columns: ``model, metric, estimate, ci_low, ci_high, n,
    n_tasks, population``.
    """
    known = {*SUCCESS_METRICS, *SCORE_METRICS}
    bad = [m for m in metrics if m not in known]
    if bad:
        raise MetricError(f"unknown interval metric(s) {bad}", hint=f"choose from {sorted(known)}")
    pop = _resolve_population(population, resample_tasks)
    clustered = pop == "tasks"
    score_metrics = [m for m in metrics if m in SCORE_METRICS]
    success_metrics = [m for m in metrics if m in SUCCESS_METRICS]
    data = {}
    if success_metrics:
        data["success"] = _task_values(summaries, success_column)
    if score_metrics:
        data["score"] = _task_values(summaries, score_column)
    models = sorted({m for d in data.values() for m in d})

    def score_result(model: str) -> BootstrapResult:
        tasks = list(data["score"][model].values())
        model_seed = _model_seed(seed, model, "score")
        return _pooled_score_bootstrap(tasks, score_metrics, reps, model_seed, confidence, clustered)

    def success_result(model: str) -> BootstrapResult:
        stats = {"success_rate": task_rate_stat, "success_rate_pooled": pooled_rate_stat}
        n, c = _counts(data["success"][model])
        run = cluster_count_bootstrap if clustered else count_bootstrap
        return run(
            n,
            c,
            lambda nn, cc: np.stack([stats[m](nn, cc) for m in success_metrics], 1),
            reps,
            _model_seed(seed, model, "success"),
            confidence,
        )

    rows: list[dict] = []
    for model in models:
        if success_metrics and model in data["success"]:
            res = success_result(model)
            rows += [_row(model, m, res, data["success"][model], i) for i, m in enumerate(success_metrics)]
        if score_metrics and model in data["score"]:
            res = score_result(model)
            rows += [_row(model, m, res, data["score"][model], i) for i, m in enumerate(score_metrics)]
    order = {m: i for i, m in enumerate(metrics)}
    rows.sort(key=lambda r: (r["model"], order[r["metric"]]))
    return pl.DataFrame(rows, schema=_INTERVAL_SCHEMA, orient="row").with_columns(
        pl.lit(pop, pl.String).alias("population")
    )


def _compact_blocks(tasks: Sequence[np.ndarray], reps: int, rng: np.random.Generator):
    """Yield ``(b, N)`` resample blocks holding only the real runs (no NaN padding).

    Consumes the RNG exactly as ``resample_blocks`` without task resampling
    (same ``u`` blocks, same float32 arithmetic), so every replicate draws the
    same runs; it only skips the padding slots, which pooled metrics ignore.
    Pooled statistics then need no NaN handling and no extra copies.
    """
    n = np.array([v.size for v in tasks], dtype=np.int64)
    t_count, r_max = n.size, int(n.max())
    values = np.concatenate(tasks)
    valid = np.arange(r_max)[None, :] < n[:, None]  # (T, R) real-run slots
    n_pos = np.broadcast_to(n.astype(np.float32)[:, None], valid.shape)[valid]
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    itype = np.int32 if values.size < 2**31 else np.int64
    offset = np.broadcast_to(starts[:, None], valid.shape)[valid].astype(itype)
    last = (n_pos - 1).astype(itype)
    block = max(1, _BLOCK_ELEMENTS // max(1, t_count * r_max))
    for start in range(0, reps, block):
        b = min(block, reps - start)
        u = rng.random((b, t_count, r_max), dtype=np.float32)[:, valid]
        u *= n_pos
        idx: np.ndarray = u.astype(itype)
        np.minimum(idx, last, out=idx)  # float32 rounding can reach n
        idx += offset
        yield values[idx]


def _pooled_scores(x: np.ndarray, metrics: Sequence[str], starts: np.ndarray, n: np.ndarray) -> np.ndarray:
    """(b, len(metrics)) score metrics of compact rows (tasks contiguous, sizes ``n``).

    The same statistics as ``SCORE_METRICS`` on the padded block, equal up to
    float summation order: task means by ``np.add.reduceat`` over each task's
    runs, pooled ones over the whole row. ``x`` is then sorted in place for
    the IQM: numpy's vectorized row sort is about twice as fast as a
    two-pivot ``partition`` here, and a sorted slice sums in a fixed order.
    """
    out = np.empty((x.shape[0], len(metrics)))
    width = x.shape[1]
    task_means = np.add.reduceat(x, starts, axis=1) / n if {"mean", "median"} & set(metrics) else x[:, :0]
    for i, m in enumerate(metrics):
        if m == "mean":
            out[:, i] = task_means.mean(axis=1)
        elif m == "median":
            out[:, i] = np.median(task_means, axis=1)
        elif m == "mean_pooled":
            out[:, i] = x.mean(axis=1)
        elif m == "optimality_gap":
            out[:, i] = (np.add.reduceat(np.maximum(1.0 - x, 0.0), starts, axis=1) / n).mean(axis=1)
        elif m == "optimality_gap_pooled":
            out[:, i] = np.maximum(1.0 - x, 0.0).mean(axis=1)
    if "iqm" in metrics:
        g = width // 4
        x.sort(axis=1)
        out[:, list(metrics).index("iqm")] = x[:, g : width - g].mean(axis=1)
    return out


def _balanced_cluster_blocks(tasks: Sequence[np.ndarray], reps: int, rng: np.random.Generator):
    """Two-stage cluster resamples of equal-sized tasks as compact ``(b, T·R)`` blocks.

    Consumes the RNG exactly as ``resample_blocks(..., resample_tasks=True)``
    (task slots first, then the float32 ``u`` blocks), so it draws the same runs;
    with every task of size R no slot is padding, and each block is contiguous.
    """
    values = np.stack(tasks)  # (T, R)
    t_count, r_max = values.shape
    task_idx = rng.integers(0, t_count, size=(reps, t_count))
    flat = values.ravel()
    block = max(1, _BLOCK_ELEMENTS // max(1, t_count * r_max))
    for start in range(0, reps, block):
        tid = task_idx[start : start + block]
        u = rng.random((tid.shape[0], t_count, r_max), dtype=np.float32)
        u *= np.float32(r_max)
        idx: np.ndarray = u.astype(np.int64)
        np.minimum(idx, r_max - 1, out=idx)
        idx += (tid * r_max)[..., None]
        yield flat[idx].reshape(tid.shape[0], t_count * r_max)


def _pooled_score_bootstrap(
    tasks: Sequence[np.ndarray], metrics: Sequence[str], reps: int, seed, confidence: float, clustered=False
) -> BootstrapResult:
    """The bootstrap of the score metrics on compact resamples (faster than padded ones).

    ``clustered``: tasks resampled, then runs (two-stage); equal-sized tasks use
    compact blocks, unequal ones ``clustered.ragged_cluster_scores`` (the same draws as
    the padded generic resampler, without its sorts).
    """
    tasks = as_task_arrays(tasks)
    n = np.array([t.size for t in tasks], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    estimate = _pooled_scores(np.concatenate(tasks)[None], metrics, starts, n)[0]
    if clustered and bool((n != n[0]).any()):
        replicates = ragged_cluster_scores(tasks, list(metrics), reps, _rng(seed), _BLOCK_ELEMENTS)
        lo, hi = percentile_interval(replicates, confidence)
        return BootstrapResult(estimate, lo, hi, replicates)
    blocks = (
        _balanced_cluster_blocks(tasks, reps, _rng(seed))
        if clustered
        else _compact_blocks(tasks, reps, _rng(seed))
    )
    parts = [_pooled_scores(x, metrics, starts, n) for x in blocks]
    replicates = np.concatenate(parts, axis=0)
    lo, hi = percentile_interval(replicates, confidence)
    return BootstrapResult(estimate, lo, hi, replicates)


def _counts(tasks: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-task (n, successes) from 0/1 arrays."""
    n = np.array([v.size for v in tasks.values()], dtype=np.int64)
    c = np.array([round(v.sum()) for v in tasks.values()], dtype=np.int64)
    return n, c


def _row(model, metric, res: BootstrapResult, tasks: Mapping, i: int | None = None) -> dict:
    pick = (lambda a: float(a)) if i is None else (lambda a: float(a[i]))
    return {
        "model": model,
        "metric": metric,
        "estimate": pick(res.estimate),
        "ci_low": pick(res.ci_low),
        "ci_high": pick(res.ci_high),
        "n": int(sum(v.size for v in tasks.values())),
        "n_tasks": len(tasks),
    }


def pass_at_k_curve(
    summaries: pl.DataFrame,
    k_values: Sequence[int] = (1, 3, 5, 8),
    reps: int = DEFAULT_REPS,
    seed=DEFAULT_SEED,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    population: str = DEFAULT_POPULATION,
    success_column: str = "success",
    estimator: str = "pass_at_k",
) -> pl.DataFrame:
    """pass@k (or pass^k) per model, averaged over tasks with n ≥ k, with bootstrap CIs.

    Each replicate re-estimates the per-task value from a resampled success
    count (binomial, as ``count_bootstrap``): with ``population="tasks"`` (default)
    the tasks are resampled first (two-stage cluster bootstrap), with ``"suite"``
    only the trials within each task (the task's n stays fixed).
    ``estimator="pass_hat_k"`` gives pass^k, the chance that k trials all succeed.
    Columns: ``model, k, estimate, ci_low, ci_high, n_tasks`` (tasks with n ≥ k).
    """
    ks = [int(k) for k in k_values]
    if any(k < 1 for k in ks):
        raise MetricError(f"k values must be >= 1, got {ks}")
    if estimator not in ("pass_at_k", "pass_hat_k"):
        raise MetricError(f"unknown estimator {estimator!r}", hint="use 'pass_at_k' or 'pass_hat_k'")
    run = cluster_count_bootstrap if check_population(population) == "tasks" else count_bootstrap
    stat = pass_at_k_stat if estimator == "pass_at_k" else pass_hat_k_stat
    purpose = "pass@k" if estimator == "pass_at_k" else "pass^k"
    rows = []
    for model, tasks in _task_values(summaries, success_column).items():
        n, c = _counts(tasks)
        res = run(
            n,
            c,
            lambda nn, cc: np.stack([stat(k)(nn, cc) for k in ks], 1),
            reps,
            _model_seed(seed, model, purpose),
            confidence,
        )
        for i, k in enumerate(ks):
            n_tasks = int((n >= k).sum())
            nan = n_tasks == 0
            rows.append(
                {
                    "model": model,
                    "k": k,
                    "estimate": None if nan else float(res.estimate[i]),
                    "ci_low": None if nan else float(res.ci_low[i]),
                    "ci_high": None if nan else float(res.ci_high[i]),
                    "n_tasks": n_tasks,
                }
            )
    schema = {
        "model": pl.String,
        "k": pl.Int64,
        "estimate": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "n_tasks": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def performance_profile(
    summaries: pl.DataFrame,
    taus: Sequence[float] | None = None,
    reps: int = DEFAULT_REPS,
    seed=DEFAULT_SEED,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    population: str = DEFAULT_POPULATION,
    score_column: str = "normalized_reward",
) -> pl.DataFrame:
    """Score distribution (rliable performance profile) with bootstrap bands.

    ``fraction`` at ``tau`` = mean over tasks of the fraction of runs whose
    score exceeds tau. Default taus: 0, 0.1, ..., 2.0 of the quota. Bands:
    the two-stage cluster bootstrap (``population="tasks"``, default) or the
    stratified one (``"suite"``). Columns: ``model, tau, fraction, ci_low, ci_high``.
    """
    grid = np.round(np.linspace(0.0, 2.0, 21), 10) if taus is None else np.asarray(taus, float)
    clustered = check_population(population) == "tasks"
    rows = []
    for model, tasks in _task_values(summaries, score_column).items():
        res = stratified_bootstrap(
            list(tasks.values()),
            profile_metric(grid),
            reps,
            _model_seed(seed, model, "profile"),
            clustered,
            confidence,
        )
        for i, tau in enumerate(grid):
            rows.append(
                {
                    "model": model,
                    "tau": float(tau),
                    "fraction": float(res.estimate[i]),
                    "ci_low": float(res.ci_low[i]),
                    "ci_high": float(res.ci_high[i]),
                }
            )
    schema = {
        "model": pl.String,
        "tau": pl.Float64,
        "fraction": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


# ------------------------------------------------ probability of improvement ---
def prob_improvement_point(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) + ½ P(X = Y) over all pairs (the Mann-Whitney U / (nx·ny)), from
    sorted values in O(nx + ny) memory (``stats.ranks``)."""
    return ranks.prob_improvement(x, y)


def _win_matrix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])


def _resample_counts(n: int, reps: int, rng: np.random.Generator) -> np.ndarray:
    """(reps, n) counts of how often each run is drawn in n draws with replacement."""
    idx = rng.integers(0, n, size=(reps, n)) + (np.arange(reps) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=reps * n).reshape(reps, n).astype(np.float64)


#: the win-matrix product costs reps·nx·ny, the cumulative-count path ~reps·(nx+ny)·c;
#: the product is faster while nx·ny <= _MATMUL_WINS·(nx+ny) (tasks up to ~200 runs)
_MATMUL_WINS = 96
_BLAS_ONE_THREAD = 200_000  # OpenBLAS runs a GEMM below 4·65536 multiply-adds on one thread


def _poi_from_counts(x: np.ndarray, y: np.ndarray, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
    """P(X>Y)+½P(X=Y) for each row of resample counts ``wx`` (reps, nx), ``wy`` (reps, ny).

    Equals ``wx · L · wy / (nx·ny)`` with L the win matrix (1, ½ or 0); the
    weights are resample counts (non-negative integers), so the numerator is
    a multiple of ½ that every path below computes exactly: results are
    bit-for-bit identical whichever path runs.
    """
    return _win_total(x, y, wx, wy) / (x.size * y.size)


def _win_total(x: np.ndarray, y: np.ndarray, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
    """Exact ``wx · L · wy`` per row (see ``_poi_from_counts``), by the cheapest path.

    * Many ties (0/1 success): runs with equal values win and tie alike, so
      their counts are pooled per distinct value first (a 2×2 matrix for 0/1).
    * Per-task sizes: the product in float32 at BLAS speed; every partial sum
      is a multiple of ½ below Σwx·Σwy < 2²³, which float32 holds exactly.
    * Larger samples: cumulative counts over sorted y, O(reps·(nx+ny)).
    """
    ux, uy = np.unique(x), np.unique(y)
    if ux.size * uy.size <= 0.5 * x.size * y.size:
        return _win_total(ux, uy, _pool_by_value(x, ux, wx), _pool_by_value(y, uy, wy))
    if x.size * y.size <= 64:  # tiny (pooled 0/1 runs): float64 products, exact, no overhead
        return np.einsum("ri,ri->r", wx @ _win_matrix(x, y), wy)
    if x.size * y.size <= _MATMUL_WINS * (x.size + y.size):
        wx32, wy32 = wx.astype(np.float32), wy.astype(np.float32)
        if 2.0 * float(wx32.sum(axis=1).max()) * float(wy32.sum(axis=1).max()) < 2.0**24:
            wins = _win_matrix(x, y).T.astype(np.float32)  # (ny, nx): x_i beats y_j, ties ½
            per_x = _matmul_one_thread(wy32, wins)  # (reps, nx), exact
            return np.einsum("ij,ij->i", per_x, wx32).astype(np.float64)
    order = np.argsort(y, kind="stable")
    ys = y[order]
    cw = np.zeros((wy.shape[0], y.size + 1))
    np.cumsum(wy[:, order], axis=1, out=cw[:, 1:])
    lo = np.searchsorted(ys, x, side="left")
    hi = np.searchsorted(ys, x, side="right")
    below = cw[:, lo]
    ties = cw[:, hi] - below
    return (wx * (below + 0.5 * ties)).sum(axis=1)


def _matmul_one_thread(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` in row chunks small enough that OpenBLAS stays single-threaded.

    Its worker threads cost far more than they save for these small products
    on a busy 2-core machine (measured: 3x slower than one thread).
    """
    out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    step = max(1, _BLAS_ONE_THREAD // max(1, b.shape[0] * b.shape[1]))
    for r in range(0, a.shape[0], step):
        np.matmul(a[r : r + step], b, out=out[r : r + step])
    return out


def _pool_by_value(x: np.ndarray, ux: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(reps, len(ux)) counts summed over the runs sharing each distinct value ``ux``."""
    if ux.size <= 8:  # e.g. 0/1 success: one product with the value indicator (exact sums)
        return _matmul_one_thread(w, (x[:, None] == ux[None, :]).astype(w.dtype))
    order = np.argsort(x, kind="stable")
    return np.add.reduceat(w[:, order], np.searchsorted(x[order], ux, side="left"), axis=1)


def probability_of_improvement(
    summaries: pl.DataFrame,
    pairs: Sequence[tuple[str, str]] | None = None,
    reps: int = DEFAULT_REPS,
    seed=DEFAULT_SEED,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    reward_column: str = "best_reward",
) -> pl.DataFrame:
    """P(model_x beats model_y) averaged over the tasks both ran, with bootstrap CI.

    Per task: ``P(X>Y) + ½P(X=Y)`` on ``reward_column`` (raw units are fine:
    comparisons stay within a task); the estimate is the mean over common
    tasks. Runs of X and Y are resampled independently within each task; each
    (model, task) draws its resample counts once (seeded by seed, model and
    task) and reuses them for every pair, so P(x,y) = 1 - P(y,x) per replicate.
    ``pairs=None`` means every ordered pair of models.
    Columns: ``model_x, model_y, estimate, ci_low, ci_high, n_tasks``.
    """
    values = _task_values(summaries, reward_column)
    models = sorted(values)
    if pairs is None:
        pairs = [(a, b) for a in models for b in models if a != b]
    known = set(summaries["model"].drop_nulls().unique().to_list())
    for pair in pairs:
        for m in pair:
            if m not in known:
                raise MetricError(f"no trajectories for model {m!r}")
            values.setdefault(m, {})  # known but no finite values: rows with null estimates
    canon = sorted({tuple(sorted(p, key=str)) for p in pairs}, key=str)
    tasks = sorted({t for m in values for t in values[m]}, key=str)
    sums = {p: np.zeros(reps) for p in canon}
    points: dict[tuple, list[float]] = {p: [] for p in canon}
    for task in tasks:  # per task, each model's resample counts are drawn once
        counts: dict[str, np.ndarray] = {}
        for mx, my in canon:
            if task not in values[mx] or task not in values[my]:
                continue
            for m in (mx, my):
                if m not in counts:
                    counts[m] = _resample_counts(
                        values[m][task].size, reps, _rng(_model_seed(seed, m, str(task), "poi"))
                    )
            x, y = values[mx][task], values[my][task]
            points[(mx, my)].append(prob_improvement_point(x, y))
            sums[(mx, my)] += _poi_from_counts(x, y, counts[mx], counts[my])
    for mx, my in canon:  # P(y beats x) = 1 - P(x beats y), replicate by replicate
        points[(my, mx)] = [1.0 - v for v in points[(mx, my)]]
        sums[(my, mx)] = len(points[(mx, my)]) - sums[(mx, my)]
    rows: list[dict[str, Any]] = []
    for pair in pairs:
        k = len(points[pair])
        if k == 0:
            rows.append(
                {
                    "model_x": pair[0],
                    "model_y": pair[1],
                    "estimate": None,
                    "ci_low": None,
                    "ci_high": None,
                    "n_tasks": 0,
                }
            )
            continue
        lo, hi = percentile_interval(sums[pair] / k, confidence)
        rows.append(
            {
                "model_x": pair[0],
                "model_y": pair[1],
                "estimate": float(np.mean(points[pair])),
                "ci_low": float(lo),
                "ci_high": float(hi),
                "n_tasks": k,
            }
        )
    schema = {
        "model_x": pl.String,
        "model_y": pl.String,
        "estimate": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "n_tasks": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")
