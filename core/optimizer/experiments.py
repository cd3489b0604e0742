"""Online experiments: sticky assignment, Thompson allocation, an anytime-valid decision, guardrails.

Rewards are feedback scores in [0, 1]. An experiment's state is, per arm, the sufficient
statistics ``n``, ``total`` and ``squares`` (``ExperimentState.to_json`` is a small dict a
workflow or a database row can hold); everything here is a pure function of it. Randomness comes
from a ``random.Random`` passed in (in a workflow, ``workflow.random()``), so this module runs in
the workflow sandbox and replays.

- Assignment hashes ``experiment id / subject`` with SHA-256 onto [0, 1) and cuts that line by
  the arms' weights: a subject keeps its arm as long as the weights do (``shares`` gives the
  weights that follow the allocation; a subject seen before keeps the arm recorded for it).
- Allocation is uniform until every arm has ``min_samples`` rewards; then the control keeps
  ``control_share`` of the runs and Thompson sampling on Beta posteriors ``Beta(1 + total, 1 + n
  - total)`` (a fractional update for scores in [0, 1], exact for Bernoulli rewards) picks among
  the candidates for the rest.
- The decision is a mixture sequential probability ratio test (mSPRT, Johari, Pekelis and Walsh,
  "Always valid inference", 2017) of each candidate against the control, on the difference of
  means under the normal approximation with a ``N(0, tau²)`` mixture: with ``V = σ²_c/n_c +
  σ²_0/n_0`` and ``d`` the observed difference, ``Λ = √(V/(V+τ²))·exp(τ²d²/(2V(V+τ²)))``. The
  variance is bounded by 1/4, which holds for any reward in [0, 1] (``Rules.variance =
  "estimate"`` uses the arms' sample variances instead). A candidate wins when both arms have
  ``min_samples``, ``d > 0`` and ``Λ ≥ k/alpha`` for ``k`` candidates (Bonferroni), so peeking
  after every reward keeps the chance of promoting any candidate in an A/A test under ``alpha``:
  exactly for normal rewards under a fixed allocation; for [0, 1] rewards under the normal
  approximation and Thompson allocation, ``bench.optimizer`` measures it (A/A, 200 seeds).
  The posterior probability of being best (``p_best``) is reported, not used to decide.
- Guardrails compare a candidate's failure rate, latency p50 and cost per run with the control's.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

HASH_SCALE = float(2**64)


def hash_point(experiment_id: str, subject: str) -> float:
    """Where ``subject`` falls on [0, 1) in ``experiment_id``: SHA-256 of ``experiment id / subject``."""
    digest = hashlib.sha256(f"{experiment_id}/{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / HASH_SCALE


def assign(experiment_id: str, subject: str, arms: Sequence[str], weights: Sequence[float]) -> str:
    """The arm of ``subject``: the same for the same experiment, subject, arms and weights."""
    if not arms or len(arms) != len(weights):
        raise ValueError("assign needs one weight per arm and at least one arm")
    if any(w < 0 or not math.isfinite(w) for w in weights) or sum(weights) <= 0:
        raise ValueError("weights are finite, at least 0, and not all 0")
    point = hash_point(experiment_id, subject) * sum(weights)
    edge = 0.0
    for arm, weight in zip(arms, weights, strict=True):
        edge += weight
        if point < edge:
            return arm
    return next(arm for arm, weight in zip(reversed(arms), reversed(weights), strict=True) if weight > 0)


@dataclass(frozen=True)
class ArmStats:
    """Sufficient statistics of one arm's rewards."""

    n: int = 0
    total: float = 0.0
    squares: float = 0.0

    def add(self, reward: float) -> ArmStats:
        if not 0.0 <= reward <= 1.0:  # also refuses NaN
            raise ValueError(f"a reward is in [0, 1], not {reward}")
        return ArmStats(self.n + 1, self.total + reward, self.squares + reward * reward)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """The sample variance (0 below two rewards)."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.squares - self.total * self.total / self.n) / (self.n - 1))


@dataclass(frozen=True)
class ExperimentState:
    """The control's name and every arm's statistics (the control among them)."""

    control: str
    arms: Mapping[str, ArmStats]

    @classmethod
    def start(cls, control: str, candidates: Sequence[str]) -> ExperimentState:
        names = [control, *candidates]
        if not candidates or len(set(names)) != len(names):
            raise ValueError("an experiment has a control and at least one other, distinct candidate")
        return cls(control, {name: ArmStats() for name in names})

    @property
    def candidates(self) -> list[str]:
        return [name for name in self.arms if name != self.control]

    def record(self, arm: str, reward: float) -> ExperimentState:
        """The state after ``arm`` earned ``reward``."""
        if arm not in self.arms:
            raise ValueError(f"no arm {arm!r} in this experiment")
        return replace(self, arms={**self.arms, arm: self.arms[arm].add(reward)})

    def to_json(self) -> dict[str, Any]:
        return {"control": self.control, "arms": {k: [a.n, a.total, a.squares] for k, a in self.arms.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExperimentState:
        arms = {str(k): ArmStats(int(n), float(t), float(s)) for k, (n, t, s) in data["arms"].items()}
        if data["control"] not in arms:
            raise ValueError("the control is not among the arms")
        return cls(str(data["control"]), arms)


@dataclass(frozen=True)
class Rules:
    """How an experiment allocates and decides."""

    alpha: float = 0.05
    """Chance of promoting any candidate when none is better, split evenly among the candidates."""
    min_samples: int = 30
    """Rewards each arm needs before allocation leaves uniform and before a decision."""
    tau: float = 0.1
    """Standard deviation of the mixture on the difference of means: the size of effect expected."""
    variance: Literal["bound", "estimate"] = "bound"
    control_share: float | None = 0.5
    """Share of runs the control keeps once allocation is adaptive; the candidates share the rest.

    Every decision compares a candidate with the control, and such a comparison is sharpest with
    the two arms equal: half to the control, and Thompson sampling gives most of the other half
    to the leading candidate. None: the control is one more arm for Thompson sampling."""
    p_best_draws: int = 2_000
    """Posterior draws behind ``p_best`` (0: not estimated)."""

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1 or not 0 < (0.5 if self.control_share is None else self.control_share) < 1:
            raise ValueError("alpha and control_share are in (0, 1)")
        if self.tau <= 0 or self.min_samples < 2 or self.p_best_draws < 0:
            raise ValueError("tau is above 0, min_samples at least 2, p_best_draws at least 0")


def _posterior_draw(stats: ArmStats, rng: random.Random) -> float:
    return rng.betavariate(1.0 + stats.total, 1.0 + stats.n - stats.total)


def _thompson(state: ExperimentState, names: Sequence[str], rng: random.Random) -> str:
    """The arm among ``names`` with the highest draw from its posterior."""
    draws = [_posterior_draw(state.arms[name], rng) for name in names]
    return names[max(range(len(names)), key=draws.__getitem__)]


def adaptive(state: ExperimentState, rules: Rules) -> bool:
    """Whether every arm has ``min_samples`` rewards, so allocation follows the posteriors."""
    return all(arm.n >= rules.min_samples for arm in state.arms.values())


def allocate(state: ExperimentState, rules: Rules, rng: random.Random) -> str:
    """The arm the next run goes to: uniform until every arm has ``min_samples``, then Thompson sampling.

    Once adaptive, the control keeps ``control_share`` of the runs (every decision compares with
    it) and Thompson sampling picks among the candidates for the rest (among all arms when
    ``control_share`` is None).
    """
    if not adaptive(state, rules):
        return rng.choice(list(state.arms))
    if rules.control_share is None:
        return _thompson(state, list(state.arms), rng)
    if rng.random() < rules.control_share:
        return state.control
    return _thompson(state, state.candidates, rng)


def _wins(state: ExperimentState, names: Sequence[str], rng: random.Random, draws: int) -> dict[str, float]:
    """How often each of ``names`` has the highest of ``draws`` posterior draws, as shares."""
    wins = dict.fromkeys(names, 0)
    for _ in range(draws):
        wins[_thompson(state, names, rng)] += 1
    return {name: wins[name] / draws for name in names} if draws else {}


def p_best(state: ExperimentState, rng: random.Random, draws: int) -> dict[str, float]:
    """Each arm's posterior probability of the highest mean, by ``draws`` Monte-Carlo draws."""
    return _wins(state, list(state.arms), rng, draws)


