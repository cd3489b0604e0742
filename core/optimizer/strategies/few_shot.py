"""Few-shot demos (BootstrapFewShot-style): training examples the baseline answered well, written into the instructions.

Demos come only from examples scoring at least ``threshold``; the demo's answer is the
example's ``expected`` when it is a non-empty text (a match metric's answer), else the
baseline's high-scoring output (a JSON field's value or a rubric has no whole answer). Inputs
are de-duplicated, then picked farthest-first by word overlap (Jaccard distance), from a start
drawn by the seed, so a set covers different kinds of input before repeating one. Candidate
``i`` takes ``sizes[i % len(sizes)]`` demos (default 2, 4, 8) from its own seeded start, so the
candidates differ in count and in subset. Nothing touches a model: it works with any provider,
``local`` included.

The demos are appended to the instructions in this fixed format (a section replaced, not
repeated, when the baseline already has one)::

    <instructions>

    Examples of good answers:

    Input: <demo input>
    Output: <demo answer>

    Input: ...
    Output: ...

A demo text of several lines keeps its further lines indented by two spaces. ``Input:`` /
``Output:`` line pairs are the plain-text demo layout models (and the simulated test world)
read as examples.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from core.optimizer.strategies.base import Candidate, ScoredExample, StrategyContext
from core.optimizer.strategies.common import Proposals, seeded, variant

DEMO_HEADER = "Examples of good answers:"
"""The line that opens the demo section of the instructions."""

_WORD = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class Demo:
    """One demo: the example it came from, its input and its answer."""

    example_id: str
    input: str
    answer: str


def demo_answer(example: ScoredExample) -> str:
    """``expected`` when it is a non-empty text, else the baseline's output."""
    if isinstance(example.expected, str) and example.expected.strip():
        return example.expected
    return example.output


def eligible(train: Sequence[ScoredExample], threshold: float) -> list[Demo]:
    """Demos of the examples scoring at least ``threshold``, one per distinct input, best score first."""
    ranked = sorted(
        (e for e in train if e.score >= threshold and e.input.strip()), key=lambda e: (-e.score, e.example_id)
    )
    demos: dict[str, Demo] = {}
    for example in ranked:
        answer = demo_answer(example)
        key = " ".join(example.input.split()).casefold()
        if answer.strip() and key not in demos:
            demos[key] = Demo(example.example_id, example.input, answer)
    return list(demos.values())


def pick(demos: Sequence[Demo], k: int, rng: random.Random) -> list[Demo]:
    """``k`` demos farthest-first by word overlap from a start drawn by ``rng``; ties keep the given order."""
    if not demos or k < 1:
        return []
    words = [frozenset(_WORD.findall(d.input.casefold())) for d in demos]
    chosen = [rng.randrange(len(demos))]
    nearest = [_distance(words[i], words[chosen[0]]) for i in range(len(demos))]
    while len(chosen) < min(k, len(demos)):
        best = max((i for i in range(len(demos)) if i not in chosen), key=lambda i: (nearest[i], -i))
        chosen.append(best)
        nearest = [min(nearest[i], _distance(words[i], words[best])) for i in range(len(demos))]
    return [demos[i] for i in chosen]


def _distance(a: frozenset[str], b: frozenset[str]) -> float:
    union = a | b
    return 1.0 - len(a & b) / len(union) if union else 0.0


def with_demos(instructions: str, demos: Sequence[Demo]) -> str:
    """``instructions`` (without any earlier demo section) followed by the demo section."""
    base = instructions.split(f"\n\n{DEMO_HEADER}\n", 1)[0].rstrip()
    if base.startswith(f"{DEMO_HEADER}\n"):
        base = ""
    blocks = "\n\n".join(f"Input: {_line(d.input)}\nOutput: {_line(d.answer)}" for d in demos)
    return f"{base}\n\n{DEMO_HEADER}\n\n{blocks}".lstrip()


def _line(text: str) -> str:
    """``text`` stripped, further lines indented so each demo stays one ``Input``/``Output`` pair."""
    return "\n  ".join(line.rstrip() for line in text.strip().splitlines())


@dataclass(frozen=True)
class FewShot:
    """The ``few_shot`` strategy."""

    name: str = "few_shot"
    threshold: float = 0.8
    sizes: tuple[int, ...] = (2, 4, 8)

    async def propose(self, context: StrategyContext) -> list[Candidate]:
        """Demo sets of the sizes in turn, each from its own seeded start; none if no example scores well."""
        demos = eligible(context.train, self.threshold)
        proposals = Proposals(context.baseline, context.count)
        if not demos:
            return []
        for attempt in range(4 * max(context.count, 0)):
            if proposals.full:
                break
            k = self.sizes[attempt % len(self.sizes)]
            chosen = pick(demos, k, seeded("few_shot", context.seed, attempt))
            config = variant(context.baseline, instructions=with_demos(context.baseline.instructions, chosen))
            ids = ", ".join(d.example_id for d in chosen)
            note = f"{len(chosen)} demos from examples scoring at least {self.threshold:g}: {ids}"
            proposals.add(config, self.name, note)
        return proposals.candidates


STRATEGY = FewShot()
