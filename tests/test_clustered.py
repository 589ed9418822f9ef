"""Intervals that state their population, against independent references.

* inspect_ai itself: ``stderr(cluster=…)``, ``ci_wilson(cluster=…)`` and ``ci(cluster=…)``
  called on ``SampleScore`` lists built from the same data;
* statsmodels: the cluster-robust standard error of an intercept-only OLS fit;
* a two-stage cluster bootstrap written here with plain loops (same RNG rule), and one
  with its own RNG (agreement within Monte-Carlo error);
* exact enumeration of every resample for the stratified variance;
* the held-out acceptance check of issue 19: 24 tasks × 8 trials, per-task odds 3 %–95 %.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from inspect_ai.scorer import SampleScore, Score, ci, ci_wilson, stderr

from fle_core.errors import MetricError
from fle_core.stats import bootstrap as B
from fle_core.stats import clustered as C
from fle_core.stats.metrics import model_metrics, wilson_interval


def _suite(seed: int, tasks: int = 24, epochs=8, lo=0.03, hi=0.95, models=("m",)) -> pl.DataFrame:
    """Per-task success odds spread evenly from ``lo`` to ``hi`` (shuffled per model)."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in models:
        odds = rng.permutation(np.linspace(lo, hi, tasks))
        for t in range(tasks):
            k = epochs if isinstance(epochs, int) else int(rng.integers(epochs[0], epochs[1] + 1))
            for _ in range(k):
                rows.append((m, f"t{t:02d}", bool(rng.random() < odds[t]), float(rng.gamma(2.0, 0.5))))
    return pl.DataFrame(
        rows, schema=["model", "task", "success", "normalized_reward"], orient="row"
    ).with_columns(pl.col("normalized_reward").alias("best_reward"))


def _scores(frame: pl.DataFrame, column: str) -> list[SampleScore]:
    return [
        SampleScore(score=Score(value=float(v)), sample_id=i, sample_metadata={"task": t})
        for i, (t, v) in enumerate(zip(frame["task"], frame[column], strict=True))
    ]


# ------------------------------------------------------------------ inspect_ai itself
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("epochs", [8, (1, 9)], ids=["balanced", "unequal"])
def test_clustered_se_and_intervals_equal_inspects_own(seed, epochs):
    frame = _suite(seed, tasks=int(np.random.default_rng(seed).integers(2, 30)), epochs=epochs)
    success, score = _scores(frame, "success"), _scores(frame, "normalized_reward")
    want_se = stderr(cluster="task")(success)
    assert C.clustered_se(frame["success"].cast(float), frame["task"]) == pytest.approx(want_se, rel=1e-12)
    row = C.suite_intervals(frame).row(0, named=True)
    assert row["se"] == pytest.approx(want_se, rel=1e-12)
    wilson = ci_wilson(cluster="task")(success)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((wilson["lower"], wilson["upper"]), abs=1e-12)
    assert row["method"] == "task-clustered Wilson" and row["population"] == "tasks"
    # the mean score: Inspect's clustered t interval
    mean_row = C.suite_intervals(frame, "normalized_reward").row(0, named=True)
    t_ci = ci(cluster="task")(score)
    assert mean_row["se"] == pytest.approx(stderr(cluster="task")(score), rel=1e-12)
    assert (mean_row["ci_low"], mean_row["ci_high"]) == pytest.approx(
        (t_ci["lower"], t_ci["upper"]), rel=1e-9
    )


def test_model_metrics_default_interval_is_inspects_clustered_wilson_per_model():
    frame = _suite(7, models=("alpha", "beta", "gamma"), epochs=(2, 8))
    board = model_metrics(frame, k_values=(1,))
    for r in board.iter_rows(named=True):
        sub = frame.filter(pl.col("model") == r["model"])
        scores = _scores(sub, "success")
        assert r["success_se"] == pytest.approx(stderr(cluster="task")(scores), rel=1e-12)
        want = ci_wilson(cluster="task")(scores)
        assert (r["success_ci_low"], r["success_ci_high"]) == pytest.approx((want["lower"], want["upper"]))
        assert r["success_ci_method"] == "task-clustered Wilson"


def test_clustered_se_equals_statsmodels_cluster_robust_ols():
    """statsmodels' cluster correction G/(G−1)·(N−1)/(N−K) is G/(G−1) for an intercept (K = 1)."""
    frame = _suite(3, epochs=(1, 12))
    y = frame["success"].cast(float).to_numpy()
    groups = frame["task"].rank("dense").cast(int).to_numpy()
    fit = sm.OLS(y, np.ones_like(y)).fit(cov_type="cluster", cov_kwds={"groups": groups})
    assert C.clustered_se(y, frame["task"]) == pytest.approx(float(fit.bse[0]), rel=1e-12)


# ------------------------------------------------------------------ acceptance
@pytest.mark.parametrize("seed", range(20))
def test_held_out_suite_default_interval_is_within_its_band_of_the_clustered_se(seed):
    """Issue 19's acceptance check: 24 tasks × 8 trials, odds 3–95 %: the default interval's
    half-width is 0.75–1.33 × 1.96 × the task-clustered SE (Inspect's), where the old pooled
    Wilson interval was narrower than that band allows."""
    frame = _suite(1000 + seed)
    r = model_metrics(frame, k_values=(1,)).row(0, named=True)
    se = stderr(cluster="task")(_scores(frame, "success"))
    half = (r["success_ci_high"] - r["success_ci_low"]) / 2
    assert 0.75 <= half / (1.959964 * se) <= 1.33, (half, se)
    pooled_lo, pooled_hi = wilson_interval(r["successes"], r["n_scored"])
    assert (pooled_hi - pooled_lo) / 2 / (1.959964 * se) < 0.75  # the old default failed the check