def shares(state: ExperimentState, rules: Rules, rng: random.Random, draws: int = 1_000) -> dict[str, float]:
    """The share of runs ``allocate`` gives each arm now (estimated by ``draws`` draws when adaptive).

    These are the weights for ``assign`` when new subjects must be spread as ``allocate`` would
    spread single runs; a subject already assigned keeps its recorded arm.
    """
    if not adaptive(state, rules):
        return dict.fromkeys(state.arms, 1.0 / len(state.arms))
    if rules.control_share is None:
        return p_best(state, rng, draws)
    rest = 1.0 - rules.control_share
    candidates = _wins(state, state.candidates, rng, draws)
    return {state.control: rules.control_share, **{name: rest * share for name, share in candidates.items()}}


def log_likelihood_ratio(control: ArmStats, candidate: ArmStats, rules: Rules) -> float:
    """The log of the mSPRT mixture likelihood ratio of ``candidate`` against ``control`` (0 without data)."""
    if control.n < 2 or candidate.n < 2:
        return 0.0

    def spread(arm: ArmStats) -> float:
        return 0.25 if rules.variance == "bound" else max(arm.variance, 1e-6)

    v = spread(control) / control.n + spread(candidate) / candidate.n
    t2 = rules.tau * rules.tau
    d = candidate.mean - control.mean
    return 0.5 * math.log(v / (v + t2)) + t2 * d * d / (2.0 * v * (v + t2))


