"""The regression gate's tests: is the candidate B worse than the baseline A (by more than a margin)?

Pure functions over two summaries frames (one per side, ``summarize_trajectories``
columns). Every metric is compared on the tasks both sides ran, paired by task:
the estimate is the task-weighted difference ``D = mean_k(mean(B_k) − mean(A_k))``
(each task weighs the same, as the comparisons' ALL row), read so that a
negative ``D`` is worse for B (a lower-is-better metric is negated first). The
question is one-sided — did B regress? — with the null ``D ≥ −margin``:

* **success**, margin 0: the exact conditional stratified test (Mantel-Haenszel
  exact; Fisher's one-sided test with one task), lower tail of B's successes;
* **success**, margin m > 0: the stratified Miettinen-Nurminen score test of the
  shifted null ``D = −m`` (task weights 1/K), and B must also be worse at all:
  ``p = max(p_exact(0), p_score(m))`` — rejecting needs both, so the test keeps
  its level and a wider margin can never flag more;
* **values** (rewards, tokens, ...): the stratified Welch t test of ``D + m``
  (one task: Welch's t test), df by Welch-Satterthwaite.

p-values are corrected across the metrics checked (Holm by default). The interval
shown is the two-sided ``1 − 2α`` interval of the same statistic (score interval /
Welch t interval), so its upper end is the one-sided bound the test uses.
Definitions and the verdicts are in ``docs/gate.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from fle_core.errors import MetricError
from fle_core.stats import corrections
from fle_core.stats._kernels import EXACT_STRATIFIED_MAX_COST, hypergeom_pmf
from fle_core.stats.bootstrap import _task_values

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

ALL_TASKS = "ALL"  # the comparisons contract's across-task row (``compare.ALL_TASKS``)
REGRESSED = "regressed"
IMPROVED = "improved"
WITHIN_MARGIN = "within margin"
INCONCLUSIVE = "inconclusive"
NO_CHANGE = "no significant change"
VERDICTS = (REGRESSED, IMPROVED, WITHIN_MARGIN, INCONCLUSIVE, NO_CHANGE)
_NORMAL = NormalDist()
#: p-values within this relative distance below α count as α (exact p-values such as
#: 1/20 = α come out of the pmf's normalisation a few ulps low)
_TIE = 1e-9


def below(p: float | None, alpha: float) -> bool:
    """``p < alpha``, with a p that equals α up to rounding counted as not below."""
    return p is not None and p < alpha * (1 - _TIE)


def _phi(z: float) -> float:
    """Standard normal cdf, also at ±inf."""
    return 0.0 if z == -math.inf else 1.0 if z == math.inf else _NORMAL.cdf(z)


@dataclass(frozen=True)
class GateMetric:
    """A metric the gate can check: a summaries column, its direction and kind."""

    name: str
    column: str
    higher_is_better: bool = True
    binary: bool = False
    text: str = ""


#: The metrics ``fle-core gate --metric`` accepts (docs/gate.md defines each).
METRICS: dict[str, GateMetric] = {
    m.name: m
    for m in (
        GateMetric("success", "success", binary=True, text="success rate (quota reached)"),
        GateMetric("mean_score", "normalized_reward", text="best reward ÷ task quota"),
        GateMetric("best_reward", "best_reward", text="best step reward"),
        GateMetric("final_reward", "final_reward", text="last step reward"),
        GateMetric("production_score", "production_score", text="production score"),
        GateMetric("total_tokens", "total_tokens", higher_is_better=False, text="tokens per trajectory"),
        GateMetric("duration_s", "duration_s", higher_is_better=False, text="seconds per trajectory"),
        GateMetric("steps", "steps", higher_is_better=False, text="steps per trajectory"),
    )
}

GATE_SCHEMA: dict[str, PolarsDataType] = {
    # the comparisons contract (model_a = the candidate B, model_b = the baseline A) ...
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
    "test": pl.String,
    "p_value": pl.Float64,
    "p_adjusted": pl.Float64,
    "correction": pl.String,
    "alpha": pl.Float64,
    "verdict": pl.String,
    "n_tasks": pl.Int64,
    # ... and the gate's own columns
    "margin": pl.Float64,
    "confidence": pl.Float64,
    "higher_is_better": pl.Boolean,
    "regressed": pl.Boolean,
}


def gate_metric(name: str) -> GateMetric:
    """The metric called ``name``; a ``MetricError`` listing the choices otherwise."""
    if name not in METRICS:
        raise MetricError(f"unknown gate metric {name!r}", hint=f"choose from {', '.join(METRICS)}")
    return METRICS[name]


# ----------------------------------------------------------------- success: exact, margin 0 ---
def exact_stratified_less(tables: Sequence[tuple[int, int, int, int]]) -> float:
    """One-sided exact conditional test that B does worse than A, across 2×2 strata.

    ``tables``: ``(s_a, n_a, s_b, n_b)`` per task. Given each task's margins, A's
    successes are hypergeometric; under a common odds ratio of 1 the sum
    ``Σ s_a`` has the convolution of those pmfs as its distribution. p = P(Σ s_a ≥
    observed): A's successes this high, i.e. B's this low. One task: Fisher's
    one-sided test (``scipy.stats.fisher_exact([[s_b, f_b], [s_a, f_a]],
    alternative="less")``). Strata too large to convolve use the CMH z instead.
    """
    pmfs, observed = [], 0
    for sa, na, sb, nb in tables:
        k = sa + sb
        if na == 0 or nb == 0 or k == 0 or k == na + nb:
            continue  # margins fix s_a: no information
        pmf, lo = hypergeom_pmf(na, nb, k)
        pmfs.append(pmf)
        observed += sa - lo
    if not pmfs:
        return 1.0
    if sum(p.size for p in pmfs) * max(p.size for p in pmfs) > EXACT_STRATIFIED_MAX_COST:
        return _cmh_less(tables)
    dist = pmfs[0]
    for pmf in pmfs[1:]:
        dist = np.convolve(dist, pmf)
    dist = dist / dist.sum()
    return float(min(dist[observed:].sum(), 1.0))


def _cmh_less(tables) -> float:
    """Normal approximation of ``exact_stratified_less`` (signed CMH statistic)."""
    num = var = 0.0
    for sa, na, sb, nb in tables:
        n, k = na + nb, sa + sb
        if n < 2:
            continue
        num += sa - na * k / n
        var += na * nb * k * (n - k) / (n * n * (n - 1))
    return 1.0 if var <= 0 else _NORMAL.cdf(-num / math.sqrt(var))


# ---------------------------------------------------- success: Miettinen-Nurminen, margin m ---
def restricted_proportions(sa, na, sb, nb, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood (p_a, p_b) under ``p_b − p_a = delta`` (Miettinen-Nurminen 1985).

    The closed-form root of the likelihood's cubic (as ``statsmodels``'
    ``score_test_proportions_2indep``); the pooled proportion at ``delta = 0``;
    a bounded numerical maximum where the closed form is degenerate. Vectorized
    over strata.
    """
    sa, na, sb, nb = (np.asarray(v, dtype=np.float64) for v in (sa, na, sb, nb))
    n, c = na + nb, sa + sb
    if delta == 0:
        pooled = c / n
        return pooled, pooled.copy()
    t3 = n
    t2 = (nb + 2 * na) * delta - n - c
    t1 = (sa * delta - n - 2 * sa) * delta + c
    t0 = sa * delta * (1 - delta)
    q = (t2 / (3 * t3)) ** 3 - t1 * t2 / (6 * t3**2) + t0 / (2 * t3)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.sign(q) * np.sqrt(np.maximum((t2 / (3 * t3)) ** 2 - t1 / (3 * t3), 0.0))
        angle = (np.pi + np.arccos(np.clip(q / p**3, -1.0, 1.0))) / 3
        pa = 2 * p * np.cos(angle) - t2 / (3 * t3)
    lo, hi = max(0.0, -delta), min(1.0, 1.0 - delta)
    bad = ~np.isfinite(pa) | (pa < lo - 1e-9) | (pa > hi + 1e-9)
    for i in np.flatnonzero(bad):
        pa[i] = _restricted_numeric(sa[i], na[i], sb[i], nb[i], delta, lo, hi)
    pa = np.clip(pa, lo, hi)
    return pa, pa + delta


