"""Dollars, the frontier, consistency and the headline, against hand computation, brute
force, exact enumeration and independent statistics (statsmodels' Holm, scipy's Fisher)."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from statsmodels.stats.multitest import multipletests

from fle_core.errors import MetricError
from fle_core.stats import cost as K
from fle_core.stats import leader as L
from fle_core.stats import reliability as R


def _runs(spec: dict[str, dict[str, list[tuple[int, float]]]]) -> pl.DataFrame:
    """{model: {task: [(success, cost_usd), ...]}} → a summaries-like frame."""
    rows = [
        (m, t, bool(s), c, 1000 + 10 * i, 100.0 + i)
        for m, tasks in spec.items()
        for t, runs in tasks.items()
        for i, (s, c) in enumerate(runs)
    ]
    return pl.DataFrame(
        rows, schema=["model", "task", "success", "cost_usd", "total_tokens", "duration_s"], orient="row"
    )


# ------------------------------------------------------------------ prices
def test_prices_fill_only_what_the_log_did_not_record():
    frame = pl.DataFrame(
        {
            "model": ["openai/gpt-4o", "openai/gpt-4o", "other"],
            "prompt_tokens": [1_000_000, 2_000, 5],
            "completion_tokens": [100_000, 1_000, 5],
            "cost_usd": [0.5, None, None],
        }
    )
    out = K.apply_prices(frame, {"openai/gpt-4o": {"input": 2.5, "output": 10.0}})
    assert out["cost_usd"].to_list() == pytest.approx(
        [0.5, (2_000 * 2.5 + 1_000 * 10.0) / 1e6, None], nan_ok=True
    )
    assert out["cost_source"].to_list() == ["log", "price table", None]
    labelled = frame.with_columns(pl.col("model").alias("base_model"), pl.lit("sys [x=1]").alias("model"))
    assert (
        K.apply_prices(labelled, {"openai/gpt-4o": {"input": 1, "output": 1}})["cost_source"][1]
        == "price table"
    )
    for bad in (
        {"m": {"input": 1}},
        {"m": {"input": -1, "output": 1}},
        {"m": {"input": "2", "output": 1}},
        {"m": 3},
    ):
        with pytest.raises(MetricError, match="prices"):
            K.apply_prices(frame, bad)


# ------------------------------------------------------------------ cost per success
def test_cost_per_success_by_hand_and_unpriced_runs_make_it_null():
    frame = _runs(
        {
            "a": {"t1": [(1, 0.02), (0, 0.02), (0, 0.02)], "t2": [(1, 0.02), (1, 0.02)]},
            "b": {"t1": [(0, 0.01), (0, None)], "t2": [(1, 0.03)]},
            "c": {"t1": [(0, 0.01)], "t2": [(0, 0.01)]},
        }
    )
    est = {r["model"]: r for r in K.cost_estimates(frame, reps=300, seed=1).iter_rows(named=True)}
    assert est["a"]["cost_per_success"] == pytest.approx(0.10 / 3)
    assert est["a"]["cost_per_run"] == pytest.approx(0.02) and est["a"]["unit"] == "USD"
    assert est["a"]["ci_low"] <= est["a"]["cost_per_success"] <= (est["a"]["ci_high"] or np.inf)
    assert (
        est["b"]["unpriced"] == 1 and est["b"]["cost_per_success"] is None and est["b"]["total_cost"] is None
    )
    assert est["c"]["successes"] == 0 and est["c"]["cost_per_success"] is None
    assert K.cost_unit(frame) == ("total_tokens", "tokens")  # b has a run without a cost
    assert K.cost_unit(frame.filter(pl.col("model") != "b")) == ("cost_usd", "USD")


def test_cost_interval_matches_a_bootstrap_written_here_and_goes_unbounded():
    rng = np.random.default_rng(0)
    spec = {
        "m": {
            f"t{t}": [(int(rng.random() < 0.4), float(rng.uniform(0.01, 0.05))) for _ in range(8)]
            for t in range(10)
        }
    }
    frame = _runs(spec)
    ours = K.cost_estimates(frame, reps=4000, seed=2, population="suite").row(0, named=True)
    tasks = [np.array(v) for v in spec["m"].values()]
    gen = np.random.default_rng(99)
    reps = []
    for _ in range(4000):  # stratified: runs resampled within each task, cost and success together
        drawn = np.concatenate([t[gen.integers(0, len(t), len(t))] for t in tasks])
        reps.append(drawn[:, 1].sum() / drawn[:, 0].sum() if drawn[:, 0].sum() else np.inf)
    lo, hi = np.percentile(reps, [2.5, 97.5])
    assert ours["ci_low"] == pytest.approx(lo, rel=0.05) and ours["ci_high"] == pytest.approx(hi, rel=0.05)
    rare = _runs({"m": {"t1": [(1, 0.01)] + [(0, 0.01)] * 9, "t2": [(0, 0.01)] * 10}})
    assert K.cost_estimates(rare, reps=500, seed=0)["ci_high"][0] is None  # many resamples without a success


# ------------------------------------------------------------------ the frontier
def test_pareto_mask_equals_brute_force_with_ties_and_missing_points():
    rng = np.random.default_rng(4)
    for _ in range(200):
        n = int(rng.integers(1, 9))
        rate = rng.choice([0.1, 0.3, 0.5, np.nan], size=n)
        cost = rng.choice([1.0, 2.0, 3.0, np.inf], size=n)
        got = K.pareto_mask(rate, cost)
        for i in range(n):
            ok = np.isfinite(rate[i]) and np.isfinite(cost[i])
            dominated = any(
                np.isfinite(rate[j])
                and np.isfinite(cost[j])
                and rate[j] >= rate[i]
                and cost[j] <= cost[i]
                and (rate[j] > rate[i] or cost[j] < cost[i])
                for j in range(n)
            )
            assert got[i] == (ok and not dominated)


def test_frontier_share_is_one_for_a_system_that_always_wins_and_zero_for_one_that_never_does():
    best = {f"t{t}": [(1, 0.01)] * 6 for t in range(5)}
    worst = {f"t{t}": [(1, 0.05), (0, 0.05), (0, 0.05), (0, 0.05), (0, 0.05), (0, 0.05)] for t in range(5)}
    mixed = {f"t{t}": [(1, 0.03), (0, 0.03), (1, 0.03), (0, 0.03), (1, 0.03), (0, 0.03)] for t in range(5)}
    none = {f"t{t}": [(0, 0.01)] * 6 for t in range(5)}
    front = K.frontier(_runs({"best": best, "worst": worst, "mixed": mixed, "none": none}), reps=400, seed=5)
    share = dict(zip(front["model"], front["frontier_share"], strict=True))
    on = dict(zip(front["model"], front["on_frontier"], strict=True))
    assert "none" not in share  # no success: cannot be placed
    assert share["best"] == 1.0 and on["best"]
    assert share["worst"] == 0.0 and share["mixed"] == 0.0 and not on["mixed"]
    row = front.filter(pl.col("model") == "mixed").row(0, named=True)
    assert row["success_rate"] == pytest.approx(0.5) and row["cost_per_success"] == pytest.approx(0.06)
    assert row["rate_ci_low"] < 0.5 < row["rate_ci_high"]


def test_frontier_share_between_close_systems_is_a_real_share():
    rng = np.random.default_rng(8)
    spec = {
        name: {f"t{t}": [(int(rng.random() < p), c) for _ in range(8)] for t in range(12)}
        for name, p, c in (("cheap", 0.45, 0.02), ("strong", 0.55, 0.021))
    }
    front = K.frontier(_runs(spec), reps=1000, seed=1)
    assert all(0.2 < s <= 1.0 for s in front["frontier_share"])  # both are often on it
    assert front["frontier_share"].sum() > 1.0  # and sometimes both at once


# ------------------------------------------------------------------ consistency
def test_outcome_consistency_by_exact_enumeration():
    """For every n and split, 1 − s² / (largest s² any n outcomes can show), by brute force."""
    for n in range(2, 8):
        biggest = max(np.var(v, ddof=1) for v in itertools.product([0.0, 1.0], repeat=n))
        for c in range(n + 1):
            frame = pl.DataFrame({"model": "m", "task": "t", "success": [True] * c + [False] * (n - c)})
            row = R.task_consistency(frame).row(0, named=True)
            s2 = np.var([1.0] * c + [0.0] * (n - c), ddof=1)
            assert row["outcome_variance"] == pytest.approx(s2)
            assert row["outcome_consistency"] == pytest.approx(1 - s2 / biggest)


def test_resource_consistency_is_the_mean_cv_over_tasks():
    frame = _runs(
        {"m": {"t1": [(1, 0.01), (0, 0.03)], "t2": [(1, 0.02), (1, 0.02), (0, 0.05)], "t3": [(0, 0.01)]}}
    )
    out = R.consistency(frame).row(0, named=True)
    cv = lambda x: np.std(x, ddof=1) / np.mean(x)
    assert out["cost_cv"] == pytest.approx(np.mean([cv([0.01, 0.03]), cv([0.02, 0.02, 0.05])]))
    assert out["cost_tasks"] == 2 and out["tasks_repeated"] == 2
    assert out["tokens_cv"] == pytest.approx(np.mean([cv([1000, 1010]), cv([1000, 1010, 1020])]))
    assert out["outcome_consistency"] == pytest.approx(np.mean([0.0, 1 - (1 / 3) / (1 / 3)]))


# ------------------------------------------------------------------ the headline
def _two_by_tasks(rates: dict[str, list[float]], n: int = 20) -> pl.DataFrame:
    rows = []
    for m, per_task in rates.items():
        for t, p in enumerate(per_task):
            s = round(p * n)
            rows += [(m, f"t{t}", i < s, 1.0) for i in range(n)]
    return pl.DataFrame(rows, schema=["model", "task", "success", "best_reward"], orient="row")


def test_a_tie_never_names_a_leader():
    frame = _two_by_tasks({"a": [0.75, 0.75], "b": [0.75, 0.75]})
    st = L.leading_system(frame, reps=200)
    assert st.leader is None and sorted(st.top) == ["a", "b"] and st.tests == 1


def test_a_clear_lead_is_named_and_each_test_is_holm_adjusted_as_statsmodels_does():
    frame = _two_by_tasks({"a": [0.9, 0.95, 0.9], "b": [0.2, 0.1, 0.15], "c": [0.3, 0.25, 0.2]})
    st = L.leading_system(frame, reps=200)
    assert st.leader == "a" and st.top == ["a"]
    raw = st.comparisons["p_value"].to_numpy()
    want = multipletests(raw, method="holm")[1]
    np.testing.assert_allclose(st.comparisons["p_adjusted"].to_numpy(), want, rtol=1e-12)
    assert (st.comparisons["p_adjusted"] < 0.05).all()


def test_overlapping_top_systems_are_named_together():
    frame = _two_by_tasks({"a": [0.6, 0.65], "b": [0.55, 0.6], "c": [0.05, 0.0]})
    st = L.leading_system(frame, reps=200)
    assert st.leader is None and st.top == ["a", "b"]  # c is significantly worse: not in the top
    assert st.rates["a"] > st.rates["b"]
    one = L.leading_system(frame.filter(pl.col("model") == "a"), reps=100)
    assert one.leader is None and one.top == ["a"] and one.tests == 0
