"""The vectorized bootstrap against a brute-force loop with the same seed semantics,
and the frame-level estimates against direct computation (scipy, metrics)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from fle_core.errors import MetricError
from fle_core.stats import bootstrap as B
from fle_core.stats.metrics import model_metrics, pass_at_k


def _brute_force(tasks, stat, reps, seed, resample_tasks=False):
    """One resample at a time in plain Python loops, consuming the RNG as documented."""
    rng = np.random.default_rng(seed)
    t_count = len(tasks)
    r_max = max(len(t) for t in tasks)
    task_idx = rng.integers(0, t_count, size=(reps, t_count)) if resample_tasks else None
    out = []
    for b in range(reps):
        u = rng.random((t_count, r_max), dtype=np.float32)  # the same stream, row by row
        sample = []
        for slot in range(t_count):
            j = task_idx[b, slot] if resample_tasks else slot
            n = len(tasks[j])
            picks = []
            for r in range(n):
                i = min(int(np.float32(u[slot, r]) * np.float32(n)), n - 1)
                picks.append(tasks[j][i])
            sample.append(picks)
        out.append(stat(sample))
    return np.array(out)


TINY = [np.array([0.0, 1.0, 1.0]), np.array([2.0, 5.0]), np.array([1.0, 3.0, 4.0, 9.0, 0.5])]


@pytest.mark.parametrize("resample_tasks", [False, True])
def test_vectorized_equals_brute_force_for_mean_and_iqm(resample_tasks):
    for fn, stat in [
        (B.mean_metric, lambda s: np.mean(np.concatenate(s))),
        (B.iqm_metric, lambda s: stats.trim_mean(np.concatenate(s), 0.25)),
        (B.task_mean_metric, lambda s: np.mean([np.mean(x) for x in s])),
    ]:
        res = B.stratified_bootstrap(TINY, fn, reps=300, seed=42, resample_tasks=resample_tasks)
        want = _brute_force(TINY, stat, 300, 42, resample_tasks)
        np.testing.assert_allclose(res.replicates, want, rtol=0, atol=1e-12)
        lo, hi = np.percentile(want, [2.5, 97.5])
        assert (float(res.ci_low), float(res.ci_high)) == pytest.approx((lo, hi))


def test_vectorized_equals_brute_force_for_pass_at_k():
    tasks = [np.array([1.0, 0, 0, 1, 0]), np.array([0.0, 0, 1, 0, 0, 0, 1]), np.array([1.0, 1])]
    res = B.stratified_bootstrap(tasks, B.pass_at_k_metric(3), reps=200, seed=3)
    # tasks with n < 3 drop out of the average, as in model_metrics
    want = _brute_force(
        tasks, lambda s: np.mean([pass_at_k(len(x), int(sum(x)), 3) for x in s if len(x) >= 3]), 200, 3
    )
    np.testing.assert_allclose(res.replicates, want, atol=1e-12)
    assert float(res.estimate) == pytest.approx(np.mean([pass_at_k(5, 2, 3), pass_at_k(7, 2, 3)]))


def test_blocks_do_not_change_the_stream(monkeypatch):
    data = [np.arange(50.0), np.arange(30.0) * 2]
    one = B.stratified_bootstrap(data, B.mean_metric, reps=101, seed=9)
    monkeypatch.setattr(B, "_BLOCK_ELEMENTS", 100)  # many small blocks
    many = B.stratified_bootstrap(data, B.mean_metric, reps=101, seed=9)
    np.testing.assert_array_equal(one.replicates, many.replicates)


def test_seeded_and_reproducible():
    data = np.random.default_rng(0).normal(size=(20, 4))  # runs x tasks
    a = B.stratified_bootstrap(data, B.mean_metric, reps=500, seed=1)
    b = B.stratified_bootstrap(data, B.mean_metric, reps=500, seed=1)
    c = B.stratified_bootstrap(data, B.mean_metric, reps=500, seed=2)
    np.testing.assert_array_equal(a.replicates, b.replicates)
    assert not np.array_equal(a.replicates, c.replicates)
    assert float(a.estimate) == pytest.approx(data.mean())
    assert a.ci_low < a.estimate < a.ci_high


def test_bootstrap_standard_error_matches_binomial_theory():
    """Distributional check: bootstrap SD of a pooled success rate ≈ sqrt(p(1-p)/n)."""
    rng = np.random.default_rng(5)
    tasks = [(rng.random(200) < 0.3).astype(float) for _ in range(4)]
    res = B.stratified_bootstrap(tasks, B.mean_metric, reps=4000, seed=11)
    # stratified: var = sum_j n_j p_j (1 - p_j) / N^2
    n_total = 800
    theory = math.sqrt(sum(t.size * t.mean() * (1 - t.mean()) for t in tasks)) / n_total
    assert np.std(res.replicates) == pytest.approx(theory, rel=0.08)
    width = float(res.ci_high - res.ci_low)
    assert width == pytest.approx(2 * 1.96 * theory, rel=0.1)


@pytest.mark.parametrize("sizes", [[7, 7, 7], [3, 9, 12, 1]])
def test_iqm_metric_matches_trim_mean(sizes):
    rng = np.random.default_rng(sum(sizes))
    tasks = [rng.normal(size=s) for s in sizes]
    padded, _ = B.pad_tasks(tasks)
    batch = np.stack([padded, padded[::-1]])
    out = B.iqm_metric(batch)
    want = stats.trim_mean(np.concatenate(tasks), 0.25)
    assert out == pytest.approx([want, want])


def test_bad_input_raises():
    with pytest.raises(MetricError):
        B.stratified_bootstrap([], B.mean_metric)
    with pytest.raises(MetricError):
        B.stratified_bootstrap([np.array([np.nan])], B.mean_metric)
    with pytest.raises(MetricError):
        B.stratified_bootstrap(TINY, B.mean_metric, reps=0)
    with pytest.raises(MetricError):
        B.percentile_interval(np.arange(3.0), confidence=1.5)


# ------------------------------------------------------ probability of improvement
def test_probability_of_improvement_point_is_mann_whitney_u():
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 5, 13).astype(float), rng.integers(0, 5, 9).astype(float)  # ties
    u = stats.mannwhitneyu(x, y).statistic
    assert B.prob_improvement_point(x, y) == pytest.approx(u / (x.size * y.size))


def test_poi_from_counts_equals_win_matrix_product():
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 4, 6).astype(float), rng.integers(0, 4, 8).astype(float)
    wx, wy = B._resample_counts(6, 50, rng), B._resample_counts(8, 50, rng)
    assert (wx.sum(axis=1) == 6).all() and (wy.sum(axis=1) == 8).all()
    direct = np.array([wx[b] @ B._win_matrix(x, y) @ wy[b] for b in range(50)]) / 48
    np.testing.assert_allclose(B._poi_from_counts(x, y, wx, wy), direct, atol=1e-12)


# ------------------------------------------------------------ frame functions
@pytest.fixture
def summaries():
    rng = np.random.default_rng(0)
    rows = []
    for model, p in [("a", 0.6), ("b", 0.3)]:
        for task, n in [("t1", 10), ("t2", 6), ("t3", 2)]:
            for _ in range(n):
                r = float(rng.gamma(2.0, 8.0 * (p + 0.5)))
                rows.append(
                    {
                        "model": model,
                        "task": task,
                        "best_reward": r,
                        "normalized_reward": r / 16.0,
                        "success": r >= 16.0,
                    }
                )
    return pl.DataFrame(rows)


def test_interval_estimates_point_values(summaries):
    metrics = ("success_rate", "success_rate_pooled", "iqm", "mean", "median", "optimality_gap",
               "mean_pooled", "optimality_gap_pooled")  # fmt: skip
    out = B.interval_estimates(summaries, metrics, reps=300, seed=0)
    assert out.columns[:5] == ["model", "metric", "estimate", "ci_low", "ci_high"]
    for model in ("a", "b"):
        sub = summaries.filter(pl.col("model") == model)
        got = {r["metric"]: r for r in out.filter(pl.col("model") == model).iter_rows(named=True)}
        assert list(got) == list(metrics)
        score = sub["normalized_reward"].to_numpy()
        by_task = [g["normalized_reward"].to_numpy() for _, g in sub.group_by("task")]
        rates = [g["success"].mean() for _, g in sub.group_by("task")]
        assert got["success_rate"]["estimate"] == pytest.approx(np.mean(rates))
        assert got["success_rate_pooled"]["estimate"] == pytest.approx(sub["success"].mean())
        assert got["iqm"]["estimate"] == pytest.approx(stats.trim_mean(score, 0.25))
        assert got["mean"]["estimate"] == pytest.approx(np.mean([x.mean() for x in by_task]))
        assert got["median"]["estimate"] == pytest.approx(np.median([x.mean() for x in by_task]))
        assert got["optimality_gap"]["estimate"] == pytest.approx(
            np.mean([np.maximum(1 - x, 0).mean() for x in by_task])
        )
        assert got["mean_pooled"]["estimate"] == pytest.approx(score.mean())
        assert got["optimality_gap_pooled"]["estimate"] == pytest.approx(np.mean(np.maximum(1 - score, 0)))
        for r in got.values():
            assert r["ci_low"] <= r["estimate"] <= r["ci_high"]
            assert r["n"] == 18 and r["n_tasks"] == 3
    again = B.interval_estimates(summaries, metrics, reps=300, seed=0)
    assert again.equals(out)
    default = B.interval_estimates(summaries, reps=300, seed=0)
    assert default["metric"].unique(maintain_order=True).to_list() == [
        "success_rate", "iqm", "mean", "median", "optimality_gap"
    ]  # fmt: skip
    with pytest.raises(MetricError):
        B.interval_estimates(summaries, metrics=("mode",))


# rliable's aggregate functions (rliable/metrics.py, runs x tasks matrices), written out
# here independently of the package, to check the package's aggregates against them.
def _rliable_mean(scores):
    return np.mean(np.mean(scores, axis=0))


def _rliable_median(scores):
    return np.median(np.mean(scores, axis=0))


def _rliable_iqm(scores):
    return stats.trim_mean(scores, proportiontocut=0.25, axis=None)


def _rliable_optimality_gap(scores, gamma=1):
    return gamma - np.mean(np.minimum(scores, gamma))


def _frame_of(matrix_by_model: dict[str, list[np.ndarray]]) -> pl.DataFrame:
    rows = [
        {"model": m, "task": f"t{j}", "normalized_reward": float(v), "success": bool(v >= 1.0)}
        for m, tasks in matrix_by_model.items()
        for j, runs in enumerate(tasks)
        for v in runs
    ]
    return pl.DataFrame(rows)


def test_aggregates_equal_rliable_on_a_runs_by_tasks_matrix():
    rng = np.random.default_rng(21)
    scores = np.round(rng.gamma(2.0, 0.45, size=(5, 4)), 2)  # 5 runs x 4 tasks
    frame = _frame_of({"m": [scores[:, j] for j in range(4)]})
    out = B.interval_estimates(frame, ("success_rate", "mean", "median", "iqm", "optimality_gap"), reps=50)
    got = dict(zip(out["metric"], out["estimate"], strict=True))
    assert got["mean"] == pytest.approx(_rliable_mean(scores), abs=1e-12)
    assert got["median"] == pytest.approx(_rliable_median(scores), abs=1e-12)
    assert got["iqm"] == pytest.approx(_rliable_iqm(scores), abs=1e-12)
    assert got["optimality_gap"] == pytest.approx(_rliable_optimality_gap(scores), abs=1e-12)
    assert got["success_rate"] == pytest.approx(_rliable_mean((scores >= 1.0).astype(float)), abs=1e-12)


def test_unequal_trial_counts_weigh_tasks_not_trajectories():
    """The 4 + 1 example: 0/4 on one task, 1/1 on another — rliable says 0.5, pooling 0.2."""
    frame = _frame_of({"m": [np.zeros(4), np.ones(1)]})
    metrics = ("success_rate", "success_rate_pooled", "mean", "mean_pooled", "median", "optimality_gap",
               "optimality_gap_pooled")  # fmt: skip
    got = dict(B.interval_estimates(frame, metrics, reps=200).select("metric", "estimate").iter_rows())
    assert got["success_rate"] == 0.5 and got["success_rate_pooled"] == pytest.approx(0.2)
    assert got["mean"] == 0.5 and got["mean_pooled"] == pytest.approx(0.2)
    assert got["median"] == 0.5
    assert got["optimality_gap"] == 0.5 and got["optimality_gap_pooled"] == pytest.approx(0.8)
    # the package now agrees with itself: pass@1 and the profile were already task-weighted
    assert B.pass_at_k_curve(frame, (1,), reps=50)["estimate"][0] == pytest.approx(got["success_rate"])
    profile = B.performance_profile(frame, taus=[0.5], reps=50)
    assert profile["fraction"][0] == pytest.approx(got["success_rate"])


def test_task_weighted_success_interval_matches_the_generic_bootstrap():
    """The binomial shortcut for the task-mean rate has the same distribution as resampling runs."""
    tasks = [np.array([0, 0, 0, 1.0]), np.array([1.0]), np.array([1.0, 0, 1, 1, 0, 1])]
    n = np.array([t.size for t in tasks])
    c = np.array([t.sum() for t in tasks])
    fast = B.count_bootstrap(n, c, B.task_rate_stat, reps=20000, seed=1)
    slow = B.stratified_bootstrap(tasks, B.task_mean_metric, reps=20000, seed=2)
    assert float(fast.estimate) == pytest.approx(float(slow.estimate))
    assert fast.replicates.mean() == pytest.approx(slow.replicates.mean(), abs=0.005)
    assert fast.replicates.std() == pytest.approx(slow.replicates.std(), rel=0.05)


def test_pass_at_k_curve_matches_model_metrics(summaries):
    curve = B.pass_at_k_curve(summaries, k_values=(1, 3, 8), reps=200, seed=0)
    mm = model_metrics(summaries, k_values=(1, 3, 8))
    for row in curve.iter_rows(named=True):
        want = mm.filter(pl.col("model") == row["model"])[f"pass_at_{row['k']}"][0]
        assert row["estimate"] == pytest.approx(want)
        assert row["n_tasks"] == {1: 3, 3: 2, 8: 1}[row["k"]]
        assert row["ci_low"] <= row["estimate"] + 1e-12 and row["estimate"] <= row["ci_high"] + 1e-12


def test_performance_profile_matches_direct_fraction(summaries):
    prof = B.performance_profile(summaries, taus=[0.5, 1.0], reps=100, seed=0)
    sub = summaries.filter(pl.col("model") == "a")
    for tau in (0.5, 1.0):
        want = np.mean([(g["normalized_reward"].to_numpy() > tau).mean() for _, g in sub.group_by("task")])
        got = prof.filter((pl.col("model") == "a") & (pl.col("tau") == tau))["fraction"][0]
        assert got == pytest.approx(want)


def test_probability_of_improvement_frame(summaries):
    out = B.probability_of_improvement(summaries, reps=500, seed=0)
    ab = out.filter((pl.col("model_x") == "a") & (pl.col("model_y") == "b")).row(0, named=True)
    ba = out.filter((pl.col("model_x") == "b") & (pl.col("model_y") == "a")).row(0, named=True)
    want = np.mean(
        [
            stats.mannwhitneyu(
                summaries.filter((pl.col("model") == "a") & (pl.col("task") == t))["best_reward"],
                summaries.filter((pl.col("model") == "b") & (pl.col("task") == t))["best_reward"],
            ).statistic
            / (n * n)
            for t, n in [("t1", 10), ("t2", 6), ("t3", 2)]
        ]
    )
    assert ab["estimate"] == pytest.approx(want)
    assert ab["estimate"] + ba["estimate"] == pytest.approx(1.0)
    assert (ab["ci_low"], ab["ci_high"]) == pytest.approx((1 - ba["ci_high"], 1 - ba["ci_low"]))
    assert ab["n_tasks"] == 3
    with pytest.raises(MetricError):
        B.probability_of_improvement(summaries, pairs=[("a", "zzz")])
    no_data = pl.concat(
        [
            summaries,
            pl.DataFrame(
                {
                    "model": ["c"],
                    "task": ["t1"],
                    "best_reward": [None],
                    "normalized_reward": [None],
                    "success": [None],
                },
                schema=summaries.schema,
            ),
        ]
    )
    row = B.probability_of_improvement(no_data, pairs=[("a", "c")], reps=10).row(0, named=True)
    assert row["estimate"] is None and row["n_tasks"] == 0


def test_count_bootstrap_agrees_in_distribution_with_resampling():
    """Binomial counts per task vs the generic resampler on the 0/1 runs."""
    rng = np.random.default_rng(12)
    tasks = [(rng.random(n) < p).astype(float) for n, p in [(12, 0.3), (30, 0.6), (8, 0.1)]]
    n = np.array([t.size for t in tasks])
    c = np.array([int(t.sum()) for t in tasks])
    fast = B.count_bootstrap(n, c, B.pooled_rate_stat, reps=20000, seed=1)
    slow = B.stratified_bootstrap(tasks, B.mean_metric, reps=20000, seed=2)
    assert float(fast.estimate) == pytest.approx(c.sum() / n.sum())
    assert np.std(fast.replicates) == pytest.approx(np.std(slow.replicates), rel=0.04)
    assert np.mean(fast.replicates) == pytest.approx(np.mean(slow.replicates), abs=0.003)
    assert (float(fast.ci_low), float(fast.ci_high)) == pytest.approx(
        (float(slow.ci_low), float(slow.ci_high)), abs=0.011
    )
    k3 = B.count_bootstrap(n, c, B.pass_at_k_stat(3), reps=20000, seed=1)
    k3_slow = B.stratified_bootstrap(tasks, B.pass_at_k_metric(3), reps=20000, seed=2)
    assert float(k3.estimate) == pytest.approx(
        np.mean([pass_at_k(int(a), int(b), 3) for a, b in zip(n, c, strict=True)])
    )
    assert np.std(k3.replicates) == pytest.approx(np.std(k3_slow.replicates), rel=0.05)
    with pytest.raises(MetricError):
        B.count_bootstrap([3], [4], B.pooled_rate_stat)


def test_empty_summaries_give_empty_frames_with_contract_columns(summaries):
    from fle_core.stats.compare import pairwise_comparisons

    empty = summaries.head(0)
    assert B.interval_estimates(empty).columns[:5] == ["model", "metric", "estimate", "ci_low", "ci_high"]
    assert B.interval_estimates(empty).height == 0
    assert B.pass_at_k_curve(empty).columns == ["model", "k", "estimate", "ci_low", "ci_high", "n_tasks"]
    assert B.performance_profile(empty).columns == ["model", "tau", "fraction", "ci_low", "ci_high"]
    assert B.probability_of_improvement(empty).columns[:5] == [
        "model_x",
        "model_y",
        "estimate",
        "ci_low",
        "ci_high",
    ]
    assert pairwise_comparisons(empty).height == 0
