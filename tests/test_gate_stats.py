"""The gate's tests against scipy, statsmodels and exact enumeration; margins at their edge.

``stats.gate`` asks a one-sided question (is the candidate B worse than the
baseline A, by more than a margin?). Each p-value and interval is recomputed here
independently: Fisher's one-sided test (scipy), the exact conditional stratified
test by brute-force enumeration of every table with the observed margins, the
Miettinen-Nurminen score test and interval (statsmodels), Welch's t test (scipy),
Holm (statsmodels), and the minimum number of trials by hand.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, score_test_proportions_2indep

from fle_core.errors import MetricError
from fle_core.stats import compare
from fle_core.stats import gate as G


def _enumerated_less(tables) -> float:
    """P(Σ s_a ≥ observed) under the product of hypergeometrics, by listing every table."""
    supports, pmfs, observed = [], [], 0
    for sa, na, sb, nb in tables:
        k = sa + sb
        dist = stats.hypergeom(na + nb, k, na)  # population, successes in it, draws (A's trials)
        xs = list(range(max(0, k - nb), min(k, na) + 1))
        supports.append(xs)
        pmfs.append({x: dist.pmf(x) for x in xs})
        observed += sa
    total = 0.0
    for combo in itertools.product(*supports):
        if sum(combo) >= observed:
            total += math.prod(p[x] for p, x in zip(pmfs, combo, strict=True))
    return total


def _frame(outcomes: dict[str, list[float]], column: str = "success") -> pl.DataFrame:
    rows = [(t, v) for t, vals in outcomes.items() for v in vals]
    dtype = pl.Boolean if column == "success" else pl.Float64
    return pl.DataFrame(
        {
            "task": [t for t, _ in rows],
            column: pl.Series([bool(v) if column == "success" else v for _, v in rows], dtype=dtype),
        }
    )


# ------------------------------------------------------------------- exact, margin 0 ---
@pytest.mark.parametrize(
    "table", [(6, 8, 2, 8), (3, 8, 3, 8), (8, 8, 0, 8), (5, 10, 7, 12), (1, 3, 0, 5), (0, 4, 3, 4)]
)
def test_one_task_is_fishers_one_sided_test(table):
    sa, na, sb, nb = table
    want = stats.fisher_exact([[sb, nb - sb], [sa, na - sa]], alternative="less").pvalue
    assert G.exact_stratified_less([table]) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize(
    "tables",
    [
        [(3, 4, 1, 4), (2, 3, 2, 5), (4, 4, 3, 4)],
        [(2, 2, 0, 3), (1, 4, 0, 2)],
        [(5, 8, 4, 8), (0, 8, 0, 8), (8, 8, 8, 8), (6, 8, 1, 8)],  # two uninformative strata
        [(1, 2, 1, 2), (0, 3, 2, 3), (3, 3, 0, 2)],
    ],
)
def test_several_tasks_match_exact_enumeration(tables):
    assert G.exact_stratified_less(tables) == pytest.approx(_enumerated_less(tables), rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 5), st.integers(1, 5)).flatmap(
            lambda n: st.tuples(st.integers(0, n[0]), st.just(n[0]), st.integers(0, n[1]), st.just(n[1]))
        ),
        min_size=1,
        max_size=3,
    )
)
def test_exact_test_matches_enumeration_on_random_small_strata(tables):
    assert G.exact_stratified_less(tables) == pytest.approx(_enumerated_less(tables), rel=1e-9, abs=1e-15)


def test_the_exact_test_is_one_sided():
    """B better than A gives a p near 1: the gate does not flag improvements."""
    assert G.exact_stratified_less([(1, 8, 7, 8)]) > 0.99
    assert G.exact_stratified_less([(7, 8, 1, 8)]) < 0.01


# -------------------------------------------------------------- score test, margin m ---
@pytest.mark.parametrize(
    ("table", "margin"),
    [
        ((6, 8, 2, 8), 0.05),
        ((3, 8, 3, 8), 0.1),
        ((8, 8, 0, 8), 0.02),
        ((5, 10, 7, 12), 0.2),
        ((7, 8, 1, 8), 0.3),
    ],
)
def test_one_task_score_test_matches_statsmodels(table, margin):
    sa, na, sb, nb = table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = score_test_proportions_2indep(
            sb, nb, sa, na, value=-margin, alternative="smaller", correction=True
        )
    assert G.score_test_less([table], margin) == pytest.approx(ref.pvalue, rel=1e-7)
    pa, pb = G.restricted_proportions([sa], [na], [sb], [nb], -margin)
    assert pb[0] == pytest.approx(ref.prop1_null, abs=1e-9)
    assert pa[0] == pytest.approx(ref.prop2_null, abs=1e-9)


def test_restricted_estimates_stay_proportions_where_statsmodels_leaves_them():
    """0/8 vs 0/8 under p_b − p_a = −0.1: the likelihood is highest at p_a = 0.1, p_b = 0;
    statsmodels' closed form gives p_a < 0 here, so we check against the maximum itself."""
    pa, pb = G.restricted_proportions([0], [8], [0], [8], -0.1)
    assert pa[0] == pytest.approx(0.1, abs=1e-9) and pb[0] == pytest.approx(0.0, abs=1e-9)
    v = 0.1 * 0.9 / 8 * 16 / 15
    assert G.score_test_less([(0, 8, 0, 8)], 0.1) == pytest.approx(stats.norm.cdf(0.1 / math.sqrt(v)))