def _restricted_numeric(sa, na, sb, nb, delta, lo, hi) -> float:
    """The restricted MLE of p_a (fallback): the log-likelihood is concave in p_a, so its
    derivative falls across (lo, hi); bisect it, or stop at the end it climbs to."""

    def slope(x: float) -> float:
        y = x + delta
        return sa / x - (na - sa) / (1 - x) + sb / y - (nb - sb) / (1 - y)

    eps = 1e-12
    a, b = lo + eps, hi - eps
    with np.errstate(divide="ignore", invalid="ignore"):
        if slope(a) <= 0:
            return lo
        if slope(b) >= 0:
            return hi
        for _ in range(200):
            mid = (a + b) / 2
            if slope(mid) > 0:
                a = mid
            else:
                b = mid
    return (a + b) / 2


def _score_z(tables: np.ndarray, delta: float) -> float:
    """``(D − delta) / SE(delta)``: the stratified score statistic with task weights 1/K.

    ``SE²(delta) = Σ_k V_k / K²``, ``V_k = (p̃_a(1−p̃_a)/n_a + p̃_b(1−p̃_b)/n_b)·N_k/(N_k−1)``
    at the restricted estimates (Miettinen-Nurminen's variance, small-sample factor
    included). One task: statsmodels' ``score_test_proportions_2indep`` statistic.
    """
    sa, na, sb, nb = tables.T
    k = tables.shape[0]
    d = float(np.mean(sb / nb - sa / na))
    pa, pb = restricted_proportions(sa, na, sb, nb, delta)
    n = na + nb
    v = (pa * (1 - pa) / na + pb * (1 - pb) / nb) * n / np.maximum(n - 1, 1)
    se = math.sqrt(float(v.sum())) / k
    if se == 0:
        return math.copysign(math.inf, d - delta) if d != delta else 0.0
    return (d - delta) / se


