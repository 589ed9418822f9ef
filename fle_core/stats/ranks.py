"""Two-sample statistics over all pairs (x_i, y_j), computed from sorted values.

Why: the direct formulas build the n×m matrix of pairs, which is 4.7 GiB for two
systems of 25,000 runs (issue 23). Every function here sorts once and needs
O(n + m) memory and O((n + m) log) time, and gives the same float as the pair
matrix (checked against it in ``tests/test_ranks.py``):

* ``win_total`` / ``prob_improvement``: Σ_ij [x_i > y_j] + ½[x_i = y_j], the
  Mann-Whitney U of x, and U / (n·m) = P(X > Y) + ½P(X = Y). The total is a sum of
  halves, exact in float64 below 2⁵³.
* ``kth_difference`` / ``hodges_lehmann``: the k-th smallest of the n·m
  differences x_i − y_j and their median (the Hodges-Lehmann shift), by randomized
  selection over the implicitly sorted difference matrix: each row
  x_i − y_(desc) is non-decreasing in floating point (rounding is monotone), so
  the count of differences below a pivot is a vectorized binary search per row.
  Expected O(log(n·m)) rounds of O(n log m).
* ``placements``: each x_i's win share against y, Σ_j [x_i > y_j] + ½[x_i = y_j]
  over m (DeLong's placement values), used for the large-sample variance of
  P(X > Y) (``_kernels.Resamples``).
"""

from __future__ import annotations

import numpy as np

#: selection switches to a partition of the remaining candidates below this many
_SMALL = 4096


def placements(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """For each x_i: (#y < x_i + ½·#y = x_i) / m, from a sorted copy of y."""
    ys = np.sort(np.asarray(y, float))
    xv = np.asarray(x, float)
    below = np.searchsorted(ys, xv, side="left")
    upto = np.searchsorted(ys, xv, side="right")
    return (below + 0.5 * (upto - below)) / ys.size


def win_total(x: np.ndarray, y: np.ndarray) -> float:
    """Σ_ij [x_i > y_j] + ½[x_i = y_j] (Mann-Whitney's U of x), exactly."""
    ys = np.sort(np.asarray(y, float))
    xv = np.asarray(x, float)
    below = np.searchsorted(ys, xv, side="left").astype(np.int64)
    upto = np.searchsorted(ys, xv, side="right").astype(np.int64)
    return float(below.sum()) + 0.5 * float((upto - below).sum())


def prob_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) + ½P(X = Y) over all pairs: U / (n·m)."""
    return win_total(x, y) / (np.size(x) * np.size(y))


def _row_search(xs: np.ndarray, yd: np.ndarray, lo: np.ndarray, hi: np.ndarray, pivot: float, strict: bool):
    """Per row i, the first column j in [lo_i, hi_i) with x_i − yd_j ≥ pivot (``strict``) or
    > pivot; hi_i when none. Rows are non-decreasing in j; one vectorized bisection."""
    a, b = lo.copy(), hi.copy()
    while True:
        open_ = a < b
        if not open_.any():
            return a
        mid = (a + b) // 2
        d = xs - yd[np.minimum(mid, yd.size - 1)]
        beyond = (d >= pivot) if strict else (d > pivot)
        right = open_ & ~beyond
        left = open_ & beyond
        a = np.where(right, mid + 1, a)
        b = np.where(left, mid, b)


def _sorted_rows(x, y) -> tuple[np.ndarray, np.ndarray]:
    """x ascending and y descending: row i of x_i − y_j then ascends in j."""
    return np.sort(np.asarray(x, float)), np.sort(np.asarray(y, float))[::-1].copy()


def _sample(xs, yd, lo, hi, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` active differences drawn uniformly with replacement, sorted."""
    sizes = hi - lo
    ends = np.cumsum(sizes)
    r = rng.integers(int(ends[-1]), size=count)
    rows = np.searchsorted(ends, r, side="right")
    cols = lo[rows] + r - (ends[rows] - sizes[rows])
    return np.sort(xs[rows] - yd[cols])


def _select(xs: np.ndarray, yd: np.ndarray, k: int, seed: int) -> float:
    """k-th smallest x_i − yd_j (rows ascending), Floyd-Rivest style: two pivots from a
    sample bracket the k-th; rows keep only the columns between them."""
    n, m = xs.size, yd.size
    lo, hi = np.zeros(n, np.int64), np.full(n, m, np.int64)
    rng = np.random.default_rng(seed)
    while True:
        sizes = hi - lo
        total = int(sizes.sum())
        if total <= _SMALL:
            rows = np.repeat(np.arange(n), sizes)
            cols = lo[rows] + (np.arange(total) - np.repeat(np.cumsum(sizes) - sizes, sizes))
            return float(np.partition(xs[rows] - yd[cols], k)[k])
        v = _sample(xs, yd, lo, hi, 2048, rng)
        at = k / total * v.size
        pl, ph = v[max(0, int(at - 64))], v[min(v.size - 1, int(at + 64))]
        below = _row_search(xs, yd, lo, hi, float(pl), strict=True)
        upto = _row_search(xs, yd, lo, hi, float(ph), strict=False)
        n_below, n_upto = int((below - lo).sum()), int((upto - lo).sum())
        if k < n_below:
            hi = below
        elif k >= n_upto:
            k, lo = k - n_upto, upto
        elif pl == ph:  # every candidate left equals the pivot
            return float(pl)
        elif n_upto - n_below == total:  # the bracket kept everything: split at one pivot
            mid = float(v[min(v.size - 1, int(at))])
            below = _row_search(xs, yd, lo, hi, mid, strict=True)
            upto = _row_search(xs, yd, lo, hi, mid, strict=False)
            n_below, n_upto = int((below - lo).sum()), int((upto - lo).sum())
            if k < n_below:
                hi = below
            elif k < n_upto:
                return mid
            else:
                k, lo = k - n_upto, upto
        else:
            k, lo, hi = k - n_below, below, upto


def kth_difference(x: np.ndarray, y: np.ndarray, k: int, seed: int = 0) -> float:
    """The k-th smallest (0-based) of the n·m differences x_i − y_j, exactly."""
    xs, yd = _sorted_rows(x, y)
    if not 0 <= k < xs.size * yd.size:
        raise ValueError(f"k = {k} is outside 0..{xs.size * yd.size - 1}")
    return _select(xs, yd, k, seed)


def hodges_lehmann(x: np.ndarray, y: np.ndarray) -> float:
    """Median of the n·m differences x_i − y_j (as ``np.median`` of the pair matrix).

    With an even count, the next difference above the lower middle one is the
    smallest first entry beyond it in each row: one more pass, not a second selection.
    """
    xs, yd = _sorted_rows(x, y)
    total = xs.size * yd.size
    if total == 0:
        return float("nan")
    half = total // 2
    if total % 2:
        return _select(xs, yd, half, 0)
    a = _select(xs, yd, half - 1, 0)
    upto = _row_search(
        xs, yd, np.zeros(xs.size, np.int64), np.full(xs.size, yd.size, np.int64), a, strict=False
    )
    if int(upto.sum()) > half:
        b = a
    else:
        open_ = upto < yd.size
        b = float(np.min(xs[open_] - yd[upto[open_]]))
    return float(np.mean([a, b]))