@pytest.mark.parametrize(
    ("table", "confidence"), [((3, 8, 3, 8), 0.9), ((5, 10, 7, 12), 0.9), ((40, 60, 25, 50), 0.95)]
)
def test_one_task_score_interval_matches_statsmodels(table, confidence):
    sa, na, sb, nb = table
    ref = confint_proportions_2indep(
        sb, nb, sa, na, method="score", compare="diff", alpha=1 - confidence, correction=True
    )
    assert G.score_interval([table], confidence) == pytest.approx(ref, abs=1e-6)


def test_several_tasks_score_statistic_from_statsmodels_restricted_estimates():
    """The stratified statistic assembled from statsmodels' per-task restricted estimates:
    (D + m) / sqrt(Σ V_k / K²), V_k with the Miettinen-Nurminen factor N/(N−1)."""
    tables = [(6, 10, 4, 10), (9, 12, 6, 12), (3, 9, 2, 8)]
    m = 0.05
    var, d = 0.0, 0.0
    for sa, na, sb, nb in tables:
        ref = score_test_proportions_2indep(sb, nb, sa, na, value=-m, correction=True)
        p1, p0 = ref.prop1_null, ref.prop2_null
        var += (p1 * (1 - p1) / nb + p0 * (1 - p0) / na) * (na + nb) / (na + nb - 1)
        d += sb / nb - sa / na
    k = len(tables)
    z = (d / k + m) / (math.sqrt(var) / k)
    assert G.score_test_less(tables, m) == pytest.approx(stats.norm.cdf(z), rel=1e-9)


# ------------------------------------------------------------------------ margin edges ---
def _gate(a: dict, b: dict, margin: float = 0.0, metrics=("success",), **kw) -> dict:
    out = G.regression_tests(_frame(a), _frame(b), metrics, margins={"success": margin}, **kw)
    return out.row(0, named=True)


def _table(sa, na, sb, nb, tasks=1):
    a = {f"t{i}": [1.0] * sa + [0.0] * (na - sa) for i in range(tasks)}
    b = {f"t{i}": [1.0] * sb + [0.0] * (nb - sb) for i in range(tasks)}
    return a, b