def test_suite_population_is_narrower_and_one_task_falls_back_to_wilson():
    frame = _suite(5)
    tasks = C.suite_intervals(frame).row(0, named=True)
    suite = C.suite_intervals(frame, population="suite").row(0, named=True)
    assert (
        suite["method"] == "stratified Wilson"
        and suite["ci_high"] - suite["ci_low"] < tasks["ci_high"] - tasks["ci_low"]
    )
    one = frame.filter(pl.col("task") == "t03")
    row = C.suite_intervals(one).row(0, named=True)
    assert row["method"] == "Wilson (one task)"
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        wilson_interval(int(one["success"].sum()), one.height)
    )
    board = model_metrics(one.with_columns(pl.col("normalized_reward").alias("best_reward")), k_values=(1,))
    assert board["success_ci_method"][0] == "Wilson (one task)"
    with pytest.raises(MetricError, match="unknown population"):
        C.suite_intervals(frame, population="everything")


def test_stratified_variance_is_the_stratified_bootstraps_exact_variance():
    """By enumeration of every resample of two tiny tasks (3 and 2 runs: 3³·2² draws)."""
    tasks = [np.array([1.0, 0.0, 1.0]), np.array([0.0, 1.0])]
    means = []
    for a in itertools.product(tasks[0], repeat=3):
        for b in itertools.product(tasks[1], repeat=2):
            means.append((sum(a) + sum(b)) / 5)
    values = np.concatenate(tasks)
    labels = ["a"] * 3 + ["b"] * 2
    assert C.stratified_variance(values, labels) == pytest.approx(float(np.var(means)), rel=1e-12)


# ------------------------------------------------------------------ the cluster bootstrap
def _cluster_loop(n, c, reps, seed):
    """The two-stage bootstrap of the task-mean rate, one replicate at a time, consuming the
    RNG as ``cluster_count_bootstrap`` documents (task slots first, then binomial counts)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(n), size=(reps, len(n)))
    out = []
    counts = rng.binomial(np.asarray(n)[idx], (np.asarray(c) / np.asarray(n))[idx])
    for b in range(reps):
        out.append(np.mean([counts[b, s] / n[idx[b, s]] for s in range(len(n))]))
    return np.array(out)


def test_cluster_count_bootstrap_equals_a_loop_with_the_same_rng():
    n, c = [4, 8, 2, 6], [1, 7, 0, 3]
    res = C.cluster_count_bootstrap(n, c, B.task_rate_stat, reps=500, seed=11)
    np.testing.assert_allclose(res.replicates, _cluster_loop(n, c, 500, 11), rtol=0, atol=1e-12)


def test_cluster_bootstrap_interval_agrees_with_an_independent_one_written_here():
    """Success rate and mean score under ``population="tasks"`` against a two-stage bootstrap
    over the raw runs with its own RNG: the 95% bounds agree within Monte-Carlo error."""
    frame = _suite(21, tasks=12, epochs=(3, 10))
    per_task = {t: g for (t,), g in frame.group_by("task")}
    rng = np.random.default_rng(12345)
    reps = 4000
    rates, means = np.empty(reps), np.empty(reps)
    names = sorted(per_task)
    for b in range(reps):
        drawn = [per_task[names[i]] for i in rng.integers(0, len(names), len(names))]
        r_list, m_list = [], []
        for g in drawn:
            pick = rng.integers(0, g.height, g.height)
            r_list.append(g["success"].cast(float).to_numpy()[pick].mean())
            m_list.append(g["normalized_reward"].to_numpy()[pick].mean())
        rates[b], means[b] = np.mean(r_list), np.mean(m_list)
    ours = B.interval_estimates(frame, ("success_rate", "mean"), reps=reps, seed=3)
    for metric, reps_ in (("success_rate", rates), ("mean", means)):
        row = ours.filter(pl.col("metric") == metric).row(0, named=True)
        lo, hi = np.percentile(reps_, [2.5, 97.5])
        spread = hi - lo
        assert row["population"] == "tasks"
        assert row["ci_low"] == pytest.approx(lo, abs=0.06 * spread)
        assert row["ci_high"] == pytest.approx(hi, abs=0.06 * spread)
    # tasks as a sample is wider than this fixed suite
    fixed = B.interval_estimates(frame, ("success_rate",), reps=reps, seed=3, population="suite").row(
        0, named=True
    )
    clustered = ours.filter(pl.col("metric") == "success_rate").row(0, named=True)
    assert fixed["ci_high"] - fixed["ci_low"] < clustered["ci_high"] - clustered["ci_low"]


def test_pass_hat_k_curve_is_the_task_mean_of_the_exact_pass_hat_k():
    frame = _suite(4, tasks=6, epochs=(3, 6))
    curve = B.pass_at_k_curve(frame, (1, 2, 3), reps=200, seed=0, estimator="pass_hat_k")
    cells = frame.group_by("task").agg(pl.len().alias("n"), pl.col("success").sum().alias("c"))
    for k in (1, 2, 3):
        want = np.mean(
            [math.comb(c, k) / math.comb(n, k) for n, c in cells.select("n", "c").iter_rows() if n >= k]
        )
        row = curve.filter(pl.col("k") == k).row(0, named=True)
        assert row["estimate"] == pytest.approx(want, rel=1e-12)
        assert row["ci_low"] <= row["estimate"] <= row["ci_high"]
    with pytest.raises(MetricError, match="unknown estimator"):
        B.pass_at_k_curve(frame, (1,), estimator="pass_at_most_k")
