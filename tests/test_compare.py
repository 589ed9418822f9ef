"""Comparisons against scipy.stats, published values and exact enumeration."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import polars as pl
import pytest
from scipy import stats

from fle_core.errors import MetricError
from fle_core.stats import compare as C


# --------------------------------------------------------------- corrections
def test_holm_by_hand():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06
    assert C.holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert C.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


@pytest.mark.parametrize("seed", range(5))
def test_benjamini_hochberg_matches_scipy(seed):
    p = np.random.default_rng(seed).random(37) ** 3
    assert C.benjamini_hochberg(p) == pytest.approx(stats.false_discovery_control(p, method="bh"))


def test_corrections_keep_nan_and_validate_name():
    out = C.adjust_pvalues([0.01, np.nan, 0.02], "holm")
    assert math.isnan(out[1]) and out[0] == pytest.approx(0.02)  # m = 2, not 3
    assert C.adjust_pvalues([0.2], "none")[0] == 0.2
    with pytest.raises(MetricError):
        C.adjust_pvalues([0.1], "bonferonni")


# ------------------------------------------------------------- two-sample tests
def test_success_test_matches_fisher_and_newcombe():
    a = np.array([1.0] * 56 + [0.0] * 14)  # 56/70
    b = np.array([1.0] * 48 + [0.0] * 32)  # 48/80
    out = C.success_test(a, b)
    assert out["p_value"] == pytest.approx(stats.fisher_exact([[56, 14], [48, 32]]).pvalue)
    assert out["diff"] == pytest.approx(0.2)
    # Newcombe (1998), Statistics in Medicine 17:873, example (a), method 10: 0.0524 to 0.3339
    assert out["diff_ci_low"] == pytest.approx(0.0524, abs=5e-5)
    assert out["diff_ci_high"] == pytest.approx(0.3339, abs=5e-5)
    assert out["effect_size"] == pytest.approx(2 * math.asin(math.sqrt(0.8)) - 2 * math.asin(math.sqrt(0.6)))


def test_value_test_matches_scipy():
    rng = np.random.default_rng(3)
    a, b = rng.normal(1.0, 2.0, 15), rng.normal(0.0, 1.0, 9)
    mw = C.value_test(a, b, "mann_whitney_u")
    assert mw["p_value"] == pytest.approx(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    welch = C.value_test(a, b, "welch_t")
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert welch["p_value"] == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval(0.95)
    assert (welch["diff_ci_low"], welch["diff_ci_high"]) == pytest.approx((ci.low, ci.high))
    wins = sum(int(x > y) - int(x < y) for x in a.tolist() for y in b.tolist())
    assert mw["effect_size"] == pytest.approx(wins / (a.size * b.size))
    assert C.hodges_lehmann(a, b) == pytest.approx(np.median([x - y for x in a for y in b]))


def test_value_test_degenerate_inputs():
    same = C.value_test(np.array([2.0, 2.0]), np.array([2.0, 2.0, 2.0]), "mann_whitney_u")
    assert same["p_value"] == 1.0 and same["effect_size"] == 0.0
    tiny = C.value_test(np.array([1.0]), np.array([2.0, 3.0]), "welch_t")
    assert tiny["p_value"] is None and tiny["diff_ci_low"] is None
    # complete separation with zero variance (1,1 vs 2,2): t = -inf, p = 0, CI = [d, d], as scipy
    for test, equal_var in (("welch_t", False), ("student_t", True)):
        flat = C.value_test(np.array([1.0, 1.0]), np.array([2.0, 2.0]), test)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # scipy: "precision loss" on constants
            want = stats.ttest_ind([1.0, 1.0], [2.0, 2.0], equal_var=equal_var)
        assert flat["p_value"] == float(want.pvalue) == 0.0
        assert (flat["diff_ci_low"], flat["diff_ci_high"]) == (-1.0, -1.0)
    flat = C.value_test(np.array([1.0, 1.0, 1.0]), np.array([2.0, 2.0, 2.0]), "mann_whitney_u")
    assert flat["p_value"] == pytest.approx(stats.mannwhitneyu([1, 1, 1], [2, 2, 2]).pvalue)
    assert C.value_test(np.array([1.0, 1.0]), np.array([1.0, 1.0]), "welch_t")["p_value"] == 1.0
    with pytest.raises(MetricError):
        C.value_test(np.array([1.0]), np.array([2.0]), "z_test")


def test_cmh_single_stratum_is_pearson_chi2_scaled():
    a = np.array([1.0] * 12 + [0.0] * 8)
    b = np.array([1.0] * 5 + [0.0] * 15)
    chi2 = stats.chi2_contingency([[12, 8], [5, 15]], correction=False)[0]
    n = 40
    want = stats.chi2.sf(chi2 * (n - 1) / n, 1)
    assert C.cochran_mantel_haenszel([(a, b)]) == pytest.approx(want)


def test_cmh_multi_strata_via_hypergeometric_moments():
    rng = np.random.default_rng(8)
    strata = [
        ((rng.random(n) < 0.6).astype(float), (rng.random(m) < 0.4).astype(float))
        for n, m in [(10, 12), (7, 9), (20, 5)]
    ]
    num, var = 0.0, 0.0
    for xa, xb in strata:  # a ~ Hypergeom(M=N total, n=successes, N=|A|)
        total, succ = xa.size + xb.size, xa.sum() + xb.sum()
        hg = stats.hypergeom(total, succ, xa.size)
        num += xa.sum() - hg.mean()
        var += hg.var()
    assert C.cochran_mantel_haenszel(strata) == pytest.approx(stats.chi2.sf(num**2 / var, 1))
    assert C.cochran_mantel_haenszel([(np.ones(3), np.ones(4))]) == 1.0


def test_van_elteren_single_stratum_is_asymptotic_mann_whitney():
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 6, 14).astype(float), rng.integers(1, 7, 11).astype(float)
    want = stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic", use_continuity=False).pvalue
    assert C.van_elteren([(a, b)]) == pytest.approx(want)


# ------------------------------------------------------- pairwise comparisons
def _exact_stratified_brute(tables) -> float:
    """Mantel-Haenszel exact p-value by enumerating every combination of strata outcomes.

    Each stratum's A-successes are hypergeometric given its margins (scipy);
    the two-sided p-value sums P(Σ a = t) over the sums t no more likely than
    the observed sum.
    """
    dist = {0: 1.0}
    observed = 0
    for s1, n1, s2, n2 in tables:
        hg = stats.hypergeom(n1 + n2, s1 + s2, n1)
        support = range(max(0, s1 + s2 - n2), min(n1, s1 + s2) + 1)
        nxt: dict[int, float] = {}
        for total, p in dist.items():
            for a in support:
                nxt[total + a] = nxt.get(total + a, 0.0) + p * hg.pmf(a)
        dist, observed = nxt, observed + s1
    p_obs = dist[observed]
    return min(1.0, sum(p for p in dist.values() if p <= p_obs * (1 + 1e-7)))


@pytest.mark.parametrize("seed", range(4))
def test_exact_stratified_matches_enumeration_and_fisher(seed):
    from fle_core.stats import _kernels as F

    rng = np.random.default_rng(seed)
    tables = []
    for _ in range(int(rng.integers(2, 5))):
        n1, n2 = (int(v) for v in rng.integers(1, 9, 2))
        tables.append((int(rng.integers(0, n1 + 1)), n1, int(rng.integers(0, n2 + 1)), n2))
    assert F.exact_stratified_p(tables) == pytest.approx(_exact_stratified_brute(tables), rel=1e-9)
    s1, n1, s2, n2 = tables[0]
    want = stats.fisher_exact([[s1, n1 - s1], [s2, n2 - s2]]).pvalue
    assert F.exact_stratified_p(tables[:1]) == pytest.approx(want, rel=1e-9)
    assert F.fisher_exact_p(s1, n1, s2, n2) == pytest.approx(want, rel=1e-9)


def test_fisher_kernel_matches_scipy_over_many_tables():
    from fle_core.stats import _kernels as F

    rng = np.random.default_rng(11)
    for _ in range(300):
        n1, n2 = (int(v) for v in rng.integers(1, 150, 2))
        s1, s2 = int(rng.integers(0, n1 + 1)), int(rng.integers(0, n2 + 1))
        want = stats.fisher_exact([[s1, n1 - s1], [s2, n2 - s2]]).pvalue
        assert F.fisher_exact_p(s1, n1, s2, n2) == pytest.approx(want, rel=1e-9, abs=1e-300)
    # symmetric table: the mirrored outcome is equally likely and must be counted
    assert F.fisher_exact_p(3, 4, 1, 4) == pytest.approx(stats.fisher_exact([[3, 1], [1, 3]]).pvalue)


def _summaries(spec: dict[str, dict[str, tuple[int, int]]], reward_shift=None) -> pl.DataFrame:
    """spec: model -> task -> (successes, n); reward = 20 for success, 5 otherwise."""
    rows = []
    for model, tasks in spec.items():
        for task, (s, n) in tasks.items():
            for i in range(n):
                ok = i < s
                r = (20.0 if ok else 5.0) + (reward_shift or {}).get(model, 0.0) + 0.01 * i
                rows.append(
                    {
                        "model": model,
                        "task": task,
                        "success": ok,
                        "best_reward": r,
                        "total_tokens": 1000 + 10 * i,
                    }
                )
    return pl.DataFrame(rows)


SPEC = {
    "strong": {"t1": (18, 20), "t2": (15, 20), "t3": (17, 20)},
    "weak": {"t1": (3, 20), "t2": (4, 20), "t3": (2, 20)},
    "twin": {"t1": (18, 20), "t2": (15, 20), "t3": (17, 20)},
}


def test_pairwise_contract_columns_and_verdicts():
    s = _summaries(SPEC)
    out = C.pairwise_comparisons(s, reps=300)
    contract = [
        "model_a",
        "model_b",
        "task",
        "metric",
        "a_mean",
        "a_std",
        "a_n",
        "b_mean",
        "b_std",
        "b_n",
        "diff",
        "diff_ci_low",
        "diff_ci_high",
        "change_pct",
        "effect_size",
        "effect_name",
        "test",
        "p_value",
        "p_adjusted",
        "correction",
        "prob_improvement",
        "verdict",
    ]
    assert out.columns[: len(contract)] == contract
    assert set(out["verdict"]) <= set(C.VERDICTS)
    pairs = set(out.select("model_a", "model_b").unique().iter_rows())
    assert pairs == {("strong", "twin"), ("strong", "weak"), ("twin", "weak")}
    sw_all = out.filter(
        (pl.col("model_a") == "strong") & (pl.col("model_b") == "weak") & (pl.col("task") == "ALL")
    ).row(0, named=True)
    assert sw_all["verdict"] == C.BETTER and sw_all["n_tasks"] == 3
    assert sw_all["diff"] == pytest.approx(np.mean([15 / 20, 11 / 20, 15 / 20]))
    assert sw_all["diff_ci_low"] < sw_all["diff"] < sw_all["diff_ci_high"]
    assert sw_all["test"] == "mantel_haenszel_exact"
    tables = [(18, 20, 3, 20), (15, 20, 4, 20), (17, 20, 2, 20)]
    assert sw_all["p_value"] == pytest.approx(_exact_stratified_brute(tables), rel=1e-9)
    assert sw_all["change_pct"] == pytest.approx(100 * (50 / 60 - 9 / 60) / (9 / 60))
    twin = out.filter((pl.col("model_a") == "strong") & (pl.col("model_b") == "twin"))
    assert set(twin["verdict"]) == {C.NO_DIFF} and twin["diff"].abs().max() == 0
    t1 = out.filter(
        (pl.col("model_a") == "strong") & (pl.col("model_b") == "weak") & (pl.col("task") == "t1")
    ).row(0, named=True)
    assert t1["p_value"] == pytest.approx(stats.fisher_exact([[18, 2], [3, 17]]).pvalue)
    assert (t1["a_n"], t1["b_n"], t1["a_mean"]) == (20, 20, 0.9)
    assert t1["a_std"] == pytest.approx(np.std([1] * 18 + [0] * 2, ddof=1))


def test_holm_family_is_per_task_rows_and_all_rows_separately():
    out = C.pairwise_comparisons(_summaries(SPEC), reps=100)
    per_task = out.filter(pl.col("task") != "ALL")
    want = C.holm(per_task["p_value"].to_numpy())
    assert per_task["p_adjusted"].to_numpy() == pytest.approx(want)
    bh = C.pairwise_comparisons(_summaries(SPEC), reps=100, correction="bh")
    all_rows = bh.filter(pl.col("task") == "ALL")
    assert all_rows["p_adjusted"].to_numpy() == pytest.approx(
        stats.false_discovery_control(all_rows["p_value"].to_numpy())
    )
    assert set(bh["correction"]) == {"bh"}


def test_baseline_direction_and_worse_verdict():
    out = C.compare_models(_summaries(SPEC), "weak", "strong", reps=100)
    assert set(out.select("model_a", "model_b").iter_rows()) == {("weak", "strong")}
    assert out.filter(pl.col("task") == "ALL")["verdict"][0] == C.WORSE


def test_reward_metric_and_lower_is_better_tokens():
    s = _summaries(SPEC, reward_shift={"strong": 3.0})
    out = C.compare_models(s, "strong", "weak", metric="best_reward", reps=100)
    row = out.filter(pl.col("task") == "t1").row(0, named=True)
    a = s.filter((pl.col("model") == "strong") & (pl.col("task") == "t1"))["best_reward"].to_numpy()
    b = s.filter((pl.col("model") == "weak") & (pl.col("task") == "t1"))["best_reward"].to_numpy()
    assert row["test"] == "mann_whitney_u" and row["effect_name"] == "cliffs_delta"
    assert row["p_value"] == pytest.approx(stats.mannwhitneyu(a, b).pvalue)
    assert row["prob_improvement"] == pytest.approx(stats.mannwhitneyu(a, b).statistic / 400)
    assert row["prob_improvement_ci_low"] <= row["prob_improvement"] <= row["prob_improvement_ci_high"]
    assert out.filter(pl.col("task") == "ALL")["test"][0] == "van_elteren"
    welch = C.compare_models(s, "strong", "weak", metric="best_reward", test="welch_t", reps=50)
    assert welch.filter(pl.col("task") == "t1")["p_value"][0] == pytest.approx(
        stats.ttest_ind(a, b, equal_var=False).pvalue
    )
    heavy = s.with_columns(
        pl.when(pl.col("model") == "strong")
        .then(pl.col("total_tokens") * 3)
        .otherwise(pl.col("total_tokens"))
        .alias("total_tokens")
    )
    tok = C.compare_models(heavy, "strong", "weak", metric="total_tokens", higher_is_better=False, reps=50)
    assert tok.filter(pl.col("task") == "ALL")["verdict"][0] == C.WORSE


def test_unmatched_tasks_fall_back_to_pooled_unpaired_row():
    s = _summaries({"x": {"t1": (10, 10)}, "y": {"t2": (0, 10)}})
    out = C.compare_models(s, "x", "y", reps=50)
    assert out.height == 1
    row = out.row(0, named=True)
    assert row["task"] == "ALL" and row["n_tasks"] == 0 and row["test"] == "fisher_exact"
    assert row["verdict"] == C.BETTER


def test_pairwise_bad_input():
    s = _summaries(SPEC)
    with pytest.raises(MetricError):
        C.pairwise_comparisons(s, ["strong", "nobody"])
    with pytest.raises(MetricError):
        C.pairwise_comparisons(s, metric="no_such_column")
    with pytest.raises(MetricError):
        C.pairwise_comparisons(s, correction="sidak")


def test_single_task_all_row_uses_the_per_task_exact_test():
    # 3/4 vs 1/4 on one task: CMH's chi-square gave p = 0.186 on the ALL row
    # while Fisher's exact test gives 0.486 on the task row; both must agree
    s = _summaries({"a": {"t": (3, 4)}, "b": {"t": (1, 4)}})
    out = C.compare_models(s, "a", "b", reps=100)
    task, all_row = (out.filter(pl.col("task") == t).row(0, named=True) for t in ("t", "ALL"))
    want = stats.fisher_exact([[3, 1], [1, 3]]).pvalue
    assert task["p_value"] == pytest.approx(want) and all_row["p_value"] == pytest.approx(want)
    assert all_row["test"] == task["test"] == "fisher_exact"
    assert all_row["p_value"] == pytest.approx(0.4857, abs=1e-4)
    rew = _summaries({"a": {"t": (3, 4)}, "b": {"t": (1, 4)}}, reward_shift={"a": 0.5})
    xa = rew.filter(pl.col("model") == "a")["best_reward"].to_numpy()
    xb = rew.filter(pl.col("model") == "b")["best_reward"].to_numpy()
    for test, ref in (
        ("mann_whitney_u", stats.mannwhitneyu(xa, xb).pvalue),
        ("welch_t", stats.ttest_ind(xa, xb, equal_var=False).pvalue),
    ):
        out = C.compare_models(rew, "a", "b", metric="best_reward", test=test, reps=100)
        assert set(out["test"]) == {test}
        assert out["p_value"].to_numpy() == pytest.approx([ref, ref])


def test_stratified_success_falls_back_to_cmh_when_exact_is_too_costly(monkeypatch):
    from fle_core.stats import _kernels as F

    monkeypatch.setattr(F, "EXACT_STRATIFIED_MAX_COST", 10)
    out = C.compare_models(_summaries(SPEC), "strong", "weak", reps=50)
    all_row = out.filter(pl.col("task") == "ALL").row(0, named=True)
    assert all_row["test"] == "cochran_mantel_haenszel"
    strata = []
    for t in ("t1", "t2", "t3"):
        (sa, na), (sb, nb) = SPEC["strong"][t], SPEC["weak"][t]
        strata.append((np.r_[np.ones(sa), np.zeros(na - sa)], np.r_[np.ones(sb), np.zeros(nb - sb)]))
    assert all_row["p_value"] == pytest.approx(C.cochran_mantel_haenszel(strata))


@pytest.mark.parametrize("metric", ["success", "best_reward"])
def test_poi_interval_matches_bootstrap_probability_of_improvement(metric):
    # compare keeps only drawn-success counts for 0/1 data; the RNG stream and
    # so the intervals must stay those of bootstrap.probability_of_improvement
    from fle_core.stats.bootstrap import probability_of_improvement

    s = _summaries(SPEC, reward_shift={"strong": 3.0})
    ref = probability_of_improvement(s, [("strong", "weak")], reps=300, seed=5, reward_column=metric).row(
        0, named=True
    )
    out = C.compare_models(s, "strong", "weak", metric=metric, reps=300, seed=5)
    row = out.filter(pl.col("task") == "ALL").row(0, named=True)
    assert (
        row["prob_improvement"],
        row["prob_improvement_ci_low"],
        row["prob_improvement_ci_high"],
    ) == pytest.approx((ref["estimate"], ref["ci_low"], ref["ci_high"]), rel=1e-12)


def test_poi_with_one_side_binary_rewards_matches_bootstrap():
    # one model's rewards are all 0/1 (kept as drawn-success counts), the other's are not
    from fle_core.stats.bootstrap import probability_of_improvement

    s = _summaries(SPEC, reward_shift={"strong": 3.0})
    s = s.with_columns(
        pl.when(pl.col("model") == "weak")
        .then(pl.col("success").cast(pl.Float64))
        .otherwise(pl.col("best_reward") / 20)
        .alias("best_reward")
    )
    ref = probability_of_improvement(s, [("strong", "weak")], reps=200, seed=2).row(0, named=True)
    row = (
        C.compare_models(s, "strong", "weak", metric="best_reward", reps=200, seed=2)
        .filter(pl.col("task") == "ALL")
        .row(0, named=True)
    )
    assert (
        row["prob_improvement"],
        row["prob_improvement_ci_low"],
        row["prob_improvement_ci_high"],
    ) == pytest.approx((ref["estimate"], ref["ci_low"], ref["ci_high"]), rel=1e-12)


# ------------------------------------------------------------------ markdown
def test_markdown_matches_experiment_log_format():
    out = C.compare_models(_summaries(SPEC), "strong", "weak", reps=50)
    md = C.comparison_markdown(out)
    lines = md.splitlines()
    assert "| Metric | weak | strong | Change | p-value | Verdict |" in lines
    row = next(line for line in lines if line.startswith("| success (all tasks)"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    m = re.fullmatch(r"([\d.]+) \+/- ([\d.]+) \(n=(\d+)\)", cells[1])
    assert m and float(m.group(1)) == pytest.approx(9 / 60, abs=1e-4) and m.group(3) == "60"
    assert cells[3].startswith("**+") and cells[3].endswith("%**")
    assert cells[5] == "**Significantly better**"
    p = out.filter(pl.col("task") == "ALL")["p_adjusted"][0]
    assert cells[4] == (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")
    twin = C.comparison_markdown(C.compare_models(_summaries(SPEC), "strong", "twin", reps=50))
    assert "| No significant difference |" in twin and "**" not in twin
    with pytest.raises(MetricError):
        C.comparison_markdown(pl.DataFrame({"x": [1]}))


# --------------------------------------------------------------------- power
def _exact_power(n: int, p_a: float, p_b: float, alpha: float) -> float:
    """Rejection probability of the pooled two-proportion z-test, by enumerating outcomes."""
    xs = np.arange(n + 1)
    pa, pb = stats.binom.pmf(xs, n, p_a), stats.binom.pmf(xs, n, p_b)
    x1, x2 = np.meshgrid(xs, xs, indexing="ij")
    pool = (x1 + x2) / (2 * n)
    se = np.sqrt(pool * (1 - pool) * 2 / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, np.abs(x1 - x2) / n / se, 0.0)
    reject = z > stats.norm.ppf(1 - alpha / 2)
    return float((np.outer(pa, pb) * reject).sum())


def test_trials_needed_published_value_and_exact_power():
    # Fleiss formula without continuity correction: 0.2 vs 0.4 at alpha .05, power .8 -> 82
    assert C.trials_needed(0.2, 0.4) == 82
    assert C.trials_needed(0.4, 0.2) == 82
    for pa, pb in [(0.2, 0.4), (0.15, 0.3), (0.5, 0.65)]:
        n = C.trials_needed(pa, pb)
        assert _exact_power(n, pa, pb, 0.05) == pytest.approx(0.8, abs=0.03)
        assert C.power_two_proportions(n, pa, pb) >= 0.8 > C.power_two_proportions(n - 1, pa, pb)
    assert C.trials_needed(0.2, 0.4, power=0.9) > 82
    with pytest.raises(MetricError):
        C.trials_needed(0.3, 0.3)
    with pytest.raises(MetricError):
        C.trials_needed(0.2, 1.2)


def test_minimum_detectable_difference_inverts_power():
    d = C.minimum_detectable_difference(82, 0.2)
    assert C.power_two_proportions(82, 0.2, 0.2 + d) == pytest.approx(0.8, abs=1e-6)
    assert d == pytest.approx(0.2, abs=0.005)
    assert C.trials_needed(0.2, 0.2 + d + 1e-6) <= 82
    down = C.minimum_detectable_difference(82, 0.5, direction="decrease")
    assert C.power_two_proportions(82, 0.5, 0.5 - down) == pytest.approx(0.8, abs=1e-6)
    assert C.minimum_detectable_difference(500, 0.2) < d  # more trials, smaller MDD
    assert math.isnan(C.minimum_detectable_difference(2, 0.9))  # nothing detectable
    with pytest.raises(MetricError):
        C.minimum_detectable_difference(0, 0.2)


def test_effect_size_intervals():
    s = _summaries(SPEC, reward_shift={"strong": 3.0})
    rew = C.compare_models(s, "strong", "weak", metric="best_reward", reps=200)
    for r in rew.iter_rows(named=True):  # Cliff's delta = 2 PoI - 1, interval included
        assert r["effect_ci_low"] == pytest.approx(2 * r["prob_improvement_ci_low"] - 1)
        assert r["effect_ci_high"] == pytest.approx(2 * r["prob_improvement_ci_high"] - 1)
        assert r["effect_ci_low"] <= r["effect_size"] <= r["effect_ci_high"]
    suc = C.compare_models(s, "strong", "weak", reps=200)
    t1 = suc.filter(pl.col("task") == "t1").row(0, named=True)
    h = 2 * math.asin(math.sqrt(0.9)) - 2 * math.asin(math.sqrt(0.15))
    half = stats.norm.ppf(0.975) * math.sqrt(1 / 20 + 1 / 20)
    assert (t1["effect_size"], t1["effect_ci_low"], t1["effect_ci_high"]) == pytest.approx(
        (h, h - half, h + half)
    )
    all_row = suc.filter(pl.col("task") == "ALL").row(0, named=True)
    assert all_row["effect_ci_low"] < all_row["effect_size"] < all_row["effect_ci_high"]


def test_improvement_from_comparisons_equals_bootstrap_in_both_directions():
    """The Pairwise page's P(improvement) chart reuses the comparison's numbers."""
    from fle_core.stats.bootstrap import probability_of_improvement

    s = _summaries(SPEC, reward_shift={"strong": 3.0})
    comp = C.pairwise_comparisons(s, metric="best_reward", reps=300, seed=5)
    got = C.improvement_from_comparisons(comp)
    ref = probability_of_improvement(s, reps=300, seed=5, reward_column="best_reward")
    assert got.height == ref.height == 6  # every ordered pair of the three models
    for want in ref.iter_rows(named=True):
        row = got.filter((pl.col("model_x") == want["model_x"]) & (pl.col("model_y") == want["model_y"])).row(
            0, named=True
        )
        assert (row["estimate"], row["ci_low"], row["ci_high"]) == pytest.approx(
            (want["estimate"], want["ci_low"], want["ci_high"]), rel=1e-9, abs=1e-12
        )
