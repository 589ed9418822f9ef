"""Variance components, ICC, design effect, flip rate and the planner, against independent
references: statsmodels' random-intercept MixedLM (REML) and cluster-robust OLS, scipy's
one-way ANOVA, hand computation, and brute-force search for the planner's minimality."""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats

from fle_core.errors import MetricError
from fle_core.stats import variance as V
from fle_core.stats.compare import trials_needed


def _frame(per_task: dict[str, list[float]], model: str = "m") -> pl.DataFrame:
    rows = [(model, t, v) for t, vs in per_task.items() for v in vs]
    return pl.DataFrame(rows, schema=["model", "task", "success"], orient="row")


def _binary(seed: int, tasks: int, epochs, spread: float = 2.0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    per = {}
    for t in range(tasks):
        p = 1 / (1 + math.exp(-rng.normal(0, spread)))
        k = epochs if isinstance(epochs, int) else int(rng.integers(*epochs))
        per[f"t{t:02d}"] = [float(rng.random() < p) for _ in range(k)]
    return _frame(per)


def test_the_docs_worked_example_by_hand():
    frame = _frame({"A": [1, 1, 1, 1], "B": [1, 1, 0, 0], "C": [0, 0, 0, 0]})
    r = V.variance_components(frame).row(0, named=True)
    # MSB = 4·(0.25 + 0 + 0.25)/2 = 1, MSW = 1/9, k0 = 4
    assert r["var_within"] == pytest.approx(1 / 9) and r["var_between"] == pytest.approx((1 - 1 / 9) / 4)
    assert (
        r["icc"] == pytest.approx(2 / 3)
        and r["flip_rate"] == pytest.approx(1 / 3)
        and r["tasks_flipping"] == 1
    )
    # design effect = (3/2 · 8/144) / (s²/12), s² = 12/11 · 1/4
    assert r["design_effect"] == pytest.approx((1.5 * 8 / 144) / ((12 / 11 * 0.25) / 12))


@pytest.mark.parametrize("seed", range(5))
def test_balanced_components_equal_statsmodels_reml(seed):
    frame = _binary(seed, tasks=16, epochs=6)
    r = V.variance_components(frame).row(0, named=True)
    data = frame.to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on 0/1 data
        fit = smf.mixedlm("success ~ 1", data, groups=data["task"]).fit(reml=True)
    assert r["var_between"] > 0.01  # inside the space, where REML equals the ANOVA estimates
    assert r["var_between"] == pytest.approx(float(fit.cov_re.iloc[0, 0]), rel=1e-4)
    assert r["var_within"] == pytest.approx(float(fit.scale), rel=1e-4)


@pytest.mark.parametrize("seed", range(5))
def test_mean_squares_match_scipys_one_way_anova_with_unequal_tasks(seed):
    frame = _binary(seed + 50, tasks=10, epochs=(2, 12))
    groups = [g["success"].to_numpy() for _, g in frame.group_by("task")]
    f_stat = stats.f_oneway(*groups).statistic
    r = V.variance_components(frame).row(0, named=True)
    n = np.array([g.size for g in groups], float)
    big_n, t = n.sum(), len(groups)
    k0 = (big_n - (n * n).sum() / big_n) / (t - 1)
    msw = r["var_within"]
    msb = msw * f_stat
    assert r["var_between"] == pytest.approx(max(0.0, (msb - msw) / k0), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_design_effect_equals_statsmodels_cluster_robust_over_ordinary_variance(seed):
    frame = _binary(seed + 9, tasks=12, epochs=(2, 10))
    y = frame["success"].to_numpy()
    groups = frame["task"].rank("dense").cast(int).to_numpy()
    ols = sm.OLS(y, np.ones_like(y))
    robust = ols.fit(cov_type="cluster", cov_kwds={"groups": groups}).bse[0]
    ordinary = ols.fit().bse[0]
    r = V.variance_components(frame).row(0, named=True)
    assert r["design_effect"] == pytest.approx(float(robust / ordinary) ** 2, rel=1e-9)


def test_undefined_pieces_are_null_not_zero():
    one_task = V.variance_components(_frame({"A": [1, 0, 1]})).row(0, named=True)
    assert one_task["var_between"] is None and one_task["icc"] is None and one_task["design_effect"] is None
    assert one_task["var_within"] == pytest.approx(1 / 3)
    single_epochs = V.variance_components(_frame({"A": [1], "B": [0], "C": [1]})).row(0, named=True)
    assert single_epochs["var_within"] is None and single_epochs["flip_rate"] is None
    with pytest.raises(MetricError, match="lacks column"):
        V.variance_components(pl.DataFrame({"model": ["m"], "success": [True]}))


@pytest.mark.parametrize("seed", range(6))
def test_the_plan_is_the_smallest_design_that_reaches_the_target(seed):
    rng = np.random.default_rng(seed)
    vb, vw = float(rng.uniform(0.001, 0.05)), float(rng.uniform(0.05, 0.25))
    t, k = int(rng.integers(5, 40)), float(rng.integers(2, 10))
    se = float(rng.uniform(0.01, 0.06))
    tasks = V.tasks_needed(vb, vw, k, se)
    assert V.suite_variance(vb, vw, tasks, k) <= se * se * (1 + 1e-9)
    assert tasks == 1 or V.suite_variance(vb, vw, tasks - 1, k) > se * se
    epochs = V.epochs_needed(vb, vw, t, se)
    if math.isinf(epochs):  # not reachable: even endless epochs leave σ²_b/T above the target
        assert vb / t >= se * se
    else:
        assert V.suite_variance(vb, vw, t, epochs) <= se * se * (1 + 1e-9)
        assert epochs == 1 or V.suite_variance(vb, vw, t, epochs - 1) > se * se


def test_plan_frame_for_a_half_width_and_a_difference():
    frame = _frame({"A": [1, 1, 1, 1], "B": [1, 1, 0, 0], "C": [0, 0, 0, 0]})
    parts = V.variance_components(frame)
    half = V.plan(parts, half_width=0.1).row(0, named=True)
    assert half["se_target"] == pytest.approx(0.1 / stats.norm.ppf(0.975))
    assert half["epochs_needed"] == math.inf and half["tasks_needed"] == 97 and half["more_tasks"] == 94
    assert half["floor_se"] == pytest.approx(math.sqrt((1 - 1 / 9) / 4 / 3))
    diff = V.plan(parts, difference=0.2).row(0, named=True)
    want = 0.2 / ((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * math.sqrt(2))
    assert diff["se_target"] == pytest.approx(want)
    with pytest.raises(MetricError, match="exactly one target"):
        V.plan(parts)
    curves = V.plan_curves(parts)
    now = curves.filter(pl.col("current"))
    assert set(now["axis"]) == {"epochs", "tasks"}
    assert now["half_width"].to_list() == pytest.approx([stats.norm.ppf(0.975) * half["se_now"]] * 2)


def test_trials_needed_takes_a_design_effect():
    base = trials_needed(0.2, 0.4)
    assert base == 82
    assert trials_needed(0.2, 0.4, design_effect=2.0) == 163  # ⌈2 × 81.2…⌉, not 2 × 82
    assert trials_needed(0.2, 0.4, design_effect=1.0) == base
    with pytest.raises(MetricError, match="design_effect"):
        trials_needed(0.2, 0.4, design_effect=0)
