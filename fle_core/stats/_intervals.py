"""Private home of the Wilson score interval and the normal quantile it uses.

Re-exported by ``metrics`` (where users find them); kept apart so that
``clustered`` (which ``metrics`` uses for its default suite interval) can use
them without an import circle.
"""

from __future__ import annotations

import numpy as np

from fle_core.errors import MetricError

#: z for a two-sided 95% interval (scipy.stats.norm.ppf(0.975)).
Z95 = 1.959963984540054


def wilson_interval(successes, n, z: float = Z95):
    """Wilson score interval for a binomial proportion; scalars or arrays.

    ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`` with ``p = s/n``.
    Returns ``(low, high)``; NaN where ``n == 0``. ``n`` may be fractional (an
    effective sample size) and ``z`` an array (one critical value per row).
    """
    s = np.asarray(successes, dtype=np.float64)
    n_arr = np.asarray(n, dtype=np.float64)
    if np.any(s < 0) or np.any(s > n_arr * (1 + 1e-12)):
        raise MetricError("need 0 <= successes <= n")
    zz = np.asarray(z, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.minimum(s / n_arr, 1.0)
        denom = 1.0 + zz * zz / n_arr
        center = (p + zz * zz / (2 * n_arr)) / denom
        half = zz * np.sqrt(p * (1 - p) / n_arr + zz * zz / (4 * n_arr * n_arr)) / denom
        # the bounds are exactly 0 at s = 0 and 1 at s = n; avoid 0.9999999999999999
        low = np.where(s == 0, 0.0, np.clip(center - half, 0.0, 1.0))
        high = np.where(p >= 1.0, 1.0, np.clip(center + half, 0.0, 1.0))
        low = np.where(n_arr > 0, low, np.nan)
        high = np.where(n_arr > 0, high, np.nan)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high
