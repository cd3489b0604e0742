"""Reflective instruction rewrite (GEPA/OPRO-style): a model reads failures and their reasons, rewrites instructions.

Each proposal is one ``context.reflect`` call on a prompt built like GEPA's reflection prompt:
the current instructions in a fenced block, then a sample of failures (input, the answer,
the expected answer when known, and the metric's score and reason), then the request to
write improved instructions inside a fenced block. As in OPRO, later calls also list the
rewrites already proposed and ask for a different one. The samples (at most
``sample_size`` failures, in a shuffled order) are drawn by the seed, so the prompts, and
with a deterministic ``reflect`` the candidates, are the same for the same context. An answer
is parsed tolerantly (:func:`parse_instructions`): a JSON object's ``instructions``, else the
first fenced block, else the plain text without a lead-in line ("Here are the new
instructions:"); an empty block is a rewrite too (no instructions at all). At most
``2 × count`` calls are made; answers that parse to nothing, repeat the baseline or an
earlier rewrite are dropped.

Without ``reflect`` (no model to ask) or without a failure (nothing to learn from), the
strategy proposes nothing.

Why not the ``gepa`` package: ``gepa.optimize`` runs its own loop — it evaluates candidates
by calling the task model, keeps a Pareto frontier and spends its own budget — around plain
callables. Here the optimizer workflow owns evaluation, caching, budget and durability (each
evaluation and each model call a Temporal activity), and a strategy only proposes. What
fits is gepa's reflection prompt idea, which is a few lines of text; the package would add a
dependency for a loop we must not run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from core.optimizer.strategies.base import Candidate, ScoredExample, StrategyContext
from core.optimizer.strategies.common import Proposals, seeded, variant

_FENCE = re.compile(r"(`{3,}|~{3,})(?:[\w+-]*[ \t]*\n)?(.*?)(?:\n?\1|\Z)", re.DOTALL)
_BACKTICKS = re.compile(r"`{3,}")
_LEAD_IN = re.compile(
    r"^(?:here (?:are|is)|new|improved|updated|revised|rewritten)\b[^\n]{0,120}:[ \t]*\n", re.IGNORECASE
)
_FIELD_LIMIT = 2000


def failures(train: Sequence[ScoredExample], passing: float) -> list[ScoredExample]:
    """The examples scoring below ``passing``, worst first (ties by id)."""
    return sorted((e for e in train if e.score < passing), key=lambda e: (e.score, e.example_id))


def reflection_prompt(instructions: str, sample: Sequence[ScoredExample], earlier: Sequence[str] = ()) -> str:
    """The prompt asking for improved instructions from ``sample`` (and different from ``earlier`` rewrites)."""
    fence = _fence_for(instructions)
    parts = [
        "An assistant was given these instructions:",
        f"{fence}\n{instructions.strip()}\n{fence}",
        "It answered the following inputs badly. Each shows the input, the assistant's answer, the expected"
        " answer where known, and feedback on the answer.",
    ]
    for number, example in enumerate(sample, 1):
        lines = [f"# Example {number}", "## Input", _clip(example.input)]
        lines += ["## Assistant's answer", _clip(example.output)]
        if example.expected is not None:
            expected = example.expected if isinstance(example.expected, str) else json.dumps(example.expected)
            lines += ["## Expected answer", _clip(expected)]
        lines += [f"## Feedback (score {example.score:g})", _clip(example.reason or "no reason given")]
        parts.append("\n".join(lines))
    if earlier:
        listed = "\n".join(f"- {' '.join(text.split())[:_FIELD_LIMIT]}" for text in earlier)
        parts.append(f"Rewrites already proposed (propose a different one):\n{listed}")
    parts.append(
        "Your task: write improved instructions for the assistant. Identify what the failures have in common"
        " and the general lesson, keep what already works, and do not copy the examples' answers. Explain"
        " briefly, then give the complete new instructions inside one ``` block."
    )
    return "\n\n".join(parts)


def parse_instructions(answer: str) -> str | None:
    """The instructions in a reflection answer: JSON ``instructions``, else the first fenced block, else the text.

    An empty JSON value or fenced block is an answer (no instructions at all); an empty answer is ``None``.
    """
    text = answer.strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        value = data.get("instructions")
        return value.strip() if isinstance(value, str) else None
    if found := _FENCE.search(text):
        return found[2].strip()
    return _LEAD_IN.sub("", text, count=1).strip() or None


def _explanation(answer: str) -> str:
    """The answer's text before its fenced block, on one line (the model's reason for the rewrite)."""
    before = _FENCE.split(answer.strip(), maxsplit=1)[0]
    return " ".join(before.split())[:300]


def _fence_for(text: str) -> str:
    """A backtick fence longer than any run of backticks in ``text``."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=2)
    return "`" * max(3, longest + 1)


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _FIELD_LIMIT else f"{text[:_FIELD_LIMIT]} …"


@dataclass(frozen=True)
class Reflective:
    """The ``reflective`` strategy."""

    name: str = "reflective"
    needs_reflect: bool = True
    """Proposes nothing without ``StrategyContext.reflect`` (a caller may say so to the user)."""
    passing: float = 1.0
    """Examples scoring below this are failures."""
    sample_size: int = 4

    async def propose(self, context: StrategyContext) -> list[Candidate]:
        """Up to ``count`` distinct rewrites, one ``reflect`` call each (see the module docstring)."""
        failed = failures(context.train, self.passing)
        proposals = Proposals(context.baseline, context.count)
        if context.reflect is None or not failed:
            return []
        earlier: list[str] = []
        for attempt in range(2 * proposals.count):
            if proposals.full:
                break
            rng = seeded("reflective", context.seed, attempt)
            sample = rng.sample(failed, min(self.sample_size, len(failed)))
            answer = await context.reflect(reflection_prompt(context.baseline.instructions, sample, earlier))
            rewritten = parse_instructions(answer)
            if rewritten is None:
                continue
            ids = ", ".join(e.example_id for e in sample)
            note = f"instructions rewritten from {len(sample)} failures ({ids})"
            if reason := _explanation(answer):
                note += f": {reason}"
            if proposals.add(variant(context.baseline, instructions=rewritten), self.name, note):
                earlier.append(rewritten)
        return proposals.candidates


STRATEGY = Reflective()
