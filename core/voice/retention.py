"""The Schedule of ``VoiceRetentionWorkflow``: recordings past ``voice_audio_retention_s`` are deleted."""

from __future__ import annotations

from datetime import timedelta

import structlog
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from core.contracts.voice import VOICE_RETENTION_WORKFLOW, RetentionInput
from core.schedules import delete_schedule, ensure_schedule
from core.settings import Settings

log = structlog.get_logger(__name__)

SCHEDULE_ID = "platform:voice-audio-retention"
WORKFLOW_ID = "platform:voice-audio-retention"


def retention_schedule(settings: Settings) -> Schedule:
    """Every ``voice_retention_interval_s``, one pass over every tenant's recordings; passes never overlap."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            VOICE_RETENTION_WORKFLOW,
            RetentionInput(retention_s=settings.voice_audio_retention_s),
            id=WORKFLOW_ID,
            task_queue=settings.voice_task_queue,
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.voice_retention_interval_s))]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_retention_schedule(client: Client, settings: Settings) -> None:
    """Create the schedule or bring it to the settings; with retention 0 (keep until erased) remove it."""
    if settings.voice_audio_retention_s <= 0:
        if await delete_schedule(client, SCHEDULE_ID):
            log.info("voice recording retention off: schedule removed")
        return
    if await ensure_schedule(client, SCHEDULE_ID, retention_schedule(settings)):
        log.info("voice recording retention scheduled", every_s=settings.voice_retention_interval_s)
