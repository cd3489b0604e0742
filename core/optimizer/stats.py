"""Offline statistics of the optimizer: intervals, paired comparisons and successive halving.

Intervals are bootstrap percentile intervals (``resamples`` resamples drawn by numpy's PCG64
from an explicit ``seed``, so a result is a function of its inputs) up to ``BOOTSTRAP_MAX_N``
values; above that the normal interval ``mean ± z·s/√n`` is used (at that size Student's t and
the normal quantile differ by less than 0.1%, and the bootstrap would hold ``resamples × n``
indices in memory). A paired comparison bootstraps the per-example differences between a
candidate and the baseline on the examples both were scored on, and calls the candidate better
only when the interval's lower bound is above the minimum effect: with the two-sided interval at
``confidence`` 0.95, that is a one-sided test at 2.5%.

Successive halving spends a budget of evaluations rung by rung: every rung evaluates its
survivors on the first ``examples`` examples of one fixed order, so a survivor's earlier
evaluations are reused from the cache and a rung costs only its new examples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

BOOTSTRAP_MAX_N = 2_000
"""Above this many values, intervals are normal rather than bootstrap."""
DEFAULT_RESAMPLES = 2_000


@dataclass(frozen=True)
class Interval:
    """A mean with its interval at some confidence, over ``n`` values."""

    mean: float
    lo: float
    hi: float
    n: int


@dataclass(frozen=True)
class Comparison:
    """A candidate's mean paired difference to the baseline, its interval and the verdict."""

    difference: float
    lo: float
    hi: float
    n: int
    significant: bool
    reason: str


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence is in (0, 1), not {confidence}")


def _interval(values: np.ndarray, confidence: float, seed: int, resamples: int) -> Interval:
    """The interval of the mean of ``values`` (at least one)."""
    n = len(values)
    mean = float(values.mean())
    if n == 1:
        return Interval(mean, mean, mean, 1)
    tail = (1.0 - confidence) / 2.0
    if n > BOOTSTRAP_MAX_N:
        half = NormalDist().inv_cdf(1.0 - tail) * float(values.std(ddof=1)) / math.sqrt(n)
        return Interval(mean, mean - half, mean + half, n)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    lo, hi = np.quantile(means, [tail, 1.0 - tail])
    return Interval(mean, min(float(lo), mean), max(float(hi), mean), n)


def mean_interval(
    scores: Sequence[float], *, confidence: float = 0.95, seed: int, resamples: int = DEFAULT_RESAMPLES
) -> Interval:
    """The mean of ``scores`` with its bootstrap percentile interval (normal above ``BOOTSTRAP_MAX_N``)."""
    _check_confidence(confidence)
    if not scores:
        raise ValueError("no scores to average")
    return _interval(np.asarray(scores, dtype=float), confidence, seed, resamples)


def _signed(value: float) -> str:
    return f"{value:+.2f}"


def _verdict(lo: float, hi: float, min_effect: float) -> tuple[bool, str]:
    if lo > min_effect:
        return True, f"above the minimum effect {min_effect:g}"
    if hi < 0:
        return False, "the candidate is worse"
    if lo <= 0:
        return False, "interval includes 0"
    return False, f"above 0 but not above the minimum effect {min_effect:g}"


def paired_comparison(
    candidate_scores: Mapping[str, float],
    baseline_scores: Mapping[str, float],
    *,
    min_effect: float,
    confidence: float = 0.95,
    seed: int,
    resamples: int = DEFAULT_RESAMPLES,
    split: str = "",
) -> Comparison:
    """Candidate minus baseline, paired by example id on the examples both were scored on.

    ``significant`` is the interval's lower bound being above ``min_effect``; ``split`` names
    the examples in the reason ("on 50 test examples").
    """
    _check_confidence(confidence)
    if min_effect < 0:
        raise ValueError(f"min_effect is at least 0, not {min_effect}")
    ids = sorted(candidate_scores.keys() & baseline_scores.keys())
    if not ids:
        raise ValueError("the candidate and the baseline share no scored example")
    differences = np.array([candidate_scores[i] - baseline_scores[i] for i in ids], dtype=float)
    interval = _interval(differences, confidence, seed, resamples)
    significant, why = _verdict(interval.lo, interval.hi, min_effect)
    examples = f"{split} examples" if split else "examples"
    reason = (
        f"{_signed(interval.mean)} [{interval.lo:.2f}, {interval.hi:.2f}] on {interval.n} {examples}"
        f" ({confidence:.0%} paired bootstrap), {why}"
    )
    return Comparison(interval.mean, interval.lo, interval.hi, interval.n, significant, reason)


@dataclass(frozen=True)
class Rung:
    """One rung: ``candidates`` survivors each scored on the first ``examples`` examples."""

    candidates: int
    examples: int
    new_evaluations: int
    """Evaluations this rung adds: survivors × examples not scored at the rung before."""


@dataclass(frozen=True)
class HalvingPlan:
    """The rungs of a successive halving and the evaluations they spend in all."""

    rungs: tuple[Rung, ...]
    evaluations: int


def _rungs(candidates: int, eta: int, last_examples: int) -> tuple[Rung, ...]:
    counts = [candidates]
    while counts[-1] > 1:
        counts.append(max(1, counts[-1] // eta))
    depth = len(counts) - 1
    rungs: list[Rung] = []
    scored = 0
    for index, count in enumerate(counts):
        examples = max(1, math.ceil(last_examples / eta ** (depth - index)))
        rungs.append(Rung(count, examples, count * (examples - scored)))
        scored = examples
    return tuple(rungs)


def halving_plan(candidates: int, examples: int, *, eta: int = 3, budget_evals: int) -> HalvingPlan:
    """The successive halving of ``candidates`` over ``examples`` examples spending at most ``budget_evals``.

    Each rung keeps the best ``1/eta`` of the candidates (at least one) until one is left, and
    the examples grow by ``eta`` a rung up to the most the budget affords (at most ``examples``).
    """
    if candidates < 1 or examples < 1:
        raise ValueError("halving needs at least one candidate and one example")
    if eta < 2:
        raise ValueError(f"eta is at least 2, not {eta}")
    if budget_evals < 1:
        raise ValueError(f"budget_evals is at least 1, not {budget_evals}")
    low, high = 0, examples  # the largest affordable last rung size, by bisection (cost grows with it)
    while low < high:
        middle = (low + high + 1) // 2
        if sum(r.new_evaluations for r in _rungs(candidates, eta, middle)) <= budget_evals:
            low = middle
        else:
            high = middle - 1
    rungs = _rungs(candidates, eta, max(low, 1))
    spent = sum(r.new_evaluations for r in rungs)
    if spent > budget_evals:
        raise ValueError(f"budget_evals {budget_evals} cannot score {candidates} candidates once each")
    return HalvingPlan(rungs, spent)


def survivors(scores_by_candidate: Mapping[str, float], keep: int) -> list[str]:
    """The ``keep`` best candidates, best first; equal scores are ordered by candidate id."""
    if keep < 0:
        raise ValueError(f"keep is at least 0, not {keep}")
    ranked = sorted(scores_by_candidate.items(), key=lambda item: (-item[1], item[0]))
    return [candidate for candidate, _ in ranked[:keep]]
