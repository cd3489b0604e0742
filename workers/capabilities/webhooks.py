"""Webhook deliveries: signed, egress-guarded, at most ``webhook_inflight_per_tenant`` pending per tenant."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from activities.webhooks import WebhookActivities
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


def _activities(deps: WorkerDeps) -> Sequence[Callable[..., Any]]:
    _, activities = webhook_workflows_and_activities(build_webhook_activities(deps))
    return activities


SLICE = Slice(workflows=[WebhookDeliveryWorkflow], activities=_activities)