def test_exactly_at_the_margin_never_fails():
    """B worse by exactly the margin: z = 0, p = 0.5, whatever the sample size; without
    the margin the same drop is a clear regression."""
    a, b = _table(600, 1000, 500, 1000, tasks=2)  # D = -0.10
    at_edge = _gate(a, b, margin=0.10)
    assert at_edge["p_value"] == pytest.approx(0.5, abs=1e-9)
    assert at_edge["verdict"] == G.INCONCLUSIVE and not at_edge["regressed"]
    assert _gate(a, b, margin=0.0)["verdict"] == G.REGRESSED


def test_beyond_the_margin_fails_and_within_it_passes():
    a, beyond = _table(600, 1000, 450, 1000, tasks=2)  # D = -0.15, margin 0.10: z ≈ -3.2
    row = _gate(a, beyond, margin=0.10)
    assert row["regressed"] and row["diff_ci_high"] < -0.10
    _, within = _table(600, 1000, 550, 1000, tasks=2)  # D = -0.05: z ≈ +3.2
    row = _gate(a, within, margin=0.10)
    assert row["verdict"] == G.WITHIN_MARGIN and row["diff_ci_low"] > -0.10
    assert _gate(a, within, margin=0.0)["verdict"] == G.REGRESSED  # a real drop, inside the margin


def test_a_small_sample_beyond_the_margin_is_inconclusive_not_a_failure():
    a, b = _table(6, 8, 4, 8)  # D = -0.25 with 8 trials: not confidently beyond 0.10
    row = _gate(a, b, margin=0.10)
    assert row["verdict"] == G.INCONCLUSIVE and not row["regressed"]


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 12).flatmap(lambda n: st.tuples(st.integers(0, n), st.integers(0, n), st.just(n))),
    st.floats(0.0, 0.3),
    st.floats(0.0, 0.3),
)
def test_a_wider_margin_never_flags_more(counts, m1, m2):
    sa, sb, n = counts
    lo, hi = sorted((m1, m2))
    tables = [(sa, n, sb, n)]
    p = lambda m: (
        max(G.exact_stratified_less(tables), G.score_test_less(tables, m))
        if m > 0
        else G.exact_stratified_less(tables)
    )
    assert p(lo) <= p(hi) + 1e-12


def test_margin_edge_keeps_its_level_by_simulation():
    """At the null's edge (p_b − p_a = −m in every task) the gate flags at most ≈ α of runs."""
    rng = np.random.default_rng(7)
    m, alpha, n, k, reps = 0.1, 0.05, 40, 4, 1500
    pa = np.array([0.7, 0.5, 0.6, 0.8])
    hits = 0
    for _ in range(reps):
        sa = rng.binomial(n, pa)
        sb = rng.binomial(n, pa - m)
        tables = list(zip(sa.tolist(), [n] * k, sb.tolist(), [n] * k, strict=True))
        p = max(G.exact_stratified_less(tables), G.score_test_less(tables, m))
        hits += p < alpha
    rate = hits / reps
    assert rate <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / reps)  # 0.067 at most
    assert rate > 0.01  # and it can fire: the test is not vacuous


