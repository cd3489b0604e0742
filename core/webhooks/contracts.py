"""Event types, delivery statuses, error types and the dataclasses of the delivery workflow and activities."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

EventType = Literal[
    "run.completed",
    "run.failed",
    "run.cancelled",
    "run.waiting_approval",
    "pipeline_run.completed",
    "pipeline_run.failed",
    "pipeline_run.waiting_approval",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)

DELIVERY_PENDING = "pending"
DELIVERY_DELIVERED = "delivered"
DELIVERY_FAILED = "failed"
DELIVERY_DROPPED = "dropped"
"""Not sent: the tenant had too many deliveries in flight when the event happened (final)."""

WEBHOOK_REJECTED = "WebhookRejected"
"""The receiver answered 4xx (not 408/429) or a redirect: not retried."""
WEBHOOK_UNREACHABLE = "WebhookUnreachable"
"""5xx, 408, 429, timeout or network error: retried with backoff."""
WEBHOOK_EGRESS_DENIED = "WebhookEgressDenied"
"""The URL points inside the platform and is not allowlisted: not retried."""
WEBHOOK_GONE = "WebhookGone"
"""The webhook or delivery no longer exists: not retried."""
WEBHOOK_DELIVERY_FAILED = "WebhookDeliveryFailed"
"""The delivery workflow gave up."""


@dataclass
class WebhookDeliveryInput:
    """Input of ``WebhookDeliveryWorkflow``.

    ``webhook_id`` may be ``""``: the delivery row names its webhook (``webhooks.enqueue``
    returns delivery ids only). Tests shorten ``retry_initial_interval_s``.
    """

    tenant_id: str
    webhook_id: str
    delivery_id: str
    retry_initial_interval_s: float = 1.0
    retry_maximum_interval_s: float = 60.0
    max_attempts: int = 8


@dataclass
class DeliverWebhookInput:
    """Input of the ``webhooks.deliver`` activity (``webhook_id`` ``""``: the delivery row's)."""

    tenant_id: str
    webhook_id: str
    delivery_id: str


@dataclass
class DeliveryOutcome:
    """What the delivery came to."""

    delivery_id: str
    status: str
    attempts: int = 0
    last_status_code: int | None = None


@dataclass
class MarkDeliveryFailedInput:
    """Input of the ``webhooks.mark_failed`` activity."""

    tenant_id: str
    delivery_id: str
    error: str = ""


@dataclass
class EnqueueWebhookDeliveriesInput:
    """Input of the ``webhooks.enqueue`` activity: one run event."""

    tenant_id: str
    run_id: str
    event_type: str
    data: dict[str, Any] = field(default_factory=dict)
    event_key: str = ""
    """Distinguishes repeatable events of one run (e.g. the approval step id)."""
