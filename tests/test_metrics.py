"""Metric functions checked against independent computations.

pass@k / pass^k against exact subset enumeration, Wilson against the root of
its defining quadratic, IQM against scipy.stats.trim_mean, frame metrics
against hand computation on data small enough to check by eye.
"""

from __future__ import annotations

import itertools
import math
from datetime import datetime, timedelta
from fractions import Fraction

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from fle_core.errors import MetricError
from fle_core.stats.metrics import (
    group_metrics,
    iqm,
    model_metrics,
    pass_at_k,
    pass_at_k_array,
    pass_hat_k,
    pass_hat_k_array,
    summarize_trajectories,
    wilson_interval,
)
from fle_core.tasks import TaskRegistry


# ------------------------------------------------------------ pass@k / pass^k
def _enumerate(n: int, c: int, k: int) -> tuple[Fraction, Fraction]:
    """Exact P(any success) and P(all succeed) over all k-subsets of n trials."""
    trials = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    any_ok = sum(1 for s in subsets if any(trials[i] for i in s))
    all_ok = sum(1 for s in subsets if all(trials[i] for i in s))
    return Fraction(any_ok, len(subsets)), Fraction(all_ok, len(subsets))


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_and_hat_match_subset_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            want_any, want_all = _enumerate(n, c, k)
            assert pass_at_k(n, c, k) == pytest.approx(float(want_any), abs=1e-12)
            assert pass_hat_k(n, c, k) == pytest.approx(float(want_all), abs=1e-12)
    cs = np.arange(n + 1)
    for k in range(1, n + 1):
        vec = pass_at_k_array(np.full(n + 1, n), cs, k)
        hat = pass_hat_k_array(np.full(n + 1, n), cs, k)
        assert vec == pytest.approx([float(_enumerate(n, c, k)[0]) for c in cs], abs=1e-12)
        assert hat == pytest.approx([float(_enumerate(n, c, k)[1]) for c in cs], abs=1e-12)


def test_pass_at_k_edge_cases():
    assert math.isnan(pass_at_k(3, 1, 5))  # n < k: undefined
    assert math.isnan(pass_hat_k(3, 3, 5))
    assert pass_at_k(10, 0, 3) == 0.0  # c = 0
    assert pass_at_k(10, 10, 3) == 1.0  # c = n
    assert pass_hat_k(10, 10, 3) == 1.0
    assert pass_hat_k(10, 2, 3) == 0.0  # c < k
    assert pass_at_k(10, 8, 3) == 1.0  # n - c < k
    out = pass_at_k_array([2, 8, 8], [1, 0, 8], 3)
    assert math.isnan(out[0]) and out[1] == 0.0 and out[2] == 1.0
    for bad in [(3, 4, 1), (3, -1, 1), (3, 1, 0)]:
        with pytest.raises(MetricError):
            pass_at_k(*bad)
    with pytest.raises(MetricError):
        pass_at_k_array([3], [4], 1)


def test_pass_at_k_is_stable_for_large_n():
    """The product form stays exact where binomials would overflow floats."""
    n, c, k = 2000, 3, 100
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-10)
    assert pass_at_k_array([n], [c], k)[0] == pytest.approx(float(exact), rel=1e-10)
    hat = Fraction(math.comb(1500, 50), math.comb(n, 50))
    assert pass_hat_k(n, 1500, 50) == pytest.approx(float(hat), rel=1e-10)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))))
def test_pass_at_k_properties(nc):
    n, c = nc
    ks = list(range(1, min(n, 40) + 1))
    values = [pass_at_k(n, c, k) for k in ks]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(values))  # monotone in k
    assert values[0] == pytest.approx(c / n, abs=1e-12)  # pass@1 = c/n
    assert pass_at_k_array([n] * len(ks), [c] * len(ks), 1)[0] == pytest.approx(c / n)
    hats = [pass_hat_k(n, c, k) for k in ks]
    assert all(0.0 <= h <= v + 1e-12 for h, v in zip(hats, values, strict=True))  # pass^k <= pass@k
    assert all(a + 1e-12 >= b for a, b in itertools.pairwise(hats))  # decreasing in k