# ----------------------------------------------------------------------------- values ---
def test_one_task_welch_matches_scipy_with_the_shift():
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 2, 9), rng.normal(8.5, 3, 11)
    for m in (0.0, 0.5, 2.0):
        got = G.welch_shifted([(a, b)], m, 0.9)
        want = stats.ttest_ind(b + m, a, equal_var=False, alternative="less").pvalue
        assert got["p"] == pytest.approx(want, rel=1e-9)
    ci = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.9)
    got = G.welch_shifted([(a, b)], 0.0, 0.9)
    assert (got["low"], got["high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_several_tasks_welch_is_the_stratified_welch_test_one_sided():
    rng = np.random.default_rng(2)
    strata = [(rng.normal(5, 1, 6), rng.normal(4.6, 1.5, 7)) for _ in range(5)]
    one = G.welch_shifted(strata, 0.0, 0.9)["p"]
    two = compare.stratified_t_test([(b, a) for a, b in strata])
    assert 2 * min(one, 1 - one) == pytest.approx(two, rel=1e-9)


def test_lower_is_better_metrics_fail_when_the_candidate_costs_more():
    rng = np.random.default_rng(3)
    tokens = {f"t{i}": list(rng.normal(1000, 50, 8)) for i in range(3)}
    more = {t: [v + 400 for v in vals] for t, vals in tokens.items()}
    base, cand = _frame(tokens, "total_tokens"), _frame(more, "total_tokens")
    row = G.regression_tests(base, cand, ["total_tokens"]).row(0, named=True)
    assert row["regressed"] and row["diff"] == pytest.approx(400) and row["diff_ci_low"] > 0
    row = G.regression_tests(cand, base, ["total_tokens"]).row(0, named=True)
    assert row["verdict"] == G.IMPROVED and not row["regressed"]


# ------------------------------------------------------------------- family and verdicts ---
def test_holm_across_metrics_matches_statsmodels():
    rng = np.random.default_rng(4)
    a = pl.concat(
        [
            _frame({f"t{i}": [1.0] * 6 + [0.0] * 2 for i in range(4)}),
        ]
    ).with_columns(
        pl.Series("normalized_reward", rng.uniform(0.5, 1.0, 32)),
        pl.Series("best_reward", rng.uniform(8, 16, 32)),
    )
    b = _frame({f"t{i}": [1.0] * 3 + [0.0] * 5 for i in range(4)}).with_columns(
        pl.Series("normalized_reward", rng.uniform(0.4, 0.9, 32)),
        pl.Series("best_reward", rng.uniform(6, 15, 32)),
    )
    out = G.regression_tests(a, b, ["success", "mean_score", "best_reward"])
    want = multipletests(out["p_value"].to_numpy(), method="holm")[1]
    assert out["p_adjusted"].to_numpy() == pytest.approx(want)
    assert out["correction"].unique().to_list() == ["holm"]
    assert set(out["model_a"]) == {"candidate"} and set(out["model_b"]) == {"baseline"}


def test_identical_outcomes_pass():
    """The same outcomes: one-sided p = P(T ≥ observed) > 1/2 (the observed table counts)."""
    a, _ = _table(5, 8, 5, 8, tasks=3)
    row = _gate(a, a)
    assert row["p_value"] == pytest.approx(_enumerated_less([(5, 8, 5, 8)] * 3)) and row["p_value"] > 0.5
    assert row["verdict"] == G.NO_CHANGE and not row["regressed"] and row["diff"] == 0


def test_too_few_trials_is_an_error_that_says_how_many_are_needed():
    a, b = _table(2, 2, 0, 2)  # the most extreme 2-vs-2 table has p = 1/6
    with pytest.raises(G.TooFewTrials, match=r"p = 0\.167") as err:
        _gate(a, b)
    assert "at least 4 trials per task" in (err.value.hint or "")
    # by hand: C(2n, n) must exceed 1/α = 20 → n = 4 (C(6, 3) = 20 only reaches p = α)
    assert G.trials_needed_to_test(1, 0.0, 0.05, 1) == 4
    assert G.trials_needed_to_test(1, 0.0, 0.05, 2) == 4  # C(8, 4) = 70 > 40
    assert G.trials_needed_to_test(2, 0.0, 0.05, 1) == 2  # C(4, 2)² = 36 > 20
    a4, b4 = _table(4, 4, 0, 4)
    assert _gate(a4, b4)["regressed"]  # with 4 trials the extreme drop does fail


def test_values_need_two_trials_per_task_and_metrics_must_exist():
    one = _frame({"t0": [0.5]}, "normalized_reward").with_columns(pl.lit(True).alias("success"))
    with pytest.raises(G.TooFewTrials, match="fewer than 2 values"):
        G.regression_tests(one, one, ["mean_score"])
    with pytest.raises(MetricError, match="unknown gate metric 'accuracy'"):
        G.regression_tests(one, one, ["accuracy"])
    with pytest.raises(MetricError, match="margin"):
        G.regression_tests(one, one, ["success"], margins={"success": -0.1})
