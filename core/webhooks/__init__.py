"""Webhooks: signed deliveries of run events to tenants' receivers.

- :mod:`core.webhooks.signing`: signing secrets and the ``X-AImPact-Signature`` header.
- :mod:`core.webhooks.contracts`: event types, delivery statuses, error types, workflow and activity inputs.
- :mod:`core.webhooks.events`: event ids, the delivered document and its bytes, delivery workflow ids.
- :mod:`core.webhooks.store`: :class:`WebhookStore` (rows, enqueueing, per-tenant limits).

The names below are re-exported so ``from core.webhooks import X`` keeps working.
"""

from core.webhooks.contracts import (
    DELIVERY_DELIVERED,
    DELIVERY_DROPPED,
    DELIVERY_FAILED,
    DELIVERY_PENDING,
    EVENT_TYPES,
    WEBHOOK_DELIVERY_FAILED,
    WEBHOOK_EGRESS_DENIED,
    WEBHOOK_GONE,
    WEBHOOK_REJECTED,
    WEBHOOK_UNREACHABLE,
    DeliverWebhookInput,
    DeliveryOutcome,
    EnqueueWebhookDeliveriesInput,
    EventType,
    MarkDeliveryFailedInput,
    WebhookDeliveryInput,
)
from core.webhooks.events import delivery_workflow_id, event_body, event_id_for, event_payload
from core.webhooks.signing import SECRET_PREFIX, SIGNATURE_HEADER, generate_secret, secret_aad, sign, verify
from core.webhooks.store import INFLIGHT_HORIZON, WebhookLimitReached, WebhookStore, has_live_webhooks

__all__ = [
    "DELIVERY_DELIVERED",
    "DELIVERY_DROPPED",
    "DELIVERY_FAILED",
    "DELIVERY_PENDING",
    "EVENT_TYPES",
    "INFLIGHT_HORIZON",
    "SECRET_PREFIX",
    "SIGNATURE_HEADER",
    "WEBHOOK_DELIVERY_FAILED",
    "WEBHOOK_EGRESS_DENIED",
    "WEBHOOK_GONE",
    "WEBHOOK_REJECTED",
    "WEBHOOK_UNREACHABLE",
    "DeliverWebhookInput",
    "DeliveryOutcome",
    "EnqueueWebhookDeliveriesInput",
    "EventType",
    "MarkDeliveryFailedInput",
    "WebhookDeliveryInput",
    "WebhookLimitReached",
    "WebhookStore",
    "delivery_workflow_id",
    "event_body",
    "event_id_for",
    "event_payload",
    "generate_secret",
    "has_live_webhooks",
    "secret_aad",
    "sign",
    "verify",
]