# ------------------------------------------------------------------- Wilson
def _wilson_by_quadratic(s: int, n: int, z: float) -> tuple[float, float]:
    """Wilson bounds are the roots p of (p̂ - p)² = z² p (1 - p) / n."""
    ph = s / n
    a = 1 + z * z / n
    b = -(2 * ph + z * z / n)
    c = ph * ph
    disc = math.sqrt(max(b * b - 4 * a * c, 0.0))
    return (-b - disc) / (2 * a), (-b + disc) / (2 * a)


@pytest.mark.parametrize("s,n", [(0, 10), (1, 10), (5, 10), (10, 10), (37, 120), (1, 1), (3, 1000)])
def test_wilson_matches_closed_form(s, n):
    z = stats.norm.ppf(0.975)
    lo, hi = wilson_interval(s, n)
    want = _wilson_by_quadratic(s, n, z)
    assert lo == pytest.approx(want[0], abs=1e-12)
    assert hi == pytest.approx(want[1], abs=1e-12)
    assert lo <= s / n <= hi


def test_wilson_vectorized_and_edges():
    lo, hi = wilson_interval(np.array([0, 5]), np.array([0, 10]))
    assert math.isnan(lo[0]) and math.isnan(hi[0])
    assert (lo[1], hi[1]) == pytest.approx(wilson_interval(5, 10))
    lo99, hi99 = wilson_interval(5, 10, z=stats.norm.ppf(0.995))
    assert lo99 < lo[1] and hi99 > hi[1]
    with pytest.raises(MetricError):
        wilson_interval(11, 10)


# ---------------------------------------------------------------------- IQM
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 13, 100, 101])
def test_iqm_matches_scipy_trim_mean(size):
    x = np.random.default_rng(size).normal(size=size) * 10
    assert iqm(x) == pytest.approx(stats.trim_mean(x, 0.25), abs=1e-12)


def test_iqm_ignores_non_finite():
    x = [1.0, 2.0, 3.0, 4.0, 100.0]
    assert iqm([*x, np.nan, np.inf, -np.inf]) == pytest.approx(stats.trim_mean(x, 0.25))
    assert math.isnan(iqm([]))
    assert math.isnan(iqm([np.nan]))


# ---------------------------------------------------------------- summaries
T0 = datetime(2026, 1, 1, 12, 0, 0)


def _step(
    version,
    depth,
    value,
    *,
    task="iron_ore_throughput",
    model="gpt-4o",
    id_=None,
    instance=0,
    tokens=(10, 5),
    error=False,
    score=None,
    sweep="sw1",
    simulated=False,
):
    return {
        "source": "local",
        "id": id_,
        "version": version,
        "instance": instance,
        "depth": float(depth),
        "value": value,
        "model": model,
        "task": task,
        "sweep_id": sweep,
        "error_occurred": error,
        "production_score": score,
        "simulated": simulated,
        "prompt_tokens": tokens[0],
        "completion_tokens": tokens[1],
        "total_tokens": tokens[0] + tokens[1],
        "created_at": T0 + timedelta(seconds=10 * depth + version),
    }


def _frame(rows):
    for i, r in enumerate(rows):
        if r["id"] is None:
            r["id"] = i + 1
    return pl.DataFrame(rows, schema_overrides={"value": pl.Float64, "production_score": pl.Float64})


@pytest.fixture
def steps():
    rows = [
        # v1: iron_ore (quota 16): reaches 17 at depth 2, ends at 3; NaN at depth 3 is ignored
        _step(1, 0, 4.0),
        _step(1, 1, 9.0),
        _step(1, 2, 17.0, error=True),
        _step(1, 3, np.nan),
        _step(1, 4, 3.0),
        # v2: iron_ore, never reaches 16; inf ignored for best
        _step(2, 0, 1.0),
        _step(2, 1, np.inf),
        _step(2, 2, 15.9),
        # v3: crude_oil (quota 250), exactly 250 counts as success
        _step(3, 0, 100.0, task="crude_oil_throughput"),
        _step(3, 1, 250.0, task="crude_oil_throughput"),
        # v4: open_play: no success; production score is the last non-null one
        _step(4, 0, 5.0, task="open_play", score=10.0),
        _step(4, 1, 6.0, task="open_play", score=20.0),
        _step(4, 2, 7.0, task="open_play", score=None),
        # v5: unknown task, mixed models (mode = gpt-4o, 2 of 3), simulated
        _step(5, 0, 99.0, task="mystery", model="claude"),
        _step(5, 1, 1.0, task="mystery"),
        _step(5, 2, 2.0, task="mystery", simulated=True),
    ]
    return _frame(rows)


