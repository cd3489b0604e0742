"""Optimizer schedules: one Temporal Schedule per agent, ``{tenant}:optimizer-schedule:{agent id}``.

Each fire starts an ``OptimizerWorkflow`` (id: the schedule id, to which Temporal appends the
scheduled time) whose input has no run id: its first activity (``optimizer.begin_scheduled``)
builds a fresh dataset from the agent's well-rated runs and records the run under an id derived
from the workflow id (:func:`scheduled_run_id`). A fire while the previous run still runs is
skipped. The cron expression travels in the action's memo, the budget and ``auto_promote`` in
the action's argument; everything is read back from Temporal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)
from temporalio.common import Priority, SearchAttributePair, TypedSearchAttributes

from core.contracts.optimizer import WORKFLOW_NAME, OptimizerRunInput
from core.ids import AGENT_ID, RUN_KIND, TENANT_ID, workflow_id
from core.schedules import ScheduledAction, delete_schedule, describe_schedule, ensure_schedule, recent_starts

CATCHUP_WINDOW = timedelta(minutes=5)
FEEDBACK_WINDOW = timedelta(days=30)
"""A fire's dataset holds the agent's completed runs of this last window ..."""
MIN_SCORE = 0.8
"""... whose mean feedback score is at least this (their outputs become ``expected``)."""
_RUN_KIND = "optimizer"


def optimizer_schedule_id(tenant_id: str, agent_id: str) -> str:
    """The id of ``agent_id``'s optimizer schedule."""
    return workflow_id(tenant_id, "optimizer-schedule", agent_id)


def scheduled_run_id(workflow_id_: str) -> str:
    """The optimizer run id of the workflow a schedule started (the same for every attempt)."""
    return "opt_" + hashlib.sha256(workflow_id_.encode()).hexdigest()[:24]


def search_attributes(tenant_id: str, agent_id: str) -> TypedSearchAttributes:
    """``TenantId``, ``AgentId`` and ``RunKind=optimizer``."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(TENANT_ID, tenant_id),
            SearchAttributePair(RUN_KIND, _RUN_KIND),
            SearchAttributePair(AGENT_ID, agent_id),
        ]
    )


@dataclass(frozen=True, kw_only=True)
class OptimizerScheduleView:
    """A schedule as Temporal describes it: its cron and the start every fire makes."""

    id: str
    agent_id: str
    cron: str
    start: OptimizerRunInput
    next_action_times: list[datetime]
    recent_actions: list[ScheduledAction]
    created_at: datetime
    updated_at: datetime | None


class OptimizerSchedules:
    """The optimizer schedules of one tenant's agents in Temporal (``RPCError`` when Temporal fails)."""

    def __init__(self, client: Client, tenant_id: str, task_queue: str):
        self._client = client
        self._tenant_id = tenant_id
        self._task_queue = task_queue

    def _id(self, agent_id: str) -> str:
        return optimizer_schedule_id(self._tenant_id, agent_id)

    async def put(self, agent_id: str, cron: str, start: OptimizerRunInput) -> None:
        """Create the agent's schedule, or replace the one it has; ``start`` has no run id (the fire records it)."""
        schedule_id = self._id(agent_id)
        attributes = search_attributes(self._tenant_id, agent_id)
        schedule = Schedule(
            action=ScheduleActionStartWorkflow(
                WORKFLOW_NAME,
                start,
                id=schedule_id,
                task_queue=self._task_queue,
                memo={"cron": cron},
                typed_search_attributes=attributes,
                priority=Priority(fairness_key=self._tenant_id),
            ),
            spec=ScheduleSpec(cron_expressions=[cron]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCHUP_WINDOW),
        )
        await ensure_schedule(self._client, schedule_id, schedule, search_attributes=attributes)

    async def get(self, agent_id: str) -> OptimizerScheduleView | None:
        """The agent's schedule, or ``None`` when it has none."""
        description = await describe_schedule(self._client, self._id(agent_id))
        if description is None:
            return None
        action = cast(ScheduleActionStartWorkflow, description.schedule.action)
        converter = self._client.data_converter
        args = cast(list[Payload], list(action.args))
        start: OptimizerRunInput = (await converter.decode(args, [OptimizerRunInput]))[0]
        memo = cast(dict[str, Payload], dict(action.memo or {}))
        cron = (await converter.decode([memo["cron"]]))[0] if "cron" in memo else ""
        info = description.info
        return OptimizerScheduleView(
            id=description.id,
            agent_id=agent_id,
            cron=str(cron),
            start=start,
            next_action_times=list(info.next_action_times),
            recent_actions=recent_starts(info, scheduled_run_id),
            created_at=info.created_at,
            updated_at=info.last_updated_at,
        )

    async def delete(self, agent_id: str) -> bool:
        """Delete the agent's schedule; ``False`` when it had none."""
        return await delete_schedule(self._client, self._id(agent_id))
