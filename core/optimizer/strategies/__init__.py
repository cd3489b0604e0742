"""Candidate strategies: each proposes new agent configurations from the baseline and its scored examples.

A strategy is a module with one :class:`~core.optimizer.strategies.base.Strategy`; the optimizer
run names the strategies it uses (``strategies`` in ``POST /v1/agents/{id}/optimizer/runs``).
"""
