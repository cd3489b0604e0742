"""Pipeline schedules: one Temporal Schedule per pipeline, ``{tenant}:pipeline-schedule:{pipeline id}``.

The schedule's action starts a ``PipelineWorkflow`` (id: the schedule id, to which Temporal
appends the scheduled time) whose input has no run id yet: the workflow's first activity
(``pipeline.begin_scheduled``) records the run under an id derived from the workflow id
(:func:`scheduled_run_id`, so a retried activity finds the same row), with the schedule id,
the current (or pinned) version and the tenant's run quota checked. The cron expression
travels in the action's memo (Temporal answers a schedule's cron as calendars), the input
and version in the action's argument. Everything is read back from Temporal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleBackfill,
    ScheduleHandle,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import Priority, SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from core.contracts.pipelines import WORKFLOW_NAME, PipelineRunInput
from core.ids import PIPELINE_ID, RUN_KIND, TENANT_ID, workflow_id
from core.schedules import ScheduledAction, delete_schedule, describe_schedule, ensure_schedule, recent_starts

OVERLAP = {
    "skip": ScheduleOverlapPolicy.SKIP,
    "buffer_one": ScheduleOverlapPolicy.BUFFER_ONE,
    "buffer_all": ScheduleOverlapPolicy.BUFFER_ALL,
    "cancel_other": ScheduleOverlapPolicy.CANCEL_OTHER,
    "allow_all": ScheduleOverlapPolicy.ALLOW_ALL,
}
"""The overlap policies the API offers, by name."""
DEFAULT_CATCHUP_WINDOW_S = 300
MAX_BACKFILL_RANGE = timedelta(days=31)
MAX_BACKFILL_RUNS = 100
_RUN_KIND = "pipeline"


def pipeline_schedule_id(tenant_id: str, pipeline_id: str) -> str:
    """The id of ``pipeline_id``'s schedule."""
    return workflow_id(tenant_id, "pipeline-schedule", pipeline_id)


def scheduled_run_id(workflow_id_: str) -> str:
    """The pipeline run id of the workflow a schedule started (the same for every attempt)."""
    return "prn_" + hashlib.sha256(workflow_id_.encode()).hexdigest()[:24]


def search_attributes(tenant_id: str, pipeline_id: str) -> TypedSearchAttributes:
    """``TenantId``, ``PipelineId`` and ``RunKind=pipeline``."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(TENANT_ID, tenant_id),
            SearchAttributePair(PIPELINE_ID, pipeline_id),
            SearchAttributePair(RUN_KIND, _RUN_KIND),
        ]
    )


@dataclass(frozen=True, kw_only=True)
class ScheduleSettings:
    """What ``PUT /v1/pipelines/{id}/schedule`` sets (already validated)."""

    cron: str
    input: Any = None
    overlap: str = "skip"
    paused: bool = False
    catchup_window_s: int = DEFAULT_CATCHUP_WINDOW_S
    version: int | None = None
    """A pinned version; ``None`` runs the pipeline's current version at each fire."""


@dataclass(frozen=True, kw_only=True)
class ScheduleView:
    """A schedule as Temporal describes it."""

    id: str
    pipeline_id: str
    settings: ScheduleSettings
    next_action_times: list[datetime]
    recent_actions: list[ScheduledAction]
    created_at: datetime
    updated_at: datetime | None


class PipelineSchedules:
    """The schedules of one tenant's pipelines in Temporal (``RPCError`` when Temporal fails)."""

    def __init__(self, client: Client, tenant_id: str, task_queue: str):
        self._client = client
        self._tenant_id = tenant_id
        self._task_queue = task_queue

    def _handle(self, pipeline_id: str) -> ScheduleHandle:
        return self._client.get_schedule_handle(pipeline_schedule_id(self._tenant_id, pipeline_id))

    def _schedule(self, pipeline_id: str, settings: ScheduleSettings) -> Schedule:
        schedule_id = pipeline_schedule_id(self._tenant_id, pipeline_id)
        start = PipelineRunInput(
            tenant_id=self._tenant_id,
            run_id="",
            pipeline_id=pipeline_id,
            version=settings.version or 0,
            definition={},
            input=settings.input,
            schedule_id=schedule_id,
        )
        return Schedule(
            action=ScheduleActionStartWorkflow(
                WORKFLOW_NAME,
                start,
                id=schedule_id,
                task_queue=self._task_queue,
                memo={"cron": settings.cron},
                typed_search_attributes=search_attributes(self._tenant_id, pipeline_id),
                priority=Priority(fairness_key=self._tenant_id),
            ),
            spec=ScheduleSpec(cron_expressions=[settings.cron]),
            policy=SchedulePolicy(
                overlap=OVERLAP[settings.overlap], catchup_window=timedelta(seconds=settings.catchup_window_s)
            ),
            state=ScheduleState(paused=settings.paused),
        )

    async def put(self, pipeline_id: str, settings: ScheduleSettings) -> None:
        """Create the pipeline's schedule, or replace the one it has."""
        await ensure_schedule(
            self._client,
            pipeline_schedule_id(self._tenant_id, pipeline_id),
            self._schedule(pipeline_id, settings),
            search_attributes=search_attributes(self._tenant_id, pipeline_id),
        )

    async def get(self, pipeline_id: str) -> ScheduleView | None:
        """The pipeline's schedule, or ``None`` when it has none."""
        description = await describe_schedule(self._client, pipeline_schedule_id(self._tenant_id, pipeline_id))
        if description is None:
            return None
        schedule, info = description.schedule, description.info
        action = cast(ScheduleActionStartWorkflow, schedule.action)
        converter = self._client.data_converter
        start: PipelineRunInput = (await converter.decode(cast(list[Payload], list(action.args)), [PipelineRunInput]))[
            0
        ]
        memo = cast(dict[str, Payload], dict(action.memo or {}))
        cron = (await converter.decode([memo["cron"]]))[0] if "cron" in memo else ""
        overlap = next((name for name, policy in OVERLAP.items() if policy == schedule.policy.overlap), "skip")
        window = schedule.policy.catchup_window
        return ScheduleView(
            id=description.id,
            pipeline_id=pipeline_id,
            settings=ScheduleSettings(
                cron=str(cron),
                input=start.input,
                overlap=overlap,
                paused=schedule.state.paused,
                catchup_window_s=int(window.total_seconds()) if window else DEFAULT_CATCHUP_WINDOW_S,
                version=start.version or None,
            ),
            next_action_times=list(info.next_action_times),
            recent_actions=recent_starts(info, scheduled_run_id),
            created_at=info.created_at,
            updated_at=info.last_updated_at,
        )

    async def delete(self, pipeline_id: str) -> bool:
        """Delete the pipeline's schedule; ``False`` when it had none."""
        return await delete_schedule(self._client, pipeline_schedule_id(self._tenant_id, pipeline_id))

    async def backfill(self, pipeline_id: str, start: datetime, end: datetime) -> bool:
        """Take the schedule's actions for the times in ``(start, end]`` now; ``False`` when it has no schedule."""
        try:
            await self._handle(pipeline_id).backfill(ScheduleBackfill(start_at=start, end_at=end))
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True
