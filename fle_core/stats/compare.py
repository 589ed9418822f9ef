"""Comparisons between models: tests, effect sizes, corrections, verdicts, power.

Pure functions over a summaries frame (``metrics.summarize_trajectories``).
``pairwise_comparisons`` returns the comparisons contract (one row per model
pair × task, plus an ``"ALL"`` row per pair) with a verdict from A's point of
view; ``comparison_markdown`` renders it in the experiment-log table format.
Every definition is in ``docs/metrics.md``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from scipy import stats

from fle_core.errors import MetricError
from fle_core.stats import markdown as md
from fle_core.stats import ranks
from fle_core.stats._kernels import Resamples, exact_stratified_p, fisher_exact_p, percentiles, poi_point
from fle_core.stats._resample import percentile_interval
from fle_core.stats.bootstrap import (
    DEFAULT_REPS,
    DEFAULT_SEED,
    _task_values,
    prob_improvement_point,
)
from fle_core.stats.corrections import CORRECTIONS as CORRECTIONS  # re-exported
from fle_core.stats.corrections import adjust_pvalues as adjust_pvalues  # re-exported
from fle_core.stats.corrections import benjamini_hochberg as benjamini_hochberg  # re-exported
from fle_core.stats.corrections import holm as holm  # re-exported
from fle_core.stats.markdown import interval_cell as interval_cell  # re-exported
from fle_core.stats.markdown import pair_table
from fle_core.stats.markdown import side_cell as side_cell  # re-exported
from fle_core.stats.markdown import side_header as side_header  # re-exported
from fle_core.stats.markdown import verdict_cells as verdict_cells  # re-exported
from fle_core.stats.metrics import newcombe_interval
from fle_core.stats.power import minimum_detectable_difference as minimum_detectable_difference  # re-exported
from fle_core.stats.power import power_two_proportions as power_two_proportions  # re-exported
from fle_core.stats.power import trials_needed as trials_needed  # re-exported

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

BETTER, WORSE, NO_DIFF = "significantly better", "significantly worse", md.NO_DIFFERENCE
#: the experiment log's verdict when a system's runs repeat the baseline's (``stats.runs``)
INVALID = "invalid (same data)"
#: the experiment log's verdict when no test could run (too few runs, non-finite values)
NOT_TESTED = "not tested"
VERDICTS = (BETTER, WORSE, NO_DIFF, INVALID, NOT_TESTED)
ALL_TASKS = "ALL"

COMPARISON_SCHEMA: dict[str, PolarsDataType] = {
    "model_a": pl.String,
    "model_b": pl.String,
    "task": pl.String,
    "metric": pl.String,
    "a_mean": pl.Float64,
    "a_std": pl.Float64,
    "a_n": pl.Int64,
    "b_mean": pl.Float64,
    "b_std": pl.Float64,
    "b_n": pl.Int64,
    "diff": pl.Float64,
    "diff_ci_low": pl.Float64,
    "diff_ci_high": pl.Float64,
    "change_pct": pl.Float64,
    "effect_size": pl.Float64,
    "effect_name": pl.String,
    "test": pl.String,
    "p_value": pl.Float64,
    "p_adjusted": pl.Float64,
    "correction": pl.String,
    "prob_improvement": pl.Float64,
    "verdict": pl.String,
    # additive columns (not in the minimal contract)
    "prob_improvement_ci_low": pl.Float64,
    "prob_improvement_ci_high": pl.Float64,
    "effect_ci_low": pl.Float64,
    "effect_ci_high": pl.Float64,
    "n_tasks": pl.Int64,
    "alpha": pl.Float64,
}


# ----------------------------------------------------------- effect sizes ---
def cohens_h(p1: float, p2: float) -> float:
    """Cohen's h = 2·asin(sqrt(p1)) - 2·asin(sqrt(p2)) (effect size for proportions)."""
    return 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2))


def cliffs_delta(x, y) -> float:
    """Cliff's delta = P(X>Y) - P(X<Y) = 2·PoI - 1, in [-1, 1]."""
    return 2.0 * prob_improvement_point(np.asarray(x, float), np.asarray(y, float)) - 1.0


