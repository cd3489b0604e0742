"""Candidate strategies: each proposes new agent configurations from the baseline and its scored examples.

A strategy is a module with one :class:`~core.optimizer.strategies.base.Strategy`; the optimizer
run names the strategies it uses (``strategies`` in ``POST /v1/agents/{id}/optimizer/runs``).
They are registered in :data:`STRATEGIES` by name:

- ``few_shot`` (:mod:`.few_shot`): demos from the training examples the baseline answered well,
  appended to the instructions as ``Input:``/``Output:`` pairs; no model call, any provider;
- ``reflective`` (:mod:`.reflective`): a model (``StrategyContext.reflect``) reads failures with
  their reasons and rewrites the instructions; proposes nothing without ``reflect``;
- ``model_swap`` (:mod:`.model_swap`): the same instructions on the provider's other models
  (``StrategyContext.models``, cheaper first), and at temperature 0.
"""

from __future__ import annotations

from core.optimizer.strategies import few_shot, model_swap, reflective
from core.optimizer.strategies.base import Strategy

STRATEGIES: dict[str, Strategy] = {
    module.STRATEGY.name: module.STRATEGY for module in (few_shot, reflective, model_swap)
}


def strategy(name: str) -> Strategy:
    """The strategy called ``name``.

    Raises:
        KeyError: no strategy has that name (the message lists the known ones).
    """
    try:
        return STRATEGIES[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}") from None
