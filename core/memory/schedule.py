"""The Temporal Schedule that runs memory consolidation over every tenant."""

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

from core.contracts.memory import ConsolidationInput
from core.schedules import ensure_schedule
from core.settings import Settings

log = structlog.get_logger(__name__)

SCHEDULE_ID = "platform:memory-consolidation"
WORKFLOW_ID = "platform:memory-consolidation"
WORKFLOW_TYPE = "MemoryConsolidationWorkflow"
DAILY_DECAY = 0.9


def consolidation_schedule(settings: Settings) -> Schedule:
    """Every ``memory_consolidation_interval_s``, one pass over all tenants; passes never overlap."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WORKFLOW_TYPE,
            # unused memories lose 10% of their importance per day, however often the pass runs
            ConsolidationInput(decay_factor=DAILY_DECAY ** (settings.memory_consolidation_interval_s / 86_400)),
            id=WORKFLOW_ID,
            task_queue=settings.agents_task_queue,
        ),
        spec=ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.memory_consolidation_interval_s))]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_consolidation_schedule(client: Client, settings: Settings) -> None:
    """Create the schedule, or bring an existing one to the configured interval (idempotent)."""
    if await ensure_schedule(client, SCHEDULE_ID, consolidation_schedule(settings)):
        log.info("memory consolidation scheduled", every_s=settings.memory_consolidation_interval_s)
