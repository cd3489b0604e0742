"""What every candidate strategy takes and gives.

The optimizer evaluates the baseline configuration on the training split first; a strategy
reads those scored examples (output, score and the metric's reason) and proposes at most
``count`` candidate configurations. Proposals are deterministic for a given context (``seed``);
a strategy that needs a model (a reflective rewrite) calls ``reflect`` — the caller owns that
I/O (a Temporal activity, its retries and its cost).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.agents import AgentConfig


@dataclass(frozen=True)
class ScoredExample:
    """One training example as the baseline answered it."""

    example_id: str
    input: str
    expected: Any
    output: str
    score: float
    reason: str | None = None


@dataclass(frozen=True)
class Candidate:
    """A proposed configuration: ``note`` says what changed (kept with the run's record)."""

    config: AgentConfig
    strategy: str
    note: str


Reflect = Callable[[str], Awaitable[str]]
"""A model call: prompt in, text out."""


@dataclass(frozen=True)
class StrategyContext:
    """What a strategy proposes from."""

    baseline: AgentConfig
    train: Sequence[ScoredExample]
    count: int
    seed: int
    reflect: Reflect | None = None
    models: Sequence[str] = ()
    """Other model names of the baseline's provider a swap may try (cheaper first)."""


class Strategy(Protocol):
    """Proposes candidates; ``name`` is how runs select it."""

    name: str

    async def propose(self, context: StrategyContext) -> list[Candidate]:
        """At most ``context.count`` candidates, none equal to the baseline."""
        ...