def score_test_less(tables: Sequence[tuple[int, int, int, int]], margin: float) -> float:
    """One-sided p of the stratified Miettinen-Nurminen score test of ``D = −margin``
    against ``D < −margin`` (B worse than A by more than the margin): ``Φ(z)``."""
    return _phi(_score_z(np.asarray(tables, dtype=np.float64), -margin))


def score_interval(tables: Sequence[tuple[int, int, int, int]], confidence: float) -> tuple[float, float]:
    """Two-sided score interval of ``D``: the deltas the score test does not reject
    at ``(1 − confidence)/2`` per side (one task: statsmodels' ``confint_proportions_2indep``
    with ``method="score"``). Found by bisection: ``z(delta)`` falls as delta grows."""
    t = np.asarray(tables, dtype=np.float64)
    crit = _NORMAL.inv_cdf(0.5 + confidence / 2)
    d = float(np.mean(t[:, 2] / t[:, 3] - t[:, 0] / t[:, 1]))

    def solve(target: float, a: float, b: float) -> float:
        f = lambda x: _score_z(t, x) - target
        fa, fb = f(a), f(b)
        if fa * fb > 0:
            return a if abs(fa) < abs(fb) else b
        for _ in range(80):
            mid = (a + b) / 2
            fm = f(mid)
            if fm == 0:
                return mid
            if fa * fm < 0:
                b = mid
            else:
                a, fa = mid, fm
        return (a + b) / 2

    edge = 1 - 1e-12
    lo = -1.0 if d <= -edge else solve(crit, -edge, d)
    hi = 1.0 if d >= edge else solve(-crit, d, edge)
    return lo, hi


def smallest_possible_p(tables: Sequence[tuple[int, int, int, int]], margin: float) -> float:
    """The gate's success p-value for the most extreme data with these trial counts:
    A succeeds on every trial and B on none. When even that cannot reach α, the
    gate could never flag a regression, and says so instead of passing."""
    extreme = [(na, na, 0, nb) for _, na, _, nb in tables]
    p = exact_stratified_less(extreme)
    return max(p, score_test_less(extreme, margin)) if margin > 0 else p


def trials_needed_to_test(n_tasks: int, margin: float, alpha: float, n_metrics: int) -> int | None:
    """Fewest trials per task on each side with which the gate can flag a regression at all
    (``smallest_possible_p · n_metrics < alpha``, Holm's smallest bound); None beyond 1000."""
    for n in range(1, 1001):
        if below(smallest_possible_p([(n, n, n, n)] * n_tasks, margin) * n_metrics, alpha):
            return n
    return None


