"""Online experiments: sticky assignment, allocation, the mSPRT decision under peeking, guardrails."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence

import pytest

from core.optimizer.experiments import (
    ArmStats,
    Decision,
    ExperimentState,
    GuardrailLimits,
    OpsStats,
    Rules,
    allocate,
    assign,
    decide,
    guardrail_breach,
    log_likelihood_ratio,
    p_best,
    shares,
)

ARMS = ["control", "c1", "c2", "c3", "c4"]
RULES = Rules(p_best_draws=0)


def run_experiment(means: Sequence[float], seed: int, events: int = 1000) -> tuple[Decision, int]:
    """An experiment on Bernoulli arms of ``means`` decided after every event; the decision and its event."""
    state = ExperimentState.start(ARMS[0], ARMS[1 : len(means)])
    chooser, world = random.Random(seed), random.Random(-seed - 1)
    decision = decide(state, RULES)
    for event in range(1, events + 1):
        arm = allocate(state, RULES, chooser)
        state = state.record(arm, float(world.random() < means[ARMS.index(arm)]))
        decision = decide(state, RULES)
        if decision.stop:
            return decision, event
    return decision, events


def filled(means: dict[str, float], n: int) -> ExperimentState:
    """A state whose arms each hold ``n`` rewards averaging ``means`` (a share of ones)."""
    state = ExperimentState.start("control", [a for a in means if a != "control"])
    for arm, mean in means.items():
        ones = round(mean * n)
        for index in range(n):
            state = state.record(arm, float(index < ones))
    return state


def test_a_subject_keeps_its_arm() -> None:
    weights = [0.5, 0.2, 0.3]
    first = assign("exp1", "user-42", ARMS[:3], weights)
    assert {assign("exp1", "user-42", ARMS[:3], weights) for _ in range(100)} == {first}
    assert len({assign(f"exp{i}", "user-42", ARMS[:3], weights) for i in range(50)}) == 3


def test_shares_follow_the_weights() -> None:
    weights = [0.5, 0.2, 0.3, 0.0]
    counts = Counter(assign("exp1", f"subject-{i}", ARMS[:4], weights) for i in range(20_000))
    for arm, weight in zip(ARMS, weights, strict=False):
        assert counts[arm] / 20_000 == pytest.approx(weight, abs=0.015)
    assert counts["c3"] == 0


@pytest.mark.parametrize("weights", [[0.5], [0.0, 0.0], [-1.0, 2.0], [float("nan"), 1.0]])
def test_bad_weights_are_refused(weights: list[float]) -> None:
    with pytest.raises(ValueError, match="weight"):
        assign("exp1", "s", ARMS[:2], weights)


def test_the_state_is_small_and_round_trips_through_json() -> None:
    state = ExperimentState.start("control", ["c1"]).record("c1", 0.25).record("c1", 1.0).record("control", 0.0)
    data = json.loads(json.dumps(state.to_json()))
    assert data == {"control": "control", "arms": {"control": [1, 0.0, 0.0], "c1": [2, 1.25, 1.0625]}}
    assert ExperimentState.from_json(data) == state
    assert state.arms["c1"].mean == 0.625
    assert state.arms["c1"].variance == pytest.approx(0.28125)
    with pytest.raises(ValueError, match="reward is in"):
        state.record("c1", 1.5)
    with pytest.raises(ValueError, match="no arm 'c9'"):
        state.record("c9", 1.0)
    with pytest.raises(ValueError, match="distinct"):
        ExperimentState.start("control", ["control"])


def test_allocation_is_uniform_first_then_keeps_the_control_and_favours_the_leader() -> None:
    rng = random.Random(1)
    early = Counter(allocate(ExperimentState.start("control", ARMS[1:]), RULES, rng) for _ in range(5_000))
    assert all(count / 5_000 == pytest.approx(0.2, abs=0.03) for count in early.values())
    state = filled({"control": 0.5, "c1": 0.5, "c2": 0.5, "c3": 0.5, "c4": 0.7}, 60)
    later = Counter(allocate(state, RULES, rng) for _ in range(5_000))
    assert later["control"] / 5_000 == pytest.approx(RULES.control_share, abs=0.03)
    assert later["c4"] > 3 * max(later["c1"], later["c2"], later["c3"])


def test_shares_match_what_allocate_does() -> None:
    rng = random.Random(3)
    fresh = ExperimentState.start("control", ARMS[1:])
    assert shares(fresh, RULES, rng) == dict.fromkeys(ARMS, 0.2)
    state = filled({"control": 0.5, "c1": 0.45, "c2": 0.5, "c3": 0.55, "c4": 0.6}, 60)
    for rules in (RULES, Rules(control_share=None)):
        expected = shares(state, rules, rng, draws=4_000)
        assert sum(expected.values()) == pytest.approx(1.0)
        counts = Counter(allocate(state, rules, rng) for _ in range(4_000))
        for arm in ARMS:
            assert counts[arm] / 4_000 == pytest.approx(expected[arm], abs=0.03)
    assert shares(state, RULES, rng)["control"] == RULES.control_share


def test_p_best_is_a_distribution_that_favours_the_best_arm() -> None:
    state = filled({"control": 0.5, "c1": 0.5, "c2": 0.8}, 100)
    probabilities = p_best(state, random.Random(0), 2_000)
    assert sum(probabilities.values()) == pytest.approx(1.0)
    assert probabilities["c2"] > 0.99
    assert p_best(state, random.Random(0), 2_000) == probabilities
    assert decide(state, Rules()).p_best == probabilities


def test_aa_with_peeking_after_every_event_rarely_promotes() -> None:
    promoted = [run_experiment([0.5] * 5, seed)[0].winner for seed in range(40)]
    assert sum(winner is not None for winner in promoted) <= 4  # loose: the bench runs 200 seeds


def test_a_clearly_better_arm_is_promoted_with_its_reason() -> None:
    wins = [run_experiment([0.5, 0.5, 0.5, 0.5, 0.75], seed) for seed in range(10)]
    assert sum(decision.winner == "c4" for decision, _ in wins) >= 9
    decision, events = wins[0]
    assert decision.stop
    assert events < 1000
    assert decision.reason.startswith("'c4' beats 'control' by +")
    assert "likelihood ratio ≥ 80 = 4 candidates / alpha 0.05" in decision.reason


def test_no_decision_before_the_minimum_sample_and_a_stop_when_every_candidate_loses() -> None:
    early = decide(filled({"control": 0.2, "c1": 0.9}, RULES.min_samples - 1), RULES)
    assert (early.winner, early.stop) == (None, False)
    assert early.reason == f"waiting for {RULES.min_samples} rewards on every arm"
    losing = decide(filled({"control": 0.8, "c1": 0.2, "c2": 0.3}, 200), RULES)
    assert (losing.winner, losing.stop) == (None, True)
    assert losing.reason.startswith("every candidate is worse than 'control'")
    even = decide(filled({"control": 0.5, "c1": 0.5}, 200), RULES)
    assert (even.winner, even.stop) == (None, False)
    assert even.reason.startswith("no candidate differs")


def test_the_likelihood_ratio_grows_with_the_difference_and_the_sample() -> None:
    control = ArmStats(100, 50.0, 50.0)
    assert log_likelihood_ratio(control, ArmStats(100, 50.0, 50.0), RULES) < 0
    small, large = ArmStats(100, 60.0, 60.0), ArmStats(100, 70.0, 70.0)
    assert log_likelihood_ratio(control, small, RULES) < log_likelihood_ratio(control, large, RULES)
    bigger = (ArmStats(400, 200.0, 200.0), ArmStats(400, 280.0, 280.0))
    assert log_likelihood_ratio(control, large, RULES) < log_likelihood_ratio(*bigger, RULES)
    estimated = Rules(variance="estimate")
    assert log_likelihood_ratio(control, large, estimated) > log_likelihood_ratio(control, large, RULES)


def ops(runs: int = 100, failures: int = 2, latency: float = 1.0, cost: float = 1.0) -> OpsStats:
    return OpsStats(runs=runs, failures=failures, latency_p50_s=latency, cost_usd=cost)


def test_guardrails_trip_on_a_clearly_worse_candidate_only() -> None:
    limits = GuardrailLimits()
    assert guardrail_breach(ops(), ops(), limits) is None
    assert guardrail_breach(ops(), ops(failures=6, latency=1.4, cost=1.4), limits) is None
    failing = guardrail_breach(ops(), ops(failures=20), limits)
    assert failing == "failure rate 20.0% vs control 2.0% (margin 5.0%)"
    slow_and_dear = guardrail_breach(ops(), ops(latency=3.0, cost=2.0), limits)
    assert slow_and_dear == (
        "latency p50 3 s vs control 1 s (at most ×1.5); cost per run $0.02 vs control $0.01 (at most ×1.5)"
    )
    assert guardrail_breach(ops(runs=20), ops(runs=20, failures=20), limits) is None
