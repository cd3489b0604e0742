"""Temporal Schedules: create or replace one, describe it, delete it (``None``/``False`` when it does not exist)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleInfo,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode


async def ensure_schedule(
    client: Client, schedule_id: str, schedule: Schedule, *, search_attributes: TypedSearchAttributes | None = None
) -> bool:
    """Create ``schedule_id``, or replace an existing one's definition with ``schedule`` (idempotent).

    Returns whether it was created (``False``: it existed and was updated).
    """
    try:
        await client.create_schedule(schedule_id, schedule, search_attributes=search_attributes)
    except ScheduleAlreadyRunningError:

        async def _update(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(_update)
        return False
    return True


async def describe_schedule(client: Client, schedule_id: str) -> ScheduleDescription | None:
    """The schedule as Temporal describes it, or ``None`` when there is none."""
    try:
        return await client.get_schedule_handle(schedule_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def delete_schedule(client: Client, schedule_id: str) -> bool:
    """Delete the schedule; ``False`` when there was none."""
    try:
        await client.get_schedule_handle(schedule_id).delete()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


@dataclass(frozen=True, kw_only=True)
class ScheduledAction:
    """One recent start of a schedule and the run it records."""

    scheduled_at: datetime
    started_at: datetime
    workflow_id: str
    run_id: str


def recent_starts(info: ScheduleInfo, run_id_of: Callable[[str], str]) -> list[ScheduledAction]:
    """The schedule's recent workflow starts, each with its run id (``run_id_of`` the workflow id)."""
    return [
        ScheduledAction(
            scheduled_at=a.scheduled_at,
            started_at=a.started_at,
            workflow_id=a.action.workflow_id,
            run_id=run_id_of(a.action.workflow_id),
        )
        for a in info.recent_actions
        if isinstance(a.action, ScheduleActionExecutionStartWorkflow)
    ]
