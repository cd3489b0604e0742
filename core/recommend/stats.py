"""The statistics of the recommendation engine: every number it shows comes with an interval and its ``n``.

- a rate (failures of ``n`` calls) has its Wilson score interval, which stays inside [0, 1] and
  is honest for small counts and rates near 0 or 1 (0 of 40 gives [0, 0.088]);
- a difference of two means (feedback of two versions) has the normal (Welch) interval
  ``d ± z·√(s₁²/n₁ + s₂²/n₂)``;
- a quantile of durations has a distribution-free interval from order statistics: the ranks
  ``n·p ± z·√(n·p·(1-p))`` of the sorted sample;
- the median of per-run savings uses the same order-statistic interval.

All intervals are two-sided at 95% unless said otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

Z95 = NormalDist().inv_cdf(0.975)


@dataclass(frozen=True)
class Estimate:
    """A value with its interval over ``n`` observations."""

    value: float
    lo: float
    hi: float
    n: int

    def to_json(self, *, digits: int = 4) -> dict[str, object]:
        """``{value, ci: [lo, hi], n}``, rounded."""
        return {"value": round(self.value, digits), "ci": [round(self.lo, digits), round(self.hi, digits)], "n": self.n}


def wilson(successes: int, n: int, *, z: float = Z95) -> Estimate:
    """The rate ``successes / n`` with its Wilson score interval (``n`` of 0: the whole [0, 1])."""
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return Estimate(0.0, 0.0, 1.0, 0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Estimate(p, low, high, n)


@dataclass(frozen=True)
class Moments:
    """Count, mean and sample variance of a set of values (as SQL's ``count``, ``avg``, ``var_samp`` give them)."""

    n: int
    mean: float
    variance: float


def mean_estimate(m: Moments, *, z: float = Z95) -> Estimate:
    """The mean with its normal interval."""
    if m.n == 0:
        raise ValueError("no values")
    half = z * math.sqrt(max(m.variance, 0.0) / m.n) if m.n > 1 else 0.0
    return Estimate(m.mean, m.mean - half, m.mean + half, m.n)


def difference(a: Moments, b: Moments, *, z: float = Z95) -> Estimate:
    """``mean(a) - mean(b)`` with its Welch (normal) interval; ``n`` is the smaller sample."""
    if a.n < 2 or b.n < 2:
        raise ValueError("a difference needs at least two values on each side")
    delta = a.mean - b.mean
    half = z * math.sqrt(max(a.variance, 0.0) / a.n + max(b.variance, 0.0) / b.n)
    return Estimate(delta, delta - half, delta + half, min(a.n, b.n))


def quantile(sorted_values: Sequence[float], p: float, *, z: float = Z95) -> Estimate:
    """The ``p`` quantile of an ascending sample with its order-statistic interval (distribution-free)."""
    n = len(sorted_values)
    if n == 0:
        raise ValueError("no values")
    if not 0.0 < p < 1.0:
        raise ValueError(f"p is in (0, 1), not {p}")
    spread = z * math.sqrt(n * p * (1 - p))
    point = min(n - 1, max(0, math.ceil(n * p) - 1))
    low = min(n - 1, max(0, math.floor(n * p - spread) - 1))
    high = min(n - 1, max(0, math.ceil(n * p + spread)))
    return Estimate(sorted_values[point], sorted_values[low], sorted_values[high], n)


def per_thousand(count: float, runs: int) -> float:
    """``count`` events over ``runs`` runs, per 1,000 runs."""
    return 0.0 if runs <= 0 else 1000.0 * count / runs
