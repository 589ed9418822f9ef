"""Fast kernels for ``compare.pairwise_comparisons`` (private).

Why: a 6-model × 24-task comparison runs 360 per-task exact tests and 720
bootstrap PoI products; scipy's per-call overhead and the full resample-count
matrices dominated its time. These kernels compute the same numbers with
less work:

* ``fisher_exact_p`` — two-sided Fisher exact p-value from the full
  hypergeometric support in one vectorized step, memoized per count tuple.
* ``Resamples`` — each (model, task) draws its resample indices exactly as
  ``bootstrap._resample_counts`` does (same seed, same RNG calls), so
  intervals are unchanged; for 0/1 data only the number of successes drawn
  per replicate is kept, which is all the PoI and the resampled rate need;
  for other data each cell's cumulative counts over its sorted values are
  cached, so a pair's PoI costs O(reps·n) instead of a win-matrix product.
  Both give the same floats as ``bootstrap._poi_from_counts`` (exact sums).
* Large cells (``reps · n`` above ``LARGE_CELL``): no (reps, n) matrix. A 0/1
  cell draws its successes per replicate from Binomial(n, s/n), which is their
  exact distribution under resampling. Any other cell uses the bootstrap's
  large-sample normal limit: its resampled mean is x̄ + z·sd/√n (sd with ddof 0,
  the resampling distribution's own), and a pair's P(X > Y) moves by each side's
  resampled mean of its placement values (``ranks.placements``; DeLong's
  first-order expansion), the small side resampled exactly, a large side by
  the same normal limit. One z per cell, shared by every pair, as the draws are.
  Memory stays linear in the runs; the cache of matrices is bounded by
  ``CACHE_BYTES`` (least recently used cells are redrawn, with the same seed).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from fle_core.stats import ranks
from fle_core.stats._resample import _rng, percentile_interval
from fle_core.stats.bootstrap import (
    _model_seed,
    _resample_counts,
    prob_improvement_point,
)

#: pmf values within this relative distance of the observed table's count as
#: "as extreme" (absorbs rounding in mathematically equal probabilities; R uses 1e-7)
_REL_TIE = 1e-7


def hypergeom_pmf(n1: int, n2: int, k: int) -> tuple[np.ndarray, int]:
    """pmf of A's successes given margins (n1 A trials, n2 B trials, k successes).

    Returns ``(pmf over x = lo..hi, lo)``; computed from log-factorials and
    normalised so it sums to 1.
    """
    lo, hi = max(0, k - n2), min(k, n1)
    x = np.arange(lo, hi + 1)
    lf = log_factorials(n1 + n2)
    logp = -(lf[x] + lf[n1 - x] + lf[k - x] + lf[n2 - k + x])
    p = np.exp(logp - logp.max())
    return p / p.sum(), lo


_LOG_FACTORIALS = np.zeros(1)


def log_factorials(n: int) -> np.ndarray:
    """``log(i!)`` for i = 0..n (at least), grown on demand from ``math.lgamma`` and kept:
    scipy.special is not imported (``fle-core gate`` starts faster without it)."""
    global _LOG_FACTORIALS
    if _LOG_FACTORIALS.size <= n:
        size = max(n + 1, 2 * _LOG_FACTORIALS.size)
        _LOG_FACTORIALS = np.array([math.lgamma(i + 1.0) for i in range(size)])
    return _LOG_FACTORIALS


def exact_two_sided(pmf: np.ndarray, observed_index: int) -> float:
    """Sum of the probabilities no larger than the observed one (Fisher's rule)."""
    p_obs = pmf[observed_index]
    if p_obs * (1 + _REL_TIE) >= pmf.max():
        return 1.0
    return float(min(pmf[pmf <= p_obs * (1 + _REL_TIE)].sum(), 1.0))


@lru_cache(maxsize=65536)
def fisher_exact_p(s1: int, n1: int, s2: int, n2: int) -> float:
    """Two-sided Fisher exact p-value for [[s1, n1-s1], [s2, n2-s2]] (as scipy's)."""
    k = s1 + s2
    if n1 == 0 or n2 == 0 or k == 0 or k == n1 + n2:
        return 1.0
    pmf, lo = hypergeom_pmf(n1, n2, k)
    return exact_two_sided(pmf, s1 - lo)


#: the exact stratified test convolves the strata's pmfs; above this many
#: multiply-adds every stratum is large and the CMH chi-square is used instead
EXACT_STRATIFIED_MAX_COST = 20_000_000


def exact_stratified_p(tables) -> float | None:
    """Exact conditional test of a common odds ratio of 1 across 2×2 strata.

    ``tables``: (s1, n1, s2, n2) per stratum. Given every stratum's margins,
    A's successes in stratum k are hypergeometric; the statistic Σ s1_k has
    the convolution of those pmfs as its null distribution (Mantel-Haenszel
    exact test, R's ``mantelhaen.test(exact=TRUE)``). Two-sided p-value by
    Fisher's rule: the total probability of sums no more likely than the
    observed one. With one stratum this is Fisher's exact test. Returns None
    when the convolution would cost more than ``EXACT_STRATIFIED_MAX_COST``.
    """
    pmfs, observed = [], 0
    for s1, n1, s2, n2 in tables:
        k = s1 + s2
        if n1 == 0 or n2 == 0 or k == 0 or k == n1 + n2:
            continue  # margins fix s1: the stratum carries no information
        pmf, lo = hypergeom_pmf(n1, n2, k)
        pmfs.append(pmf)
        observed += s1 - lo
    if not pmfs:
        return 1.0
    total = sum(p.size for p in pmfs)
    if total * max(p.size for p in pmfs) > EXACT_STRATIFIED_MAX_COST:
        return None
    dist = pmfs[0]
    for pmf in pmfs[1:]:
        dist = np.convolve(dist, pmf)
    return exact_two_sided(dist / dist.sum(), observed)


#: cells with more resample entries than this (reps × runs) take the large-sample path
LARGE_CELL = 10_000_000
#: the resample cache holds at most this many bytes of matrices
CACHE_BYTES = 1 << 30


def _is_binary(x: np.ndarray) -> bool:
    return bool(np.all((x == 0.0) | (x == 1.0)))


class Resamples:
    """Resample draws per (model, task), drawn once and shared by every pair.

    Seeded like ``bootstrap.probability_of_improvement`` (seed, model, task,
    "poi") so both report the same probability-of-improvement intervals. For
    0/1 data the cache holds the successes drawn per replicate (``reps``,)
    instead of the counts matrix (``reps``, n): ``counts @ x`` is that same
    integer, so every derived number is bit-for-bit the same.
    """

    def __init__(self, reps: int, seed, large_cell: int = LARGE_CELL):
        self.reps, self.seed, self.large_cell = reps, seed, large_cell
        self.cache: dict[tuple, Any] = {}  # (model, task) draws and ("cum", model, task) sums
        self.bytes = 0

    def _keep(self, key: tuple, value) -> None:
        """Store ``value`` and evict the least recently used entries beyond ``CACHE_BYTES``."""
        size = sum(a.nbytes for a in value if isinstance(a, np.ndarray))
        self.cache[key] = (size, value)
        self.bytes += size
        while self.bytes > CACHE_BYTES and len(self.cache) > 1:
            oldest = next(iter(self.cache))
            self.bytes -= self.cache.pop(oldest)[0]

    def _get(self, key: tuple):
        hit = self.cache.pop(key, None)
        if hit is None:
            return None
        self.cache[key] = hit  # most recently used goes last
        return hit[1]

    def large(self, x: np.ndarray) -> bool:
        return self.reps * x.size > self.large_cell

    def draw(self, model: str, task, x: np.ndarray) -> tuple[bool, np.ndarray]:
        key = (model, task)
        got = self._get(key)
        if got is None:
            rng = _rng(_model_seed(self.seed, model, str(task), "poi"))
            n = x.size
            if _is_binary(x) and self.large(x):  # the successes' exact resampling distribution
                got = (True, rng.binomial(n, np.count_nonzero(x) / n, size=self.reps).astype(np.float64))
            elif _is_binary(x):
                idx = rng.integers(0, n, size=(self.reps, n))  # same call as _resample_counts
                hit = x.astype(np.uint8)[idx]
                got = (True, hit.sum(axis=1, dtype=np.int64).astype(np.float64))
            elif self.large(x):  # the normal limit: one standard normal per replicate
                got = (False, rng.standard_normal(self.reps))
            else:
                got = (False, _resample_counts(n, self.reps, rng))
            self._keep(key, got)
        return got

    def mean_reps(self, model: str, task, x: np.ndarray) -> np.ndarray:
        """Resampled mean of x per replicate, shape (reps,)."""
        binary, w = self.draw(model, task, x)
        if not binary and self.large(x):
            return x.mean() + w * (x.std() / math.sqrt(x.size))
        return (w if binary else w @ x) / x.size

    def poi_reps(self, a: str, task_a, xa: np.ndarray, b: str, task_b, xb: np.ndarray) -> np.ndarray:
        """P(A>B)+½P(A=B) per replicate (``bootstrap._poi_from_counts``)."""
        bin_a, wa = self.draw(a, task_a, xa)
        bin_b, wb = self.draw(b, task_b, xb)
        na, nb = xa.size, xb.size
        if bin_a and bin_b:  # exact halves: identical to the win-matrix product
            fa, fb = na - wa, nb - wb
            return (wa * fb + 0.5 * (wa * wb + fa * fb)) / (na * nb)
        if self.large(xa) or self.large(xb):
            point = ranks.prob_improvement(xa, xb)
            term_a = self._placement_mean(a, task_a, xa, ranks.placements(xa, xb))
            term_b = self._placement_mean(b, task_b, xb, ranks.placements(xb, xa))
            return term_a + (1.0 - term_b) - point
        if bin_a:
            wa = _expand_binary(xa, wa)
        if bin_b:
            wb = self.cumulative(b, task_b, xb, _expand_binary(xb, wb))
        else:
            wb = self.cumulative(b, task_b, xb, wb)
        return _win_total_cumulative(xa, wa, *wb) / (na * nb)

    def _placement_mean(self, model: str, task, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The resampled mean of x's placement values p, per replicate: exactly for 0/1 and
        small cells, by the normal limit for large ones."""
        binary, w = self.draw(model, task, x)
        if binary:
            p1 = p[x == 1.0][0] if (x == 1.0).any() else 0.0
            p0 = p[x == 0.0][0] if (x == 0.0).any() else 0.0
            return (w * p1 + (x.size - w) * p0) / x.size
        if self.large(x):
            return p.mean() + w * (p.std() / math.sqrt(x.size))
        return (w @ p) / x.size

    def cumulative(self, model: str, task, x: np.ndarray, w: np.ndarray):
        """(sorted x, cumulative resample counts over it with a leading 0), cached.

        Drawn once per (model, task) and reused by every pair that cell is in.
        """
        key = ("cum", model, task)
        got = self._get(key)
        if got is None:
            order = np.argsort(x, kind="stable")
            cum = np.zeros((w.shape[0], x.size + 1))
            np.cumsum(w[:, order], axis=1, out=cum[:, 1:])
            got = (x[order], cum)
            self._keep(key, got)
        return got


def _win_total_cumulative(x: np.ndarray, wx: np.ndarray, ys: np.ndarray, cum: np.ndarray) -> np.ndarray:
    """Σ_i wx_i·(#y < x_i + ½·#y = x_i) per replicate, from y's cumulative counts.

    Same number as ``bootstrap._win_total`` (wx · L · wy): every term is an
    integer or half-integer far below 2**53, so float64 sums are exact.
    """
    lt = np.searchsorted(ys, x, side="left")
    le = np.searchsorted(ys, x, side="right")
    below, upto = cum[:, lt], cum[:, le]
    return np.einsum("ij,ij->i", wx, below + 0.5 * (upto - below))


def _expand_binary(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Counts matrix with the same per-value totals as k successes (mixed-type pairs).

    Puts all successes on the first success run and all failures on the first
    failure run: PoI depends on counts only through per-value totals.
    """
    w = np.zeros((k.size, x.size))
    ones, zeros = np.flatnonzero(x == 1.0), np.flatnonzero(x == 0.0)
    if ones.size:
        w[:, ones[0]] = k
    if zeros.size:
        w[:, zeros[0]] = x.size - k
    return w


def poi_point(x: np.ndarray, y: np.ndarray) -> float:
    """``bootstrap.prob_improvement_point`` with a shortcut for 0/1 data.

    For 0/1 data the win total is ``s_x·f_y + ½(s_x·s_y + f_x·f_y)``, a
    multiple of ½ held exactly, so the result is the same float.
    """
    if _is_binary(x) and _is_binary(y):
        sx, sy = float(np.count_nonzero(x)), float(np.count_nonzero(y))
        fx, fy = x.size - sx, y.size - sy
        return (sx * fy + 0.5 * (sx * sy + fx * fy)) / (x.size * y.size)
    return prob_improvement_point(x, y)


def percentiles(replicates: np.ndarray, confidence: float):
    """``bootstrap.percentile_interval`` over axis 0, one vectorized call when no NaN.

    ``nanpercentile`` loops over columns in Python; without NaN ``percentile``
    gives the same order statistics and interpolation.
    """
    if np.isnan(replicates).any():
        return percentile_interval(replicates, confidence)
    alpha = 1.0 - confidence
    return (
        np.percentile(replicates, 100 * alpha / 2, axis=0),
        np.percentile(replicates, 100 * (1 - alpha / 2), axis=0),
    )