def test_summaries_by_hand(steps):
    s = summarize_trajectories(steps).sort("version")
    assert s.height == 5
    r = {row["version"]: row for row in s.iter_rows(named=True)}
    v1 = r[1]
    assert v1["steps"] == 5 and v1["final_reward"] == 3.0 and v1["best_reward"] == 17.0
    assert v1["quota"] == 16.0 and v1["success"] is True and v1["first_success_step"] == 2.0
    assert v1["total_tokens"] == 75 and v1["prompt_tokens"] == 50 and v1["completion_tokens"] == 25
    assert v1["error_occurred"] is True and v1["duration_s"] == 40.0
    assert v1["normalized_reward"] == pytest.approx(17 / 16)
    assert r[2]["best_reward"] == 15.9 and r[2]["success"] is False
    assert r[2]["first_success_step"] is None and r[2]["final_reward"] == 15.9
    assert r[3]["success"] is True and r[3]["quota"] == 250.0 and r[3]["first_success_step"] == 1.0
    assert r[4]["quota"] is None and r[4]["success"] is None and r[4]["production_score"] == 20.0
    assert r[5]["model"] == "gpt-4o" and r[5]["quota"] is None and r[5]["success"] is None
    assert r[5]["simulated"] is True and r[1]["simulated"] is False
    assert list(s.columns)[:3] == ["source", "version", "instance"]


def test_summaries_do_not_depend_on_row_order(steps):
    ordered = summarize_trajectories(steps)
    shuffled = summarize_trajectories(steps.sample(fraction=1.0, shuffle=True, seed=7))
    assert shuffled.equals(ordered)


def test_contiguous_but_unsorted_trajectories_and_interleaved_ones(steps):
    ordered = summarize_trajectories(steps)
    by_version_desc = steps.sort(["version", "depth", "id"], descending=[True, False, False])
    assert summarize_trajectories(by_version_desc).equals(ordered)
    interleaved = pl.concat([steps.filter(pl.col("depth") < 1), steps.filter(pl.col("depth") >= 1)])
    assert summarize_trajectories(interleaved).equals(ordered)  # v1 appears in two runs


def test_final_reward_ties_on_depth_broken_by_id():
    rows = [_step(1, 0, 1.0, id_=10), _step(1, 1, 5.0, id_=30), _step(1, 1, 7.0, id_=20)]
    assert summarize_trajectories(_frame(rows))["final_reward"][0] == 5.0


def test_all_non_finite_values_give_null_rewards_and_failure():
    rows = [_step(1, 0, np.nan), _step(1, 1, np.inf), _step(1, 2, None)]
    s = summarize_trajectories(_frame(rows))
    assert s["best_reward"][0] is None and s["final_reward"][0] is None
    assert s["success"][0] is False


def test_success_threshold_and_registry_overrides(steps):
    s = summarize_trajectories(steps, success_threshold=5.0).sort("version")
    assert s["success"].to_list() == [True, True, True, True, True]
    assert s["quota"].to_list() == [5.0] * 5
    reg = TaskRegistry.from_config({"iron_ore_throughput": {"quota": 16.5}, "mystery": {"quota": 50}})
    s2 = summarize_trajectories(steps, reg).sort("version")
    assert s2["success"].to_list() == [True, False, True, None, True]
    s3 = summarize_trajectories(steps, {"iron_ore_throughput": 18.0}).sort("version")
    assert s3["success"].to_list() == [False, False, None, None, None]


def test_summaries_empty_and_bad_input(steps):
    empty = summarize_trajectories(steps.head(0))
    assert empty.height == 0 and "best_reward" in empty.columns
    with pytest.raises(MetricError):
        summarize_trajectories(steps.drop("value"))
    with pytest.raises(MetricError):
        summarize_trajectories(steps.with_columns(pl.lit("lots").alias("value")))
    minimal = summarize_trajectories(steps.select("version", "instance", "value"))
    assert minimal.height == 5 and minimal["source"].null_count() == 5


