"""Offline statistics: interval coverage, paired comparisons (power and A/A), successive halving plans."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from core.optimizer.stats import BOOTSTRAP_MAX_N, halving_plan, mean_interval, paired_comparison, survivors


def paired_scores(seed: int, n: int, effect: float) -> tuple[dict[str, float], dict[str, float]]:
    """Pass/fail scores of a baseline and a candidate on ``n`` examples of varied difficulty.

    Both meet the same draw per example, so the candidate passes wherever the baseline does, and
    on an extra ``effect`` of examples.
    """
    rng = random.Random(seed)
    baseline, candidate = {}, {}
    for index in range(n):
        difficulty, draw = rng.uniform(0.2, 0.7), rng.random()
        baseline[f"ex{index}"] = float(draw < difficulty)
        candidate[f"ex{index}"] = float(draw < difficulty + effect)
    return candidate, baseline


def aa_scores(seed: int, n: int) -> tuple[dict[str, float], dict[str, float]]:
    """Two equally good versions scored independently on the same ``n`` examples."""
    rng = random.Random(seed)
    difficulty = [rng.uniform(0.2, 0.8) for _ in range(n)]
    first = {f"ex{i}": float(rng.random() < p) for i, p in enumerate(difficulty)}
    second = {f"ex{i}": float(rng.random() < p) for i, p in enumerate(difficulty)}
    return first, second


def test_intervals_cover_the_true_mean_at_about_the_nominal_rate() -> None:
    covered = 0
    for seed in range(300):
        scores = np.random.default_rng(seed).beta(2.0, 5.0, size=50).tolist()
        interval = mean_interval(scores, seed=seed)
        covered += interval.lo <= 2.0 / 7.0 <= interval.hi
        assert interval.lo <= interval.mean <= interval.hi
        assert interval.n == 50
    assert 0.90 <= covered / 300 <= 0.99


def test_an_interval_is_a_function_of_its_inputs_and_seed() -> None:
    rng = random.Random(2)
    scores = [rng.random() for _ in range(30)]
    assert mean_interval(scores, seed=3) == mean_interval(scores, seed=3)
    assert mean_interval(scores, seed=3) != mean_interval(scores, seed=4)
    narrow, wide = mean_interval(scores, seed=3, confidence=0.5), mean_interval(scores, seed=3, confidence=0.99)
    assert wide.lo < narrow.lo < narrow.hi < wide.hi


def test_large_samples_get_the_normal_interval_and_one_value_a_point() -> None:
    scores = [float(i % 2) for i in range(BOOTSTRAP_MAX_N + 2)]
    interval = mean_interval(scores, seed=0)
    assert interval.mean == pytest.approx(0.5)
    assert interval.hi - interval.mean == pytest.approx(1.96 * 0.5 / (len(scores) ** 0.5), rel=1e-3)
    assert mean_interval([0.4], seed=0) == mean_interval([0.4], seed=1)
    assert mean_interval([0.4], seed=0).lo == 0.4


@pytest.mark.parametrize(("scores", "confidence"), [([], 0.95), ([0.5], 1.0), ([0.5], 0.0)])
def test_bad_interval_requests_are_refused(scores: list[float], confidence: float) -> None:
    with pytest.raises(ValueError, match=r"scores|confidence"):
        mean_interval(scores, confidence=confidence, seed=0)


def test_a_real_effect_of_015_is_found_on_60_examples() -> None:
    found = [paired_comparison(*paired_scores(seed, 60, 0.15), min_effect=0.02, seed=seed) for seed in range(100)]
    assert sum(c.significant for c in found) >= 75
    assert all(c.n == 60 and c.lo <= c.difference <= c.hi for c in found)
    assert all(c.reason.endswith("above the minimum effect 0.02") for c in found if c.significant)


def test_an_aa_pair_is_rarely_called_significant() -> None:
    calls = [paired_comparison(*aa_scores(seed, 60), min_effect=0.02, seed=seed) for seed in range(200)]
    assert sum(c.significant for c in calls) <= 0.05 * 200  # one-sided at 2.5% by design
    assert any("interval includes 0" in c.reason for c in calls)


def test_the_reason_states_the_difference_interval_and_examples() -> None:
    candidate, baseline = {"a": 1.0, "b": 1.0, "c": 0.0, "d": 1.0}, {"a": 0.0, "b": 0.0, "c": 0.0, "d": 1.0}
    comparison = paired_comparison(candidate, baseline, min_effect=0.0, seed=1, split="test")
    assert comparison.reason.startswith("+0.50 [0.00, 1.00] on 4 test examples")
    assert comparison.reason.endswith("interval includes 0")
    assert not comparison.significant
    worse = paired_comparison(baseline, {k: 1.0 for k in baseline}, min_effect=0.0, seed=1)
    assert worse.reason.endswith("the candidate is worse")
    small = paired_comparison({"a": 0.6, "b": 0.7}, {"a": 0.5, "b": 0.6}, min_effect=0.2, seed=1)
    assert small.reason.endswith("above 0 but not above the minimum effect 0.2")
    assert not small.significant


def test_pairs_are_made_by_example_id_in_any_order() -> None:
    candidate, baseline = paired_scores(5, 40, 0.15)
    shuffled = dict(sorted(baseline.items(), reverse=True))
    extra = {**candidate, "only-candidate": 1.0}
    assert paired_comparison(extra, shuffled, min_effect=0.02, seed=9) == paired_comparison(
        candidate, baseline, min_effect=0.02, seed=9
    )
    with pytest.raises(ValueError, match="share no scored example"):
        paired_comparison({"a": 1.0}, {"b": 1.0}, min_effect=0.0, seed=0)
    with pytest.raises(ValueError, match="min_effect"):
        paired_comparison(candidate, baseline, min_effect=-0.1, seed=0)


@pytest.mark.parametrize("eta", [2, 3])
def test_halving_plans_respect_the_budget(eta: int) -> None:
    for candidates in (1, 2, 5, 9, 16):
        for examples in (1, 7, 60, 200):
            for budget in (candidates, candidates * 3, 100, 500, candidates * examples, 10**6):
                plan = halving_plan(candidates, examples, eta=eta, budget_evals=budget)
                rungs = plan.rungs
                assert plan.evaluations == sum(r.new_evaluations for r in rungs) <= budget
                assert rungs[0].candidates == candidates
                assert rungs[-1].candidates == 1
                assert all(a.candidates > b.candidates for a, b in itertools.pairwise(rungs))
                assert all(a.examples <= b.examples <= examples for a, b in itertools.pairwise(rungs))
                if budget >= candidates * examples:
                    assert rungs[-1].examples == examples


def test_halving_spends_more_examples_on_fewer_candidates() -> None:
    plan = halving_plan(9, 90, eta=3, budget_evals=300)
    assert [(r.candidates, r.examples) for r in plan.rungs] == [(9, 10), (3, 30), (1, 90)]
    assert [r.new_evaluations for r in plan.rungs] == [90, 60, 60]
    assert plan.evaluations == 210


def test_an_unaffordable_halving_is_refused() -> None:
    with pytest.raises(ValueError, match="budget_evals 4 cannot score 5 candidates"):
        halving_plan(5, 10, budget_evals=4)
    with pytest.raises(ValueError, match="eta"):
        halving_plan(5, 10, eta=1, budget_evals=100)


def test_survivors_are_the_best_with_ties_broken_by_id() -> None:
    scores = {"v3": 0.5, "v1": 0.7, "v2": 0.5, "v0": 0.2}
    assert survivors(scores, 3) == ["v1", "v2", "v3"]
    assert survivors(dict(reversed(scores.items())), 3) == ["v1", "v2", "v3"]
    assert survivors(scores, 10) == ["v1", "v2", "v3", "v0"]
    assert survivors(scores, 0) == []
