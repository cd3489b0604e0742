"""The engine's intervals: Wilson for rates, Welch for differences, order statistics for quantiles."""

from __future__ import annotations

import random

import pytest

from core.recommend.stats import Moments, difference, mean_estimate, per_thousand, quantile, wilson


def test_wilson_matches_known_values() -> None:
    none = wilson(0, 40)
    assert (none.value, none.lo) == (0.0, 0.0)
    assert none.hi == pytest.approx(0.0876, abs=1e-4)  # the "rule of three" region, done right
    tenth = wilson(10, 100)
    assert (tenth.lo, tenth.hi) == (pytest.approx(0.0552, abs=1e-4), pytest.approx(0.1744, abs=1e-4))
    whole = wilson(50, 50)
    assert whole.hi == 1.0
    assert whole.lo == pytest.approx(0.9287, abs=1e-4)
    assert wilson(0, 0).hi == 1.0
    with pytest.raises(ValueError, match="successes"):
        wilson(5, 4)


def test_wilson_covers_the_true_rate_about_95_percent_of_the_time() -> None:
    rng = random.Random(7)
    covered = 0
    for _ in range(2000):
        hits = sum(rng.random() < 0.1 for _ in range(80))
        estimate = wilson(hits, 80)
        covered += estimate.lo <= 0.1 <= estimate.hi
    assert 0.92 <= covered / 2000 <= 0.98


def test_difference_and_mean() -> None:
    a, b = Moments(100, 0.80, 0.04), Moments(100, 0.70, 0.04)
    delta = difference(a, b)
    assert delta.value == pytest.approx(0.10)
    assert delta.hi - delta.value == pytest.approx(1.96 * (0.0008**0.5), rel=1e-3)
    assert delta.n == 100
    assert mean_estimate(Moments(1, 0.5, 0.0)).lo == 0.5
    with pytest.raises(ValueError, match="two values"):
        difference(Moments(1, 0.5, 0.0), b)


def test_quantile_interval_holds_the_true_quantile() -> None:
    rng = random.Random(3)
    values = sorted(rng.uniform(0, 1) for _ in range(1000))
    p99 = quantile(values, 0.99)
    assert p99.lo <= p99.value <= p99.hi
    assert p99.lo < 0.99 < p99.hi
    median = quantile(values, 0.5)
    assert median.lo < 0.5 < median.hi
    assert quantile([4.0], 0.5).value == 4.0
    assert per_thousand(5, 250) == 20.0
    assert per_thousand(5, 0) == 0.0