def hodges_lehmann(x, y) -> float:
    """Hodges-Lehmann shift: median of all pairwise differences x_i - y_j (exact selection
    without the n×m matrix, ``ranks.hodges_lehmann``)."""
    return ranks.hodges_lehmann(np.asarray(x, float), np.asarray(y, float))


# --------------------------------------------------------- two-sample tests ---
def _std(x: np.ndarray) -> float | None:
    return float(np.std(x, ddof=1)) if x.size >= 2 else None


def success_test(a: np.ndarray, b: np.ndarray) -> dict:
    """Fisher's exact test (two-sided) on the 2×2 success table, Newcombe CI, Cohen's h.

    Both are memoized per count tuple (many task cells share counts).
    """
    sa, sb, na, nb = int(a.sum()), int(b.sum()), a.size, b.size
    p = fisher_exact_p(sa, na, sb, nb)
    lo, hi = newcombe_interval(sa, na, sb, nb)
    return {
        "diff": sa / na - sb / nb,
        "diff_ci_low": lo,
        "diff_ci_high": hi,
        "effect_size": cohens_h(sa / na, sb / nb),
        "effect_name": "cohens_h",
        "test": "fisher_exact",
        "p_value": min(p, 1.0),
    }


VALUE_TESTS = ("mann_whitney_u", "welch_t", "student_t")


def value_test(a: np.ndarray, b: np.ndarray, test: str = "mann_whitney_u") -> dict:
    """Mann-Whitney U, Welch's t or Student's t (two-sided); a t CI for the mean difference; Cliff's delta.

    The CI is Student's pooled-variance interval for ``student_t`` and Welch's
    otherwise. With fewer than 2 values on a side (Welch) the t statistic and its
    CI are undefined (null). Zero variance on both sides: identical constants give
    p = 1; different constants (complete separation) give t = ±inf, p = 0 and the
    CI [diff, diff], as ``scipy.stats.ttest_ind`` defines them.
    """
    if test not in VALUE_TESTS:
        raise MetricError(f"unknown test {test!r}", hint="use 'mann_whitney_u', 'welch_t' or 'student_t'")
    out = {
        "diff": float(a.mean() - b.mean()),
        "diff_ci_low": None,
        "diff_ci_high": None,
        "effect_size": cliffs_delta(a, b),
        "effect_name": "cliffs_delta",
        "test": test,
    }
    student = test == "student_t"
    same = np.ptp(np.concatenate([a, b])) == 0
    sizes_ok = a.size + b.size >= 3 and min(a.size, b.size) >= 1 if student else min(a.size, b.size) >= 2
    p_t = None
    if sizes_ok and not same:
        # zero variance on both sides with different means (1,1,1 vs 2,2,2): t = ±inf, and
        # scipy defines p = 0 and the CI as the difference itself; we follow it
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = stats.ttest_ind(a, b, equal_var=student)
            ci = res.confidence_interval(0.95)
        if math.isfinite(float(res.pvalue)):
            p_t = float(res.pvalue)
            out.update(diff_ci_low=float(ci.low), diff_ci_high=float(ci.high))
    if test == "mann_whitney_u":
        out["p_value"] = 1.0 if same else float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    else:  # undefined with too few values; identical constant samples: no difference, p = 1
        out["p_value"] = p_t if p_t is not None else (1.0 if same and min(a.size, b.size) >= 2 else None)
    return out


