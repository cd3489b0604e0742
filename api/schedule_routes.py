"""What the schedule routes share (a pipeline's schedule, an agent's optimizer schedule), each kept by Temporal.

Reading one (404 when there is none), saving and deleting it (audited, committed), and its recent
fires as the public shape; every Temporal failure answers 503 ``temporal-unavailable``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from fastapi import Response
from sqlmodel.ext.asyncio.session import AsyncSession

from api.audit import audit
from api.deps import Principal
from api.pipeline_schedule_schemas import ScheduledActionPublic
from api.problem_types import ProblemType
from api.problems import ProblemError
from api.temporal_problems import temporal_answers
from core.schedules import ScheduledAction

V = TypeVar("V")


def recent_actions(actions: Sequence[ScheduledAction]) -> list[ScheduledActionPublic]:
    """A schedule's recent fires and the runs they recorded."""
    return [
        ScheduledActionPublic(
            scheduled_at=a.scheduled_at, started_at=a.started_at, run_id=a.run_id, workflow_id=a.workflow_id
        )
        for a in actions
    ]


async def read_schedule(read: Awaitable[V | None], missing: str) -> V:
    """The schedule ``read`` answers; 404 with ``missing`` when there is none."""
    async with temporal_answers("the schedule could not be read"):
        view = await read
    if view is None:
        raise ProblemError(404, missing, slug=ProblemType.NOT_FOUND)
    return view


async def save_schedule(
    save: Awaitable[None],
    session: AsyncSession,
    principal: Principal,
    *,
    action: str,
    target_type: str,
    target_id: str,
    data: dict[str, Any],
) -> None:
    """Save a schedule in Temporal, then audit ``action`` on the target and commit."""
    async with temporal_answers("the schedule could not be saved"):
        await save
    audit(session, principal, action=action, target_type=target_type, target_id=target_id, data=data)
    await session.commit()


async def remove_schedule(
    delete: Awaitable[bool],
    missing: str,
    session: AsyncSession,
    principal: Principal,
    *,
    action: str,
    target_type: str,
    target_id: str,
) -> Response:
    """Delete a schedule in Temporal (404 with ``missing`` when there was none), audit ``action``, commit; 204."""
    async with temporal_answers("the schedule could not be deleted"):
        deleted = await delete
    if not deleted:
        raise ProblemError(404, missing, slug=ProblemType.NOT_FOUND)
    audit(session, principal, action=action, target_type=target_type, target_id=target_id)
    await session.commit()
    return Response(status_code=204)
