"""Fast paths taken for page speed give the same numbers as the general code.

``bootstrap._pooled_score_bootstrap`` (compact resamples, sort-based IQM) must
reproduce ``stratified_bootstrap`` with the generic ``iqm_metric`` /
``mean_metric`` / ``optimality_gap_metric`` replicate by replicate (same seed →
same runs drawn), and the replicates must equal a brute-force recomputation
with ``scipy.stats.trim_mean`` on the runs each replicate drew.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fle_core import bootstrap as B

METRICS = ("iqm", "mean", "optimality_gap")


def _generic(tasks, reps, seed):
    fns = {"iqm": B.iqm_metric, "mean": B.mean_metric, "optimality_gap": B.optimality_gap_metric}
    return B.stratified_bootstrap(tasks, lambda x: np.stack([fns[m](x) for m in METRICS], 1),
                                  reps, seed)


@pytest.mark.parametrize("sizes", [[1], [2, 3], [5, 5, 5], [7, 1, 12, 3], [40, 33, 51]])
def test_pooled_scores_match_generic_bootstrap(sizes):
    rng = np.random.default_rng(sum(sizes))
    # rounded values: plenty of ties, which the IQM's sort must handle like trim_mean
    tasks = [np.round(rng.gamma(2.0, 0.4, size=n), 1) for n in sizes]
    want = _generic(tasks, 700, [3, 17])  # 700 reps: more than one block for the big case
    got = B._pooled_score_bootstrap(tasks, METRICS, 700, [3, 17], 0.95)
    np.testing.assert_allclose(got.replicates, want.replicates, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.estimate, want.estimate, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.ci_low, want.ci_low, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.ci_high, want.ci_high, rtol=0, atol=1e-12)


def test_pooled_scores_equal_brute_force_per_replicate():
    """Each replicate is trim_mean / mean / gap of the runs drawn by the documented RNG rule."""
    rng = np.random.default_rng(5)
    tasks = [rng.normal(1.0, 0.3, size=n) for n in (6, 9, 4)]
    reps, seed = 50, 8
    got = B._pooled_score_bootstrap(tasks, METRICS, reps, seed, 0.95)
    n = np.array([t.size for t in tasks])
    u = np.random.default_rng(seed).random((reps, len(tasks), n.max()), dtype=np.float32)
    for b in range(reps):
        drawn = np.concatenate([
            tasks[t][np.minimum((u[b, t, :n[t]] * np.float32(n[t])).astype(int), n[t] - 1)]
            for t in range(len(tasks))])
        want = [stats.trim_mean(drawn, 0.25), drawn.mean(), np.maximum(1 - drawn, 0).mean()]
        np.testing.assert_allclose(got.replicates[b], want, rtol=0, atol=1e-12)


def test_interval_estimates_unchanged_by_fast_path():
    """The frame function's score rows equal the generic bootstrap's (same per-model seed)."""
    import polars as pl

    rng = np.random.default_rng(2)
    rows = [{"model": m, "task": t, "normalized_reward": float(rng.gamma(2, 0.5)),
             "success": bool(rng.random() < 0.5)}
            for m in ("a", "b") for t in ("x", "y", "z") for _ in range(int(rng.integers(3, 9)))]
    frame = pl.DataFrame(rows)
    out = B.interval_estimates(frame, reps=400, seed=4)
    for model in ("a", "b"):
        sub = frame.filter(pl.col("model") == model)
        tasks = [sub.filter(pl.col("task") == t)["normalized_reward"].to_numpy()
                 for t in ("x", "y", "z")]
        want = _generic(tasks, 400, B._model_seed(4, model, "score"))
        for i, metric in enumerate(METRICS):
            got = out.filter((pl.col("model") == model) & (pl.col("metric") == metric)).row(
                0, named=True)
            assert got["estimate"] == pytest.approx(float(want.estimate[i]), abs=1e-12)
            assert got["ci_low"] == pytest.approx(float(want.ci_low[i]), abs=1e-12)
            assert got["ci_high"] == pytest.approx(float(want.ci_high[i]), abs=1e-12)
