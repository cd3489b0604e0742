"""Webhook deliveries: signed, egress-guarded, at most ``webhook_inflight_per_tenant`` pending per tenant."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from activities.agent_run import EventNotifier
from activities.webhooks import WebhookActivities
from core.db.engine import make_sessionmaker
from core.settings import Settings
from core.webhooks.store import WebhookStore, has_live_webhooks
from workers.deps import WorkerDeps
from workers.registry import Slice
from workflows.webhook_delivery import WebhookDeliveryWorkflow, webhook_workflows_and_activities


def build_webhook_activities(deps: WorkerDeps) -> WebhookActivities:
    """The delivery activities on the worker's database, keyring and egress allowlist."""
    return WebhookActivities(
        deps.sessions,
        deps.keyring,
        deps.platform_allowlist,
        inflight_limit=deps.settings.webhook_inflight_per_tenant,
    )


def webhook_notifier(engine: AsyncEngine, settings: Settings) -> EventNotifier:
    """Queues an event's deliveries (at most ``webhook_inflight_per_tenant`` pending per tenant); their ids to start."""
    sessions = make_sessionmaker(engine)

    async def notify(tenant_id: str, event_id: str, event_type: str, data: dict[str, Any]) -> list[str]:
        if not await has_live_webhooks(engine, tenant_id):
            return []
        async with sessions() as session:
            ids = await WebhookStore(session, tenant_id).enqueue(
                event_id, event_type, data, inflight_limit=settings.webhook_inflight_per_tenant
            )
            await session.commit()
        return list(ids)

    return notify


def _activities(deps: WorkerDeps) -> Sequence[Callable[..., Any]]:
    _, activities = webhook_workflows_and_activities(build_webhook_activities(deps))
    return activities


SLICE = Slice(workflows=[WebhookDeliveryWorkflow], activities=_activities)