@dataclass(frozen=True)
class Decision:
    """The verdict on an experiment's state: a winner to promote, whether to stop, and why."""

    winner: str | None
    stop: bool
    reason: str
    p_best: dict[str, float] = field(default_factory=dict)


def decide(state: ExperimentState, rules: Rules, rng: random.Random | None = None) -> Decision:
    """Promote the candidate beating the control by mSPRT (the best mean if several); stop if all lose.

    ``p_best`` is estimated with ``rng`` (a fresh ``random.Random(0)`` without one).
    """
    control = state.arms[state.control]
    threshold = math.log(len(state.candidates) / rules.alpha)
    ready: list[str] = []
    wins: list[str] = []
    losses: list[str] = []
    for name in state.candidates:
        arm = state.arms[name]
        if min(arm.n, control.n) < rules.min_samples:
            continue
        ready.append(name)
        if log_likelihood_ratio(control, arm, rules) >= threshold:
            (wins if arm.mean > control.mean else losses).append(name)
    posterior = p_best(state, rng or random.Random(0), rules.p_best_draws)  # noqa: S311 (a simulation, no secret)
    bar = f"likelihood ratio ≥ {math.exp(threshold):.0f} = {len(state.candidates)} candidates / alpha {rules.alpha:g}"
    if wins:
        best = max(wins, key=lambda name: (state.arms[name].mean, name))
        arm = state.arms[best]
        reason = (
            f"{best!r} beats {state.control!r} by {arm.mean - control.mean:+.3f}"
            f" ({arm.mean:.3f} on {arm.n} vs {control.mean:.3f} on {control.n}; mSPRT {bar})"
        )
        return Decision(best, True, reason, posterior)
    if losses and len(losses) == len(state.candidates):
        return Decision(None, True, f"every candidate is worse than {state.control!r} (mSPRT {bar})", posterior)
    if len(ready) < len(state.candidates):
        return Decision(None, False, f"waiting for {rules.min_samples} rewards on every arm", posterior)
    return Decision(None, False, f"no candidate differs from {state.control!r} yet (mSPRT {bar})", posterior)


@dataclass(frozen=True)
class OpsStats:
    """An arm's runs as operations: how many, how many failed, latency p50 and cost."""

    runs: int
    failures: int
    latency_p50_s: float
    cost_usd: float
    """Total over ``runs``."""


@dataclass(frozen=True)
class GuardrailLimits:
    """How much worse than the control a candidate may run before it is rolled back."""

    min_runs: int = 30
    failure_rate_margin: float = 0.05
    """Absolute: 0.05 allows 7% failures next to the control's 2%."""
    latency_p50_ratio: float = 1.5
    cost_per_run_ratio: float = 1.5


def guardrail_breach(control: OpsStats, candidate: OpsStats, limits: GuardrailLimits) -> str | None:
    """Why ``candidate`` runs too badly next to ``control``, or None (also before both have ``min_runs``)."""
    if min(control.runs, candidate.runs) < limits.min_runs:
        return None
    breaches = []
    failing, baseline = candidate.failures / candidate.runs, control.failures / control.runs
    if failing - baseline > limits.failure_rate_margin:
        breaches.append(
            f"failure rate {failing:.1%} vs control {baseline:.1%} (margin {limits.failure_rate_margin:.1%})"
        )
    if candidate.latency_p50_s > control.latency_p50_s * limits.latency_p50_ratio:
        breaches.append(
            f"latency p50 {candidate.latency_p50_s:.3g} s vs control {control.latency_p50_s:.3g} s"
            f" (at most ×{limits.latency_p50_ratio:g})"
        )
    cost, baseline_cost = candidate.cost_usd / candidate.runs, control.cost_usd / control.runs
    if cost > baseline_cost * limits.cost_per_run_ratio:
        breaches.append(
            f"cost per run ${cost:.4g} vs control ${baseline_cost:.4g} (at most ×{limits.cost_per_run_ratio:g})"
        )
    return "; ".join(breaches) or None
