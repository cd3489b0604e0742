"""The offline optimizer bench's in-process side: scores on the simulated world, the two baselines, the statistics.

Scores. :class:`Ledger` scores one instructions text on one example as the platform's
``optimizer.evaluate`` does on the simulated world: the request the platform builds
(``core.llm.prompt.agent_request``: the instructions as the system message, then the input),
answered by ``SimWorld.answer`` in this process rather than over HTTP (the answer is a
deterministic function of the request, so it is the answer the server gives), scored by the
``exact`` metric (``core.optimizer.metrics.match``). The bench checks this, seed by seed,
against the optimizer run's own recorded scores. A ledger counts evaluations as the workflow
does (one text on one example once, however often it is read) and refuses to pass its budget.

Baselines, each spending at most the optimizer's ``max_evals`` and deciding with its rule: the
best text on validation (ties: the earlier one) is compared with the baseline on the first
``max_evals // TEST_SHARE`` test examples, both scored there (reserved from the start), by
``core.optimizer.stats.paired_comparison``, and promoted only when that is significant.

- Uniform allocation: the optimizer run's own candidates, the budget split evenly among them
  on the first validation examples, no successive halving. It pays for the baseline's
  training scores the candidates were proposed from, as the run did.
- Random search: as many random texts as the optimizer was asked to propose, each the
  baseline's instructions plus each of the world's six feature phrases with probability 1/2,
  and, with probability 3/4, 2, 4 or 8 demos of random training examples with their expected
  answers in the ``few_shot`` layout. It needs no training scores, so its validation share is
  the whole budget less the test's. Drawing from the hidden function's own vocabulary (every
  phrase it may add matters to the world) favours it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.contracts.llm import ChatMessage, ModelConfig
from core.llm.prompt import agent_request
from core.optimizer.metrics import ExactMetric, match
from core.optimizer.stats import Interval, mean_interval, paired_comparison, survivors
from core.optimizer.strategies.few_shot import Demo, with_demos
from simulated.world import PHRASES, SLICES, SimWorld, question_bank
from workflows.optimizer import TEST_SHARE, TRAIN_SHARE

EXACT = ExactMetric(type="exact")
DEMO_SIZES = (0, 2, 4, 8)
"""Demos in a random-search text (0: none), equally likely."""


@dataclass(frozen=True)
class Example:
    """A dataset example as the platform holds it: its id, input and expected answer."""

    id: str
    input: str
    expected: str


@dataclass(frozen=True)
class Splits:
    """A dataset's examples by split, in position order (the order the optimizer reads them in)."""

    train: list[Example]
    validation: list[Example]
    test: list[Example]