# ------------------------------------------------------------- group metrics
def _summaries(cells: dict[tuple[str, str], list]) -> pl.DataFrame:
    """cells: (model, task) -> list of (best_reward, success, tokens, steps)."""
    rows = []
    for (model, task), trials in cells.items():
        for i, (reward, success, tokens, steps_) in enumerate(trials):
            rows.append(
                {
                    "model": model,
                    "task": task,
                    "best_reward": reward,
                    "success": success,
                    "total_tokens": tokens,
                    "steps": steps_,
                    "first_success_step": 2.0 if success else None,
                    "error_occurred": i == 0,
                    "simulated": False,
                    "normalized_reward": None if reward is None else reward / 16.0,
                }
            )
    return pl.DataFrame(
        rows,
        schema_overrides={"best_reward": pl.Float64, "success": pl.Boolean, "first_success_step": pl.Float64},
    )


CELLS = {
    ("a", "t1"): [
        (20.0, True, 100, 10),
        (3.0, False, 50, 64),
        (16.0, True, 80, 20),
        (1.0, False, 40, 64),
        (np.nan, False, 10, 64),
    ],
    ("a", "t2"): [(0.0, False, 10, 64), (0.0, False, 30, 64)],
    ("b", "t1"): [(17.0, True, 10, 5)] * 8,
}


def test_group_metrics_by_hand():
    g = group_metrics(_summaries(CELLS), k_values=(1, 3))
    a1 = g.filter((pl.col("model") == "a") & (pl.col("task") == "t1")).row(0, named=True)
    assert a1["n"] == 5 and a1["successes"] == 2 and a1["success_rate"] == 0.4
    lo, hi = wilson_interval(2, 5)
    assert (a1["success_ci_low"], a1["success_ci_high"]) == pytest.approx((lo, hi))
    assert a1["pass_at_1"] == pytest.approx(0.4)
    assert a1["pass_at_3"] == pytest.approx(float(_enumerate(5, 2, 3)[0]))
    assert a1["pass_hat_3"] == 0.0
    finite = [20.0, 3.0, 16.0, 1.0]
    assert a1["reward_mean"] == pytest.approx(np.mean(finite))
    assert a1["reward_median"] == pytest.approx(np.median(finite))
    assert a1["reward_std"] == pytest.approx(np.std(finite, ddof=1))
    assert (a1["reward_min"], a1["reward_max"]) == (1.0, 20.0)
    assert a1["reward_iqm"] == pytest.approx(stats.trim_mean(finite, 0.25))
    assert a1["tokens_mean"] == pytest.approx(56.0)
    assert a1["tokens_per_success"] == pytest.approx(90.0)
    assert a1["mean_steps"] == pytest.approx(np.mean([10, 64, 20, 64, 64]))
    assert a1["mean_steps_to_success"] == 2.0 and a1["error_rate"] == pytest.approx(0.2)
    a2 = g.filter((pl.col("model") == "a") & (pl.col("task") == "t2")).row(0, named=True)
    assert a2["pass_at_1"] == 0.0 and a2["pass_at_3"] is None  # n = 2 < 3: lacks trials
    assert a2["tokens_per_success"] is None and a2["reward_std"] == 0.0
    b1 = g.filter(pl.col("model") == "b").row(0, named=True)
    assert b1["pass_at_3"] == 1.0 and b1["pass_hat_3"] == 1.0 and b1["success_ci_high"] == 1.0


def test_group_metrics_with_other_grouping_and_empty():
    s = _summaries(CELLS)
    by_model = group_metrics(s, by=("model",), k_values=(1,))
    assert by_model["n"].to_list() == [7, 8]
    assert by_model["success_rate"].to_list() == pytest.approx([2 / 7, 1.0])
    empty = group_metrics(s.head(0))
    assert empty.height == 0 and "pass_at_8" in empty.columns
    with pytest.raises(MetricError):
        group_metrics(s, k_values=(0,))
    with pytest.raises(MetricError):
        group_metrics(s.drop("success"))
    with pytest.raises(MetricError):
        group_metrics(s, reward_column="task")