# ----------------------------------------------------------------------------------- values ---
def welch_shifted(strata: Sequence[tuple[np.ndarray, np.ndarray]], margin: float, confidence: float) -> dict:
    """Stratified Welch t test of ``D + margin < 0`` and the t interval of ``D``.

    ``D = mean_k(mean(b_k) − mean(a_k))``; ``SE² = Σ_k (s²_ak/n_ak + s²_bk/n_bk) / K²``
    (ddof 1); Welch-Satterthwaite df over the 2K terms; ``p = T_df((D + margin)/SE)``.
    One task: ``scipy.stats.ttest_ind(b + margin, a, equal_var=False,
    alternative="less")``. Needs 2 values per task on each side. With no spread at
    all, the difference is certain: p = 0 if ``D + margin < 0``, else 1.
    """
    k = len(strata)
    d = float(np.mean([b.mean() - a.mean() for a, b in strata]))
    terms = [(x.var(ddof=1) / x.size, x.size) for pair in strata for x in pair]
    total = sum(v for v, _ in terms)
    if total <= 0:
        return {"p": 0.0 if d + margin < 0 else 1.0, "low": d, "high": d, "df": math.inf}
    denom = sum(v * v / (n - 1) for v, n in terms)
    df = total**2 / denom if denom > 0 else math.inf
    se = math.sqrt(total) / k
    from scipy import special  # only value metrics need Student's t (start-up: see bench/gate.py)

    crit = float(special.stdtrit(df, 0.5 + confidence / 2))
    return {
        "p": float(special.stdtr(df, (d + margin) / se)),
        "low": d - crit * se,
        "high": d + crit * se,
        "df": df,
    }


# ------------------------------------------------------------------------------------- gate ---
class TooFewTrials(MetricError):
    """The data cannot show a regression at all (the gate must not pass silently)."""


def _side_stats(per_task: Mapping[str, np.ndarray], tasks: Sequence[str]) -> dict:
    pooled = np.concatenate([per_task[t] for t in tasks])
    return {
        "mean": float(np.mean([per_task[t].mean() for t in tasks])),
        "std": float(np.std(pooled, ddof=1)) if pooled.size >= 2 else None,
        "n": int(pooled.size),
    }


def _values(frame: pl.DataFrame, column: str) -> dict[str, np.ndarray]:
    if column not in frame.columns:
        raise MetricError(f"the summaries have no column {column!r}")
    found = _task_values(frame.with_columns(pl.lit("_").alias("model")), column)
    return {str(t): v for t, v in found.get("_", {}).items()}


def _metric_row(metric: GateMetric, va, vb, tasks, margin, alpha, n_metrics) -> dict:
    """One metric's test, interval and one-sided p (uncorrected), from B's point of view.

    ``va``/``vb``: {task: values} of the baseline A and the candidate B.
    """
    sign = 1.0 if metric.higher_is_better else -1.0
    base, cand = _side_stats(va, tasks), _side_stats(vb, tasks)
    confidence = 1 - 2 * alpha
    if metric.binary:
        tables = [(int(va[t].sum()), va[t].size, int(vb[t].sum()), vb[t].size) for t in tasks]
        smallest = smallest_possible_p(tables, margin)
        if not below(smallest * n_metrics, alpha):
            need = trials_needed_to_test(len(tasks), margin, alpha, n_metrics)
            per = sorted({x for _, na, _, nb in tables for x in (na, nb)})
            raise TooFewTrials(
                f"too few trials to test {metric.name}: with {'/'.join(map(str, per))} trial(s) per task "
                f"on {len(tasks)} task(s), even the most extreme outcome gives p = {smallest:.3g}"
                + (f" (× {n_metrics} metrics, Holm)" if n_metrics > 1 else "")
                + f", not below α = {alpha:g}",
                hint=(f"run at least {need} trials per task on each side" if need else "run more trials")
                + (" or compare more tasks" if len(tasks) < 24 else "")
                + (", or lower the margin" if margin > 0 else ""),
            )
        p = exact_stratified_less(tables)
        test = "mantel_haenszel_exact" if len(tasks) > 1 else "fisher_exact"
        if margin > 0:
            p = max(p, score_test_less(tables, margin))
            test += " + miettinen_nurminen"
        lo, hi = score_interval(tables, confidence)
    else:
        short = [t for t in tasks if va[t].size < 2 or vb[t].size < 2]
        if short:
            raise TooFewTrials(
                f"too few trials to test {metric.name}: {len(short)} task(s) have fewer than 2 values "
                f"on a side ({', '.join(short[:5])}{'…' if len(short) > 5 else ''})",
                hint="Welch's t test needs at least 2 trials per task on each side",
            )
        res = welch_shifted([(sign * va[t], sign * vb[t]) for t in tasks], margin, confidence)
        p, lo, hi = res["p"], res["low"], res["high"]
        test = "stratified_welch_t" if len(tasks) > 1 else "welch_t"
        if sign < 0:
            lo, hi = -hi, -lo
    diff = cand["mean"] - base["mean"]
    return {  # the comparisons contract's a = the candidate, b = the baseline
        "metric": metric.name,
        "a_mean": cand["mean"],
        "a_std": cand["std"],
        "a_n": cand["n"],
        "b_mean": base["mean"],
        "b_std": base["std"],
        "b_n": base["n"],
        "diff": diff,
        "diff_ci_low": lo,
        "diff_ci_high": hi,
        "change_pct": None if base["mean"] == 0 else 100.0 * diff / abs(base["mean"]),
        "test": test,
        "p_value": min(max(p, 0.0), 1.0),
        "n_tasks": len(tasks),
        "margin": margin,
        "confidence": confidence,
        "higher_is_better": metric.higher_is_better,
    }