@dataclass(frozen=True)
class Rules:
    """What the optimizer run is given: its budget, its minimum effect and its seed (for the paired bootstrap)."""

    max_evals: int
    min_effect: float
    seed: int

    def train_size(self, splits: Splits) -> int:
        """Training examples the optimizer scores the baseline on."""
        return min(len(splits.train), self.max_evals // TRAIN_SHARE)

    def test_size(self, splits: Splits) -> int:
        """Test examples each of the baseline and the chosen text is scored on."""
        return min(len(splits.test), self.max_evals // TEST_SHARE)


@dataclass
class Ledger:
    """One method's evaluations on one world: scores by (text, example id), counted against ``budget``."""

    world: SimWorld
    model: str
    budget: int
    scores: dict[tuple[str, str], float] = field(default_factory=dict)

    @property
    def evals(self) -> int:
        """Evaluations spent: distinct (text, example) pairs scored."""
        return len(self.scores)

    def evaluate(self, instructions: str, examples: Sequence[Example]) -> dict[str, float]:
        """``instructions``' scores on ``examples`` by example id.

        Raises:
            RuntimeError: scoring them would pass the budget (a bug of the method, not an outcome).
        """
        new = {(instructions, e.id) for e in examples} - self.scores.keys()
        if self.evals + len(new) > self.budget:
            raise RuntimeError(f"{self.evals} + {len(new)} evaluations would pass the budget of {self.budget}")
        for example in examples:
            key = (instructions, example.id)
            if key not in self.scores:
                self.scores[key] = self.score(instructions, example)
        return {e.id: self.scores[(instructions, e.id)] for e in examples}

    def score(self, instructions: str, example: Example) -> float:
        """One evaluation, uncounted: the world's answer to the platform's request, by the ``exact`` metric."""
        model = ModelConfig(provider="openai", name=self.model)
        request = agent_request(model, [ChatMessage(role="user", content=example.input)], [], instructions=instructions)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        return match(EXACT, self.world.answer(body), example.expected).value

    def mean(self, instructions: str, examples: Sequence[Example]) -> float:
        """The mean score of ``instructions`` on ``examples`` (scored if not yet)."""
        return sum(self.evaluate(instructions, examples).values()) / len(examples)


@dataclass(frozen=True)
class Outcome:
    """How a method ended on one seed: the texts it tried, its pick on validation, what it ends with."""

    candidates: tuple[str, ...]
    picked: str | None
    final: str
    promoted: bool
    evals: int


def decide(ledger: Ledger, baseline: str, candidates: Sequence[str], per: int, splits: Splits, rules: Rules) -> Outcome:
    """The best of ``candidates`` on the first ``per`` validation examples, promoted on a significant test win."""
    if not candidates or per < 1:
        return Outcome(tuple(candidates), None, baseline, False, ledger.evals)
    validation = splits.validation[:per]
    means = {f"{i:06d}": ledger.mean(text, validation) for i, text in enumerate(candidates)}
    picked = candidates[int(survivors(means, 1)[0])]
    test = splits.test[: rules.test_size(splits)]
    promoted = False
    if test:
        base, chosen = ledger.evaluate(baseline, test), ledger.evaluate(picked, test)
        comparison = paired_comparison(chosen, base, min_effect=rules.min_effect, seed=rules.seed, split="test")
        promoted = comparison.significant
    return Outcome(tuple(candidates), picked, picked if promoted else baseline, promoted, ledger.evals)


def uniform_allocation(
    ledger: Ledger, baseline: str, candidates: Sequence[str], splits: Splits, rules: Rules
) -> Outcome:
    """The optimizer's candidates, each on an even share of the validation budget (see the module docstring)."""
    n_train, n_test = rules.train_size(splits), rules.test_size(splits)
    ledger.evaluate(baseline, splits.train[:n_train])
    room = rules.max_evals - n_train - 2 * n_test
    per = min(len(splits.validation), room // len(candidates)) if candidates else 0
    return decide(ledger, baseline, candidates, per, splits, rules)


def random_texts(baseline: str, train: Sequence[Example], count: int, rng: random.Random) -> list[str]:
    """``count`` distinct random texts, none the baseline (see the module docstring)."""
    texts: list[str] = []
    for _ in range(50 * count):
        if len(texts) >= count:
            break
        phrases = [phrase for phrase in PHRASES.values() if rng.random() < 0.5]
        text = " ".join([baseline.strip(), *phrases]).strip()
        size = min(rng.choice(DEMO_SIZES), len(train))
        if size:
            demos = [Demo(e.id, e.input, e.expected) for e in rng.sample(list(train), size)]
            text = with_demos(text, demos)
        if text != baseline and text not in texts:
            texts.append(text)
    return texts


def random_search(
    ledger: Ledger, baseline: str, splits: Splits, rules: Rules, count: int, rng: random.Random
) -> Outcome:
    """``count`` random texts, each on an even share of the budget less the test's (see the module docstring)."""
    texts = random_texts(baseline, splits.train, count, rng)
    room = rules.max_evals - 2 * rules.test_size(splits)
    per = min(len(splits.validation), room // len(texts)) if texts else 0
    return decide(ledger, baseline, texts, per, splits, rules)


@dataclass(frozen=True)
class Best:
    """The best prompt the world can express on one model: its quality and what it holds."""

    quality: float
    phrases: tuple[str, ...]
    demos: tuple[int, ...]
    """Right demos per slice (``SLICES`` order)."""


def world_best(world: SimWorld, baseline: str, model: str) -> Best:
    """The best hidden quality over the baseline's instructions with any subset of the six feature phrases and
    any right demos, 0 to 3 per slice (more never helps: the world counts at most 3 of a kind and dilutes past 8)."""
    bank = question_bank(0, 12 * len(SLICES))
    by_slice = {s: [(e["input"], e["expected"]) for e in bank if e["slice"] == s] for s in SLICES}
    best = Best(-1.0, (), ())
    names = list(PHRASES)
    for mask in range(2 ** len(names)):
        chosen = tuple(names[i] for i in range(len(names)) if mask >> i & 1)
        text = " ".join([baseline.strip(), *(PHRASES[n] for n in chosen)]).strip()
        for counts in _counts(len(SLICES), 3):
            demos = [d for s, k in zip(SLICES, counts, strict=True) for d in by_slice[s][:k]]
            quality = world.hidden_quality(text, demos, model)
            if quality > best.quality:
                best = Best(quality, chosen, counts)
    return best


def _counts(slots: int, most: int) -> list[tuple[int, ...]]:
    if slots == 0:
        return [()]
    return [(k, *rest) for k in range(most + 1) for rest in _counts(slots - 1, most)]


def interval(values: Sequence[float]) -> Interval:
    """The mean of ``values`` with its 95% bootstrap percentile interval over seeds (10,000 resamples)."""
    return mean_interval(values, seed=0, resamples=10_000)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a binomial share ``k / n``."""
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, not k={k}, n={n}")
    tail = (1.0 - confidence) / 2.0
    lo = 0.0 if k == 0 else _root(lambda p: _at_least(k, n, p) - tail)
    hi = 1.0 if k == n else _root(lambda p: _at_least(k + 1, n, p) - (1.0 - tail))
    return lo, hi


def _at_least(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), increasing in p."""
    return sum(math.comb(n, i) * p**i * (1.0 - p) ** (n - i) for i in range(k, n + 1))


def _root(f: Any) -> float:
    """The p in [0, 1] where the increasing ``f`` crosses 0, by bisection."""
    low, high = 0.0, 1.0
    for _ in range(60):
        middle = (low + high) / 2.0
        if f(middle) < 0:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0
