"""Model and parameter swaps: the same instructions on another model, or at a lower temperature.

One candidate per name in ``context.models`` (the provider's other models, cheaper first, in
that order; the baseline's own model and repeats skipped), then, when ``temperature`` is on,
the baseline's model at ``temperature`` 0 (unless the baseline's is already 0 or lower; an
absent temperature is the provider's default). Everything else (instructions, tools, the
other params) stays; the optimizer keeps a swap only if the score holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.optimizer.strategies.base import Candidate, StrategyContext
from core.optimizer.strategies.common import Proposals, variant

LOW_TEMPERATURE = 0.0


@dataclass(frozen=True)
class ModelSwap:
    """The ``model_swap`` strategy."""

    name: str = "model_swap"
    temperature: bool = True
    """Also propose the baseline's model at ``LOW_TEMPERATURE``."""

    async def propose(self, context: StrategyContext) -> list[Candidate]:
        """The swaps in order, then the temperature variant, up to ``count``."""
        baseline = context.baseline
        proposals = Proposals(baseline, context.count)
        for model in context.models:
            if model != baseline.model.name:
                note = f"model {baseline.model.name} → {model}"
                proposals.add(variant(baseline, model={"name": model}), self.name, note)
        current = baseline.model.params.get("temperature")
        lower = current is None or (isinstance(current, int | float) and current > LOW_TEMPERATURE)
        if self.temperature and lower:
            params = {**baseline.model.params, "temperature": LOW_TEMPERATURE}
            was = "the provider's default" if current is None else f"{current:g}"
            note = f"temperature {was} → {LOW_TEMPERATURE:g} on {baseline.model.name}"
            proposals.add(variant(baseline, model={"params": params}), self.name, note)
        return proposals.candidates


STRATEGY = ModelSwap()
