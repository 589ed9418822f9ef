"""Power and sample size for comparing two success rates (two-sided, normal approximation).

Re-exported by ``compare``; definitions in ``docs/metrics.md`` §8.
"""

from __future__ import annotations

import math

from scipy import optimize, stats

from fle_core.errors import MetricError

__all__ = ["minimum_detectable_difference", "power_two_proportions", "trials_needed"]


def _z(q: float) -> float:
    return float(stats.norm.ppf(q))


def _check_power_args(alpha: float, power: float) -> None:
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise MetricError(f"alpha and power must be in (0, 1), got alpha={alpha}, power={power}")


def power_two_proportions(n: int, p_a: float, p_b: float, alpha: float = 0.05) -> float:
    """Power of the two-sided pooled z-test for p_a vs p_b with n trials per group.

    ``Φ((|Δ|·√n − z_{1-α/2}·√(2·p̄·q̄)) / √(p_a q_a + p_b q_b))`` (normal
    approximation, the far tail ignored), p̄ = (p_a + p_b)/2.
    """
    pbar = (p_a + p_b) / 2
    sd1 = math.sqrt(p_a * (1 - p_a) + p_b * (1 - p_b))
    if sd1 == 0:
        return 1.0 if p_a != p_b else 0.0
    num = abs(p_a - p_b) * math.sqrt(n) - _z(1 - alpha / 2) * math.sqrt(2 * pbar * (1 - pbar))
    return float(stats.norm.cdf(num / sd1))


def trials_needed(
    p_a: float, p_b: float, alpha: float = 0.05, power: float = 0.8, *, design_effect: float = 1.0
) -> int:
    """Trials per group to detect p_a vs p_b with a two-sided two-proportion z-test.

    ``n = ((z_{1-α/2}·√(2·p̄·q̄) + z_{power}·√(p_a q_a + p_b q_b)) / |p_a − p_b|)²``,
    rounded up (Fleiss, no continuity correction). Trials that are clustered in
    tasks are not independent: ``design_effect`` (``variance.variance_components``;
    1 + (k − 1)·ICC for k epochs per task) multiplies the independent-trials n
    before rounding, so n trials carry the information of n / design_effect
    independent ones. For how many tasks or epochs that means, see ``variance.plan``.
    """
    _check_power_args(alpha, power)
    if not (design_effect > 0 and math.isfinite(design_effect)):
        raise MetricError(f"design_effect must be a positive number, got {design_effect}")
    for p in (p_a, p_b):
        if not 0 <= p <= 1:
            raise MetricError(f"probabilities must be in [0, 1], got {p}")
    if p_a == p_b:
        raise MetricError("p_a equals p_b: no sample size can detect a zero difference")
    pbar = (p_a + p_b) / 2
    num = _z(1 - alpha / 2) * math.sqrt(2 * pbar * (1 - pbar)) + _z(power) * math.sqrt(
        p_a * (1 - p_a) + p_b * (1 - p_b)
    )
    return max(1, math.ceil(design_effect * (num / abs(p_a - p_b)) ** 2 - 1e-9))


def minimum_detectable_difference(
    n: int, p_baseline: float, alpha: float = 0.05, power: float = 0.8, direction: str = "increase"
) -> float:
    """Smallest |p − p_baseline| detectable with n trials per group at this power.

    Solves ``power_two_proportions(n, p_baseline ± d) = power`` for d. Returns
    NaN when even the most extreme p (0 or 1) is not detectable at this n.
    """
    _check_power_args(alpha, power)
    if n < 1 or not 0 <= p_baseline <= 1:
        raise MetricError(f"need n >= 1 and 0 <= p_baseline <= 1, got n={n}, p={p_baseline}")
    if direction not in ("increase", "decrease"):
        raise MetricError("direction must be 'increase' or 'decrease'")
    sign = 1.0 if direction == "increase" else -1.0
    limit = (1.0 - p_baseline) if sign > 0 else p_baseline
    if limit <= 0:
        return math.nan

    def gap(d: float) -> float:
        return power_two_proportions(n, p_baseline, p_baseline + sign * d, alpha) - power

    if gap(limit) < 0:
        return math.nan
    return float(optimize.brentq(gap, 1e-12, limit, xtol=1e-10))
