"""Bodies of ``/v1/pipelines/{id}/schedule``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from core.pipelines.schedules import DEFAULT_CATCHUP_WINDOW_S
from core.validation import CleanModel

Overlap = Literal["skip", "buffer_one", "buffer_all", "cancel_other", "allow_all"]
CronExpression = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        description="Five fields, UTC: `minute hour day-of-month month day-of-week` "
        "(`*`, `N`, `N-M`, `*/S`, lists; month and weekday names).",
    ),
]
"""A schedule's cron (pipelines' and optimizer schedules'); ``core.pipelines.cron`` checks its syntax."""


class PipelineScheduleSet(CleanModel):
    """``PUT /v1/pipelines/{id}/schedule``: create or replace the pipeline's schedule."""

    cron: CronExpression
    input: Any = Field(
        default=None,
        description="The runs' input: any JSON (strings without NUL), checked against the version's `inputs` schema.",
    )
    overlap: Overlap = Field(default="skip", description="What a fire does while the previous run still runs.")
    paused: bool = False
    catchup_window_s: int = Field(
        default=DEFAULT_CATCHUP_WINDOW_S,
        ge=10,
        le=366 * 86_400,
        description="How late a missed fire (Temporal unavailable) may still start.",
    )
    version: int | None = Field(
        default=None, ge=1, description="Pin a version (default: the current one at each fire)."
    )


class PipelineScheduleBackfill(CleanModel):
    """``POST /v1/pipelines/{id}/schedule/backfill``: take the fires between ``from`` and ``to`` now."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: AwareDatetime = Field(alias="from", description="Exclusive start (ISO 8601 with an offset).")
    to: AwareDatetime = Field(description="Inclusive end: after `from`, at most 31 days and 100 fires later.")


class ScheduledActionPublic(BaseModel):
    """A recent fire of the schedule and the run it started (a pipeline run or an optimizer run)."""

    scheduled_at: datetime
    started_at: datetime
    run_id: str
    workflow_id: str


class PipelineSchedulePublic(BaseModel):
    """A pipeline's schedule."""

    id: str
    pipeline_id: str
    cron: str
    input: Any
    overlap: str
    paused: bool
    catchup_window_s: int
    version: int | None
    next_action_times: list[datetime]
    recent_actions: list[ScheduledActionPublic]
    created_at: datetime
    updated_at: datetime | None
