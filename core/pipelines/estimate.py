"""The cost estimate of the validate plan, learnt from each agent's recent runs.

An ``agent`` step is estimated at the mean ``cost_usd`` of its agent's last
``RECENT_RUNS`` completed runs in the tenant (``None`` without any). ``tool``, ``approval``
and ``wait`` steps cost nothing. A ``map`` step's cost depends on its number of items,
known only at run time: its estimate is ``None`` and ``cost_estimate_per_item_usd`` is
that of its step (one item). A ``pipeline`` step is not estimated (``None``).
The plan's ``cost_estimate_usd`` adds the steps outside maps, each once; it is ``None``
when one of them has no estimate (maps are left out of it: add per item × items).
The history is read after validation (which runs in a worker thread), on the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from core.contracts.agent_run import RunStatus
from core.pipelines.definition import AgentStep, AnyStep, Definition, MapStep, PipelineStep, walk_steps

RECENT_RUNS = 50
"""Completed runs of an agent its estimate is the mean of."""

_MEAN_COSTS = text(
    """
    SELECT wanted.agent_id, avg(recent.cost_usd)
    FROM unnest(CAST(:agent_ids AS text[])) AS wanted(agent_id)
    CROSS JOIN LATERAL (
        SELECT run.cost_usd FROM run
        WHERE run.tenant_id = :tenant_id AND run.agent_id = wanted.agent_id AND run.status = :status
        ORDER BY run.created_at DESC
        LIMIT :recent
    ) AS recent
    GROUP BY wanted.agent_id
    """
)


async def agent_costs(session: AsyncSession, tenant_id: str, agent_ids: Iterable[str]) -> dict[str, float]:
    """Each agent's mean cost over its last ``RECENT_RUNS`` completed runs (agents without any are absent)."""
    ids = sorted(agent_ids)
    if not ids:
        return {}
    rows = await session.execute(
        _MEAN_COSTS,
        {"agent_ids": ids, "tenant_id": tenant_id, "status": RunStatus.COMPLETED.value, "recent": RECENT_RUNS},
    )
    return {agent_id: round(float(mean), 8) for agent_id, mean in rows.all()}


def agent_ids(definition: Definition) -> set[str]:
    """The agents the definition's steps run (inside maps too)."""
    return {site.step.agent_id for site in walk_steps(definition) if isinstance(site.step, AgentStep)}


def step_cost(step: AnyStep, costs: Mapping[str, float]) -> float | None:
    """One execution of ``step`` (a map: ``None``, its items are counted apart)."""
    if isinstance(step, AgentStep):
        return costs.get(step.agent_id)
    if isinstance(step, MapStep | PipelineStep):
        return None
    return 0.0


def with_cost_estimate(plan: dict[str, Any], definition: Definition, costs: Mapping[str, float]) -> dict[str, Any]:
    """``plan`` with ``cost_estimate_usd`` on the plan and on each step (and per item on maps)."""
    steps = []
    total: float | None = 0.0
    for entry, step in zip(plan["steps"], definition.steps, strict=True):
        cost = step_cost(step, costs)
        extra: dict[str, Any] = {"cost_estimate_usd": cost}
        if isinstance(step, MapStep):
            extra["cost_estimate_per_item_usd"] = step_cost(step.step, costs)
        else:
            total = None if total is None or cost is None else total + cost
        steps.append(entry | extra)
    return plan | {"steps": steps, "cost_estimate_usd": None if total is None else round(total, 8)}