def verdict(row: Mapping, alpha: float) -> str:
    """``regressed`` when the corrected one-sided p is below α; otherwise, from the
    ``1 − 2α`` interval read in the metric's better direction: ``improved`` (it
    excludes 0 on the better side), ``within margin`` (margin > 0 and the interval
    lies above −margin), else ``inconclusive`` (margin > 0) or ``no significant change``."""
    if below(row["p_adjusted"], alpha):
        return REGRESSED
    lo, hi = row["diff_ci_low"], row["diff_ci_high"]
    worst = lo if row["higher_is_better"] else -hi  # the interval's end on the worse side
    if worst > 0:
        return IMPROVED
    if row["margin"] > 0:
        return WITHIN_MARGIN if worst > -row["margin"] else INCONCLUSIVE
    return NO_CHANGE


def regression_tests(
    baseline: pl.DataFrame,
    candidate: pl.DataFrame,
    metrics: Sequence[str] = ("success",),
    *,
    baseline_label: str = "baseline",
    candidate_label: str = "candidate",
    tasks: Sequence[str] | None = None,
    margins: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    correction: str = "holm",
) -> pl.DataFrame:
    """Test every metric for a regression of ``candidate`` against ``baseline`` (``GATE_SCHEMA``).

    Both frames are summaries (one side each). ``tasks``: the tasks to compare
    (default: every task with values on both sides, per metric). ``margins``:
    per-metric margins in the metric's units (default 0). One row per metric
    (``task = "ALL"``); ``model_a`` is the candidate and ``model_b`` the baseline,
    as in the comparisons contract, so ``markdown.pair_table`` renders it.
    p-values are corrected with ``correction`` across the metrics; the row's
    ``verdict`` is ``verdict(row, alpha)`` and ``regressed`` says whether it failed.
    Raises ``MetricError`` (``TooFewTrials``) when a metric cannot be tested.
    """
    if not 0 < alpha < 0.5:
        raise MetricError(f"alpha must be in (0, 0.5), got {alpha}")
    corrections.adjust_pvalues([], correction)  # unknown names fail before any work
    margins = dict(margins or {})
    chosen = [gate_metric(m) for m in dict.fromkeys(metrics)]
    if not chosen:
        raise MetricError("no metric to check", hint=f"choose from {', '.join(METRICS)}")
    bad = {m: v for m, v in margins.items() if not (math.isfinite(v) and v >= 0)}
    if bad:
        raise MetricError(f"a margin must be a number ≥ 0: {bad}")
    rows = []
    for metric in chosen:
        va, vb = _values(baseline, metric.column), _values(candidate, metric.column)
        common = sorted(set(va) & set(vb)) if tasks is None else list(tasks)
        missing = [t for t in common if t not in va or t not in vb]
        if missing:
            raise MetricError(
                f"no {metric.name} values for task(s) {', '.join(missing[:5])} on "
                + ("both sides" if all(t not in va and t not in vb for t in missing) else "one side"),
                hint="pass tasks both sides ran, or --tasks common",
            )
        if not common:
            raise MetricError(
                f"no common tasks with {metric.name} values: the two sides share no task"
                + (" that has a quota" if metric.name == "success" else ""),
                hint="check the sides, or choose another metric",
            )
        row = _metric_row(metric, va, vb, common, margins.get(metric.name, 0.0), alpha, len(chosen))
        rows.append({"model_a": candidate_label, "model_b": baseline_label, "task": ALL_TASKS, **row})
    p = np.array([r["p_value"] for r in rows], dtype=np.float64)
    adjusted = corrections.adjust_pvalues(p, correction)
    method = corrections.CORRECTIONS[correction.lower()]
    for r, pa in zip(rows, adjusted, strict=True):
        r.update(p_adjusted=float(pa), correction=method, alpha=alpha)
        r["verdict"] = verdict(r, alpha)
        r["regressed"] = r["verdict"] == REGRESSED
    return pl.DataFrame({c: [r.get(c) for r in rows] for c in GATE_SCHEMA}, schema=GATE_SCHEMA)