def test_group_metrics_open_play_cells_have_no_success():
    s = _summaries({("a", "open_play"): [(5.0, None, 1, 1), (6.0, None, 1, 1)]})
    g = group_metrics(s)
    row = g.row(0, named=True)
    assert row["n"] == 2 and row["n_scored"] == 0
    assert row["successes"] is None and row["success_rate"] is None and row["pass_at_1"] is None
    assert row["reward_mean"] == 5.5


def test_model_metrics_average_pass_at_k_over_tasks_with_enough_trials():
    m = model_metrics(_summaries(CELLS), k_values=(1, 3, 8))
    a = m.filter(pl.col("model") == "a").row(0, named=True)
    assert a["n_tasks"] == 2 and a["n"] == 7 and a["successes"] == 2
    assert a["success_rate"] == pytest.approx(2 / 7)
    assert a["success_rate_task_mean"] == pytest.approx((0.4 + 0.0) / 2)
    assert a["pass_at_1"] == pytest.approx((0.4 + 0.0) / 2)
    assert a["pass_at_3"] == pytest.approx(float(_enumerate(5, 2, 3)[0]))  # t2 lacks trials
    assert a["pass_at_3_tasks"] == 1 and a["tasks_lacking_3"] == ["t2"]
    assert a["pass_at_8"] is None and a["tasks_lacking_8"] == ["t1", "t2"]
    assert a["reward_iqm"] == pytest.approx(stats.trim_mean([20.0, 3.0, 16.0, 1.0, 0.0, 0.0], 0.25))
    b = m.filter(pl.col("model") == "b").row(0, named=True)
    assert b["pass_at_8"] == 1.0 and b["tasks_lacking_8"] == [] and b["n_tasks"] == 1


def test_end_to_end_steps_to_model_metrics(steps):
    s = summarize_trajectories(steps)
    m = model_metrics(s, k_values=(1,))
    gpt = m.filter(pl.col("model") == "gpt-4o").row(0, named=True)
    # scored: v1 (success), v2 (fail), v3 (success); v4 open_play and v5 unknown unscored
    assert gpt["n"] == 5 and gpt["n_scored"] == 3 and gpt["successes"] == 2
    assert gpt["pass_at_1"] == pytest.approx((0.5 + 1.0) / 2)  # iron_ore 1/2, crude_oil 1/1


def test_every_metric_column_is_defined_in_docs():
    """docs/metrics.md must define every column the metric frames produce."""
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[1] / "docs" / "metrics.md").read_text()
    s = _summaries(CELLS)
    cols = set(group_metrics(s).columns) | set(model_metrics(s).columns)
    cols |= set(summarize_trajectories(_frame([_step(1, 0, 1.0)])).columns)
    missing = []
    for c in sorted(cols):
        generic = c
        for k in (1, 3, 5, 8):
            generic = generic.replace(f"_{k}", "_{k}")
        if f"`{c}`" not in docs and f"`{generic}`" not in docs:
            missing.append(c)
    assert missing == [], f"undocumented metric columns: {missing}"


def test_mode_columns_most_common_non_null_with_ties_to_smallest():
    rows = [
        _step(1, 0, 1.0, model=None),
        _step(1, 1, 1.0, model="zeta"),
        _step(1, 2, 1.0, model="beta"),
        _step(1, 3, 1.0, model="beta"),  # beta 2 > zeta 1
        _step(2, 0, 1.0, model=None),
        _step(2, 1, 1.0, model="solo"),  # nulls ignored
        _step(3, 0, 1.0, model="b"),
        _step(3, 1, 1.0, model="a"),  # tie -> smallest
        _step(4, 0, 1.0, model="x", sweep=None),
        _step(4, 1, 1.0, model="y", sweep=None),
        _step(4, 2, 1.0, model="x", sweep=None),  # x y x -> x
        _step(5, 0, 1.0, model=None, task=None, sweep=None),
    ]  # all null
    s = summarize_trajectories(_frame(rows)).sort("version")
    assert s["model"].to_list() == ["beta", "solo", "a", "x", None]
    assert s["sweep_id"].to_list() == ["sw1", "sw1", "sw1", None, None]
    assert s["task"][4] is None and s["quota"][4] is None
