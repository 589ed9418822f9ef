"""Multiple-comparison corrections: Holm (family-wise error) and Benjamini-Hochberg (FDR).

Pure NumPy, so the gate's command line loads them without scipy.stats;
``compare`` re-exports every name. Definitions in ``docs/metrics.md`` §7.
"""

from __future__ import annotations

import numpy as np

from fle_core.errors import MetricError

#: correction names users may pass -> the one each means
CORRECTIONS = {
    "holm": "holm",
    "bh": "bh",
    "fdr_bh": "bh",
    "benjamini-hochberg": "bh",
    "none": "none",
    None: "none",
}


def holm(pvalues) -> np.ndarray:
    """Holm step-down adjusted p-values (controls the family-wise error rate).

    Sorted ascending, ``p_(i) * (m - i + 1)``, made monotone by a running max,
    capped at 1. NaN entries are left NaN and not counted in m.
    """

    def step_down(sorted_p: np.ndarray, m: int) -> np.ndarray:
        return np.maximum.accumulate(sorted_p * (m - np.arange(m)))

    return _adjust_sorted(pvalues, step_down)


def benjamini_hochberg(pvalues) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (controls the false discovery rate).

    Sorted ascending, ``p_(i) * m / i``, made monotone from the largest down
    by a running min, capped at 1 (same as ``scipy.stats.false_discovery_control``).
    NaN entries are left NaN and not counted in m.
    """

    def step_up(sorted_p: np.ndarray, m: int) -> np.ndarray:
        return np.minimum.accumulate((sorted_p * m / np.arange(1, m + 1))[::-1])[::-1]

    return _adjust_sorted(pvalues, step_up)


def _adjust_sorted(pvalues, adjust) -> np.ndarray:
    """Apply ``adjust(sorted finite p, m)`` and scatter back, capped at 1; NaN stays NaN."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m:
        order = np.argsort(p[ok], kind="stable")
        vals = np.empty(m)
        vals[order] = np.minimum(adjust(p[ok][order], m), 1.0)
        out[ok] = vals
    return out


def adjust_pvalues(pvalues, correction: str | None = "holm") -> np.ndarray:
    """Apply ``"holm"``, ``"bh"`` (Benjamini-Hochberg) or ``"none"``."""
    method = CORRECTIONS.get(correction.lower() if isinstance(correction, str) else correction)
    if method is None:
        raise MetricError(f"unknown correction {correction!r}", hint="use 'holm', 'bh' or 'none'")
    if method == "holm":
        return holm(pvalues)
    if method == "bh":
        return benjamini_hochberg(pvalues)
    return np.asarray(pvalues, dtype=np.float64).copy()
