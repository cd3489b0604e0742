"""Helpers the strategies share: a validated variant of the baseline, and the distinct-candidates rule."""

from __future__ import annotations

import random
from typing import Any

from pydantic import ValidationError

from core.agents import AgentConfig
from core.optimizer.strategies.base import Candidate


def variant(baseline: AgentConfig, **changes: Any) -> AgentConfig | None:
    """``baseline`` with ``changes`` (top-level fields, ``model`` as a dict of its fields), or ``None`` if invalid.

    The variant is validated as a stored configuration is (an instructions text over the limit,
    say), so a strategy never proposes a configuration the agent versions would refuse.
    """
    data = baseline.model_dump()
    model = changes.pop("model", None)
    if model is not None:
        data["model"] = {**data["model"], **model}
    data.update(changes)
    try:
        return AgentConfig.model_validate(data)
    except ValidationError:
        return None


def seeded(*parts: object) -> random.Random:
    """A generator determined by ``parts`` (a strategy's name, the context's seed, an attempt number)."""
    return random.Random(":".join(map(str, parts)))  # noqa: S311 (a reproducible choice, no secret)


class Proposals:
    """Collects candidates up to ``count``, dropping any equal to the baseline or to one already kept."""

    def __init__(self, baseline: AgentConfig, count: int) -> None:
        self.count = max(0, count)
        self.candidates: list[Candidate] = []
        self._seen = {_key(baseline)}

    @property
    def full(self) -> bool:
        """Whether ``count`` candidates are kept."""
        return len(self.candidates) >= self.count

    def add(self, config: AgentConfig | None, strategy: str, note: str) -> bool:
        """Keep ``config`` unless it is ``None``, a repeat, or the collection is full; whether it was kept."""
        if config is None or self.full or _key(config) in self._seen:
            return False
        self._seen.add(_key(config))
        self.candidates.append(Candidate(config=config, strategy=strategy, note=note))
        return True


def _key(config: AgentConfig) -> str:
    return config.model_dump_json()