def stratified_t_test(
    strata: Sequence[tuple[np.ndarray, np.ndarray]], *, equal_var: bool = False
) -> float | None:
    """Two-sided t test of the task-averaged difference ``D = mean_k(x̄_k − ȳ_k)``.

    The same estimand as the ALL row's ``diff`` (each task weighs the same).
    Welch (``equal_var=False``): ``Var(D) = Σ_k (s²_xk/n_xk + s²_yk/n_yk) / K²``
    with Welch-Satterthwaite df ``(Σ v)² / Σ v²/(n−1)`` over the 2K terms
    ``v = s²/n``. Student (``equal_var=True``): one pooled variance
    ``s² = Σ (n−1)s² / Σ (n_xk + n_yk − 2)`` with that df, and
    ``Var(D) = s²·Σ_k (1/n_xk + 1/n_yk) / K²`` — the t test of that contrast
    in the cell-means linear model. With one task each is the ordinary two-sample
    test. Undefined (None) when a task has fewer than 2 values on a side
    (Welch) or the df is < 1 (Student). With no variance at all, p = 1 when the
    difference is 0 and p = 0 otherwise (t = ±inf, as scipy's two-sample test).
    """
    k = len(strata)
    xs = [(np.asarray(a, float), np.asarray(b, float)) for a, b in strata]
    d = float(np.mean([a.mean() - b.mean() for a, b in xs]))
    df: float
    if equal_var:
        df = sum(a.size + b.size - 2 for a, b in xs)
        if df < 1 or any(a.size == 0 or b.size == 0 for a, b in xs):
            return None
        ss = sum(((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum() for a, b in xs)
        var = ss / df * sum(1 / a.size + 1 / b.size for a, b in xs) / k**2
    else:
        if any(a.size < 2 or b.size < 2 for a, b in xs):
            return None
        terms = [(x.var(ddof=1) / x.size, x.size) for pair in xs for x in pair]
        var = sum(v for v, _ in terms) / k**2
        denom = sum(v * v / (n - 1) for v, n in terms)
        df = sum(v for v, _ in terms) ** 2 / denom if denom > 0 else math.inf
    if var <= 0:  # no variance: no difference (p = 1), or complete separation (t = ±inf, p = 0)
        return 1.0 if d == 0 else 0.0
    return float(2 * stats.t.sf(abs(d) / math.sqrt(var), df))


def cochran_mantel_haenszel(strata: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """Two-sided CMH chi-square test (1 df, no continuity correction) for success
    across task strata: H0 is a common odds ratio of 1.

    Per stratum with table [[a, b], [c, d]] (A successes/failures, B ...):
    ``E[a] = (a+b)(a+c)/n``, ``Var[a] = (a+b)(c+d)(a+c)(b+d) / (n²(n-1))``;
    statistic ``(Σ(a - E[a]))² / Σ Var[a]``. p = 1 when every stratum is degenerate.
    """
    num, var = 0.0, 0.0
    for xa, xb in strata:
        a, c = float(xa.sum()), float(xb.sum())
        b, d = xa.size - a, xb.size - c
        n = a + b + c + d
        if n < 2:
            continue
        num += a - (a + b) * (a + c) / n
        var += (a + b) * (c + d) * (a + c) * (b + d) / (n * n * (n - 1))
    if var <= 0:
        return 1.0
    return float(stats.chi2.sf(num * num / var, 1))


def van_elteren(strata: Sequence[tuple[np.ndarray, np.ndarray]]) -> float:
    """Two-sided van Elteren test: the stratified Wilcoxon rank-sum test.

    Per stratum k, A's rank sum ``W_k`` (midranks) with mean ``n_a(n+1)/2`` and
    tie-corrected variance ``n_a·n_b/12·((n+1) − Σ(t³−t)/(n(n−1)))``, weighted
    by ``1/(n_k+1)``; normal approximation. With one stratum it equals the
    asymptotic Mann-Whitney U test without continuity correction.
    """
    t_sum, e_sum, v_sum = 0.0, 0.0, 0.0
    for xa, xb in strata:
        na, nb = xa.size, xb.size
        n = na + nb
        if na == 0 or nb == 0 or n < 2:
            continue
        ranks = stats.rankdata(np.concatenate([xa, xb]))
        _, ties = np.unique(np.concatenate([xa, xb]), return_counts=True)
        w = 1.0 / (n + 1)
        t_sum += w * ranks[:na].sum()
        e_sum += w * na * (n + 1) / 2
        v_sum += w * w * na * nb / 12 * ((n + 1) - (ties**3 - ties).sum() / (n * (n - 1)))
    if v_sum <= 0:
        return 1.0
    return float(2 * stats.norm.sf(abs(t_sum - e_sum) / math.sqrt(v_sum)))


# ------------------------------------------------------ pairwise comparisons ---
def _side(x: np.ndarray) -> dict:
    return {"mean": float(x.mean()), "std": _std(x), "n": int(x.size)}


def _base_row(a: str, b: str, task: str, metric: str, xa: dict, xb: dict) -> dict:
    change = None if xb["mean"] == 0 else 100.0 * (xa["mean"] - xb["mean"]) / abs(xb["mean"])
    return {
        "model_a": a,
        "model_b": b,
        "task": task,
        "metric": metric,
        "a_mean": xa["mean"],
        "a_std": xa["std"],
        "a_n": xa["n"],
        "b_mean": xb["mean"],
        "b_std": xb["std"],
        "b_n": xb["n"],
        "change_pct": change,
    }


def _run_test(xa: np.ndarray, xb: np.ndarray, test: str) -> dict:
    return success_test(xa, xb) if test == "fisher_exact" else value_test(xa, xb, test)


def _set_poi(row: dict, xa, xb, lo: float, hi: float, z: float) -> None:
    """PoI point estimate and its bootstrap CI (lo, hi), and the effect size's CI.

    Cliff's delta = 2·PoI − 1, so its CI is the PoI interval mapped the same
    way. Cohen's h uses its normal approximation ``h ± z·sqrt(1/n_a + 1/n_b)``
    (the arcsine transform's variance is 1/n).
    """
    row.update(
        prob_improvement=poi_point(xa, xb),
        prob_improvement_ci_low=float(lo),
        prob_improvement_ci_high=float(hi),
    )
    if row["effect_name"] == "cliffs_delta":
        row.update(effect_ci_low=2 * float(lo) - 1, effect_ci_high=2 * float(hi) - 1)
    else:
        half = z * math.sqrt(1 / len(xa) + 1 / len(xb))
        row.update(
            effect_ci_low=max(row["effect_size"] - half, -math.pi),
            effect_ci_high=min(row["effect_size"] + half, math.pi),
        )


def _task_row(a, b, task, metric, xa, xb, test, rs: Resamples) -> tuple[dict, np.ndarray]:
    """Per-task row without its PoI interval, and that row's PoI replicates.

    The intervals of all rows are taken in one batched percentile call.
    """
    row = _base_row(a, b, str(task), metric, _side(xa), _side(xb))
    row.update(_run_test(xa, xb, test))
    row["n_tasks"] = 1
    return row, rs.poi_reps(a, task, xa, b, task, xb)


def _stratified_test(strata, test: str) -> tuple[float | None, str]:
    """p-value and test name for the ALL row (rule in docs/metrics.md §7).

    One stratum: the per-task test itself (Fisher's exact, Mann-Whitney U or
    Welch), so the ALL row agrees with its task row. Several, success: the
    exact conditional (Mantel-Haenszel exact) test, which reduces to Fisher's
    with one stratum; CMH chi-square only when every stratum is so large that
    the exact convolution is too costly (and the approximation is excellent).
    Several, values: van Elteren for Mann-Whitney U; the stratified Welch or
    Student t test (``stratified_t_test``) for the t tests, so a t-test
    request never silently becomes a rank test.
    """
    if len(strata) == 1:
        return _run_test(strata[0][0], strata[0][1], test)["p_value"], test
    if test == "fisher_exact":
        tables = [(int(xa.sum()), xa.size, int(xb.sum()), xb.size) for xa, xb in strata]
        p = exact_stratified_p(tables)
        if p is not None:
            return p, "mantel_haenszel_exact"
        return cochran_mantel_haenszel(strata), "cochran_mantel_haenszel"
    if test in ("welch_t", "student_t"):
        return stratified_t_test(strata, equal_var=test == "student_t"), f"stratified_{test}"
    return van_elteren(strata), "van_elteren"


def _all_row(a, b, metric, va: dict, vb: dict, test, rs: Resamples, confidence, z: float) -> dict:
    """Across tasks: paired by task where both ran; pooled and unpaired if none match.

    With one common task the row repeats that task's test and (at 95%) its
    interval, so both rows say the same about the same data.
    """
    common = sorted(set(va) & set(vb), key=str)
    if not common:
        xa, xb = np.concatenate(list(va.values())), np.concatenate(list(vb.values()))
        row = _base_row(a, b, ALL_TASKS, metric, _side(xa), _side(xb))
        row.update(_run_test(xa, xb, test))
        lo, hi = percentile_interval(rs.poi_reps(a, ALL_TASKS, xa, b, ALL_TASKS, xb), confidence)
        _set_poi(row, xa, xb, lo, hi, z)
        row["n_tasks"] = 0
        return row
    pooled_a = np.concatenate([va[t] for t in common])
    pooled_b = np.concatenate([vb[t] for t in common])
    mean_a = float(np.mean([va[t].mean() for t in common]))
    mean_b = float(np.mean([vb[t].mean() for t in common]))
    side_a = {"mean": mean_a, "std": _std(pooled_a), "n": int(pooled_a.size)}
    side_b = {"mean": mean_b, "std": _std(pooled_b), "n": int(pooled_b.size)}
    row = _base_row(a, b, ALL_TASKS, metric, side_a, side_b)
    diffs = np.array([va[t].mean() - vb[t].mean() for t in common])
    ra_reps, rb_reps = np.zeros(rs.reps), np.zeros(rs.reps)
    poi_reps = np.zeros(rs.reps)
    pois = []
    for t in common:  # loop over tasks; each is vectorized over reps
        ra_reps += rs.mean_reps(a, t, va[t])
        rb_reps += rs.mean_reps(b, t, vb[t])
        poi_reps += rs.poi_reps(a, t, va[t], b, t, vb[t])
        pois.append(poi_point(va[t], vb[t]))
    ra_reps /= len(common)
    rb_reps /= len(common)
    poi_reps /= len(common)
    lo, hi = percentiles(ra_reps - rb_reps, confidence)
    plo, phi = percentiles(poi_reps, confidence)
    own = _run_test(va[common[0]], vb[common[0]], test) if len(common) == 1 else None
    if own is not None:  # one task: its own test (``_stratified_test``'s rule), run once
        p, test_name = own["p_value"], test
    else:
        p, test_name = _stratified_test([(va[t], vb[t]) for t in common], test)
    if test == "fisher_exact":
        effect, effect_name = cohens_h(mean_a, mean_b), "cohens_h"
        h_reps = 2 * np.arcsin(np.sqrt(ra_reps)) - 2 * np.arcsin(np.sqrt(rb_reps))
        elo, ehi = percentiles(h_reps, confidence)
    else:
        effect, effect_name = 2.0 * float(np.mean(pois)) - 1.0, "cliffs_delta"
        elo, ehi = 2 * plo - 1, 2 * phi - 1
    row.update(
        diff=float(diffs.mean()),
        diff_ci_low=float(lo),
        diff_ci_high=float(hi),
        effect_size=effect,
        effect_name=effect_name,
        effect_ci_low=float(elo),
        effect_ci_high=float(ehi),
        test=test_name,
        p_value=p,
        prob_improvement=float(np.mean(pois)),
        prob_improvement_ci_low=float(plo),
        prob_improvement_ci_high=float(phi),
        n_tasks=len(common),
    )
    if (
        own is not None and confidence == 0.95 and own["diff_ci_low"] is not None
    ):  # one task: its own interval
        row.update(diff_ci_low=own["diff_ci_low"], diff_ci_high=own["diff_ci_high"])
    return row


def _verdict(p_adj, diff, alpha: float, higher_is_better: bool) -> str:
    if p_adj is None or not math.isfinite(p_adj) or p_adj >= alpha or not diff:
        return NO_DIFF
    return BETTER if (diff > 0) == higher_is_better else WORSE


def pairwise_comparisons(
    summaries: pl.DataFrame,
    models: Sequence[str] | None = None,
    metric: str = "success",
    correction: str | None = "holm",
    *,
    baseline: str | None = None,
    alpha: float = 0.05,
    test: str | None = None,
    higher_is_better: bool = True,
    per_task: bool = True,
    reps: int = DEFAULT_REPS,
    seed=DEFAULT_SEED,
    confidence: float = 0.95,
) -> pl.DataFrame:
    """Compare every pair of models per task and across tasks (the comparisons contract).

    ``metric="success"`` compares success (0/1; Fisher's exact test, Newcombe
    CI, Cohen's h); any other numeric summary column (``best_reward``,
    ``final_reward``, ``normalized_reward``, ``total_tokens`` …) is compared
    with Mann-Whitney U (or ``test="welch_t"`` / ``"student_t"``), a t CI for
    the mean difference and Cliff's delta. The ``"ALL"`` row pairs the tasks both
    models ran: ``diff`` is the mean of per-task differences with a
    stratified-bootstrap CI, and the test is stratified by task
    (Mantel-Haenszel exact for success, van Elteren for Mann-Whitney U, the
    stratified Welch/Student t test for the t tests; with one common task,
    the per-task test itself — see ``_stratified_test``).

    Pairs: ``(m, baseline)`` for every other model when ``baseline`` is given,
    else every ``(models[i], models[j])`` with i < j. p-values are corrected
    (``holm``/``bh``/``none``) within two families: all per-task rows, and all
    ALL rows. Verdict (from A's side): ``p_adjusted < alpha`` and the
    difference favours A → "significantly better"; favours B →
    "significantly worse"; else "no significant difference". Set
    ``higher_is_better=False`` for costs such as tokens.
    """
    column = "success" if metric == "success" else metric
    if column not in summaries.columns:
        raise MetricError(f"summaries frame has no column {column!r} to compare")
    if metric != "success" and not summaries.schema[column].is_numeric():
        raise MetricError(f"column {column!r} is not numeric")
    test = test or ("fisher_exact" if metric == "success" else "mann_whitney_u")
    if test not in ("fisher_exact", *VALUE_TESTS):
        raise MetricError(f"unknown test {test!r}", hint=f"use one of fisher_exact, {', '.join(VALUE_TESTS)}")
    adjust_pvalues([], correction)  # validates the name early
    if not 0 < confidence < 1:
        raise MetricError(f"confidence must be in (0, 1), got {confidence}")
    values = _task_values(summaries, column)
    models = list(models) if models else sorted(values)
    if baseline is not None and baseline not in models:
        models.append(baseline)
    missing = [m for m in models if m not in values]
    if missing:
        raise MetricError(
            f"no {column} values for model(s) {missing}",
            hint="check the model names and that trajectories have a quota",
        )
    if baseline is not None:
        pairs = [(m, baseline) for m in models if m != baseline]
    else:
        pairs = [(models[i], models[j]) for i in range(len(models)) for j in range(i + 1, len(models))]
    rs = Resamples(reps, seed)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    rows, task_rows, task_reps = [], [], []
    for a, b in pairs:
        if per_task:
            for t in sorted(set(values[a]) & set(values[b]), key=str):
                row, poi_reps = _task_row(a, b, t, metric, values[a][t], values[b][t], test, rs)
                rows.append(row)
                task_rows.append((row, values[a][t], values[b][t]))
                task_reps.append(poi_reps)
        rows.append(_all_row(a, b, metric, values[a], values[b], test, rs, confidence, z))
    if task_rows:  # one percentile call over a (reps, rows) matrix
        lows, highs = percentiles(np.column_stack(task_reps), confidence)
        for (row, xa, xb), lo, hi in zip(task_rows, lows, highs, strict=True):
            _set_poi(row, xa, xb, lo, hi, z)
    return _finish(rows, correction, alpha, higher_is_better)


def _finish(rows: list[dict], correction, alpha: float, higher_is_better: bool) -> pl.DataFrame:
    method = CORRECTIONS[correction.lower() if isinstance(correction, str) else correction]
    p = np.array([np.nan if r.get("p_value") is None else r["p_value"] for r in rows], float)
    is_all = np.array([r["task"] == ALL_TASKS for r in rows], bool)
    adj = np.full(p.shape, np.nan)
    for family in (is_all, ~is_all):
        if family.any():
            adj[family] = adjust_pvalues(p[family], method)
    for r, pa in zip(rows, adj, strict=True):
        r["p_adjusted"] = None if not math.isfinite(pa) else float(pa)
        r["correction"] = method
        r["alpha"] = alpha
        r["verdict"] = _verdict(r["p_adjusted"], r.get("diff"), alpha, higher_is_better)
    return pl.DataFrame({c: [r.get(c) for r in rows] for c in COMPARISON_SCHEMA}, schema=COMPARISON_SCHEMA)


def compare_models(
    summaries: pl.DataFrame, model_a: str, model_b: str, metric: str = "success", **kwargs
) -> pl.DataFrame:
    """A vs baseline B, per task and across tasks (``pairwise_comparisons`` for one pair)."""
    return pairwise_comparisons(summaries, [model_a, model_b], metric, baseline=model_b, **kwargs)


# ------------------------------------------------------------------ markdown ---
def improvement_from_comparisons(frame: pl.DataFrame) -> pl.DataFrame:
    """The across-task P(improvement) rows of ``pairwise_comparisons``, in both directions.

    Reuses the estimates and bootstrap CIs already computed for the comparison
    (equal to ``bootstrap.probability_of_improvement`` on the same metric, seed
    and reps), so a page showing both does not bootstrap twice. Per replicate
    P(y, x) = 1 - P(x, y), so the mirrored interval is ``[1 - high, 1 - low]``.
    Columns: ``model_x, model_y, estimate, ci_low, ci_high, n_tasks``.
    """
    rows = frame.filter(pl.col("task") == ALL_TASKS).select(
        pl.col("model_a").alias("model_x"),
        pl.col("model_b").alias("model_y"),
        pl.col("prob_improvement").alias("estimate"),
        pl.col("prob_improvement_ci_low").alias("ci_low"),
        pl.col("prob_improvement_ci_high").alias("ci_high"),
        "n_tasks",
    )
    mirrored = rows.select(
        pl.col("model_y").alias("model_x"),
        pl.col("model_x").alias("model_y"),
        (1.0 - pl.col("estimate")).alias("estimate"),
        (1.0 - pl.col("ci_high")).alias("ci_low"),
        (1.0 - pl.col("ci_low")).alias("ci_high"),
        "n_tasks",
    )
    return (
        pl.concat([rows, mirrored])
        .unique(["model_x", "model_y"], keep="first", maintain_order=True)
        .sort("model_x", "model_y")
    )


_MARKDOWN_COLUMNS = (
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
    "change_pct",
    "p_adjusted",
    "verdict",
)


def _rows_to_show(sub: pl.DataFrame) -> pl.DataFrame:
    """Drop an ALL row that only repeats the pair's single task row (one common task)."""
    tasks = sub.filter(pl.col("task") != ALL_TASKS)
    if tasks.height == 1 and "n_tasks" in sub.columns:
        return sub.filter((pl.col("task") != ALL_TASKS) | (pl.col("n_tasks") != 1))
    return sub


def comparison_markdown(frame: pl.DataFrame, *, digits: int | None = None) -> str:
    """Markdown tables in the experiment-log format, one table per model pair.

    ``### B (baseline) vs A`` then ``| Metric | B (n=K) | A (n=K) | Change |
    p-value | Verdict |`` — the baseline B first, as in
    ``factorion-EXPERIMENTS.md`` — with each side as ``mean +/- sd``, the
    change relative to B, the adjusted p-value, and bold change/verdict when
    significant. ``(n=K)`` sits in the header when every row of a side has the
    same n, otherwise in each cell. Decimals follow each metric's scale
    (``markdown.digits_for``) unless ``digits`` is given. An ``"ALL"`` row
    that only repeats the pair's one task row is left out. Names are escaped
    (``markdown.md_text``).
    """
    missing = [c for c in _MARKDOWN_COLUMNS if c not in frame.columns]
    if missing:
        raise MetricError(f"not a comparisons frame (missing {missing})")
    scale = {
        m: digits if digits is not None else md.digits_for([*g["a_mean"], *g["b_mean"]])
        for (m,), g in frame.group_by("metric")
    }

    def label(r: dict) -> str:
        where = "all tasks" if r["task"] == ALL_TASKS else r["task"]
        return f"{md.md_text(r['metric'])} ({md.md_text(where)})"

    out: list[str] = []
    pairs = frame.select("model_a", "model_b").unique(maintain_order=True).iter_rows()
    for a, b in pairs:
        sub = _rows_to_show(frame.filter((pl.col("model_a") == a) & (pl.col("model_b") == b)))
        if out:
            out.append("")
        out += [f"### {md.md_text(b)} (baseline) vs {md.md_text(a)}", ""]
        out += pair_table(sub, label=label, digits=scale)
        if "correction" in sub.columns and sub.height:
            first = sub.row(0, named=True)
            tests = (
                ", ".join(sorted(set(sub["test"].drop_nulls().to_list()))) if "test" in sub.columns else ""
            )
            alpha = first.get("alpha") or 0.05
            out.append("")
            out.append(
                f"p-values: {md.md_text(tests)}; {first['correction']}-adjusted across the family; "
                f"significance at {alpha:g}."
            )
    return "\n".join(out) + "\n"
