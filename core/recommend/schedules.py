"""Recommendation schedules: one Temporal Schedule per tenant, ``{tenant}:recommend-schedule:mining``.

Each fire starts a ``RecommendationWorkflow`` pass on the optimizer queue (id: the schedule
id, to which Temporal appends the fire time); a fire while the previous pass runs is skipped.
A refresh starts ``{tenant}:recommend:refresh`` instead: one on-demand pass per tenant at a
time. Schedules are ensured when a worker of the optimizer queue starts (every tenant),
when a tenant is created over the API, and on a tenant's first recommendations request in
each API process; ensuring is idempotent (an existing schedule is brought to the settings).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)
from temporalio.common import Priority, SearchAttributePair, TypedSearchAttributes

from core.contracts.recommend import WORKFLOW_NAME, RecommendationInput
from core.ids import RUN_KIND, TENANT_ID, workflow_id
from core.schedules import ensure_schedule
from core.settings import Settings

log = structlog.get_logger(__name__)

RUN_KIND_RECOMMEND = "recommend"
CATCHUP_WINDOW = timedelta(minutes=5)
PAGE = 500


def recommendation_schedule_id(tenant_id: str) -> str:
    """The id of the tenant's recommendation schedule."""
    return workflow_id(tenant_id, "recommend-schedule", "mining")


def refresh_workflow_id(tenant_id: str) -> str:
    """The id of the tenant's on-demand pass (one at a time)."""
    return workflow_id(tenant_id, "recommend", "refresh")


def search_attributes(tenant_id: str) -> TypedSearchAttributes:
    """``TenantId`` and ``RunKind=recommend``."""
    return TypedSearchAttributes(
        [SearchAttributePair(TENANT_ID, tenant_id), SearchAttributePair(RUN_KIND, RUN_KIND_RECOMMEND)]
    )


def pass_input(settings: Settings, tenant_id: str, trigger: str) -> RecommendationInput:
    """The input of one pass with the configured window."""
    return RecommendationInput(
        tenant_id=tenant_id,
        window_days=settings.recommend_window_days,
        trigger=trigger,
        heartbeat_timeout_s=max(settings.activity_heartbeat_timeout_s, 30.0),
    )


def recommendation_schedule(settings: Settings, tenant_id: str) -> Schedule:
    """Every ``recommend_interval_s``, one pass of the tenant; passes never overlap."""
    attributes = search_attributes(tenant_id)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WORKFLOW_NAME,
            pass_input(settings, tenant_id, "schedule"),
            id=recommendation_schedule_id(tenant_id),
            task_queue=settings.optimizer_task_queue,
            typed_search_attributes=attributes,
            priority=Priority(fairness_key=tenant_id),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.recommend_interval_s))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=CATCHUP_WINDOW),
    )


async def ensure_tenant_schedule(client: Client, settings: Settings, tenant_id: str) -> bool:
    """Create the tenant's schedule or bring it to the settings; whether it was created."""
    schedule_id = recommendation_schedule_id(tenant_id)
    schedule = recommendation_schedule(settings, tenant_id)
    return await ensure_schedule(client, schedule_id, schedule, search_attributes=search_attributes(tenant_id))


async def tenant_ids(engine: AsyncEngine) -> AsyncIterator[str]:
    """Every tenant id, in pages."""
    after = ""
    while True:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT id FROM tenant WHERE id > :after ORDER BY id LIMIT :n"), {"after": after, "n": PAGE}
            )
            page = [row.id for row in rows]
        for tenant_id in page:
            yield tenant_id
        if len(page) < PAGE:
            return
        after = page[-1]


async def ensure_all_schedules(client: Client, engine: AsyncEngine, settings: Settings) -> int:
    """Ensure every tenant's schedule; how many were created."""
    created = 0
    async for tenant_id in tenant_ids(engine):
        created += int(await ensure_tenant_schedule(client, settings, tenant_id))
    if created:
        log.info("recommendation schedules created", created=created)
    return created
