"""Activities of webhook delivery: enqueue an event's deliveries, deliver one, give up on one.

``deliver`` is safe to retry: a delivery already marked ``delivered`` (or ``dropped``)
is not sent again, the body (and the event id in it) is the same on every attempt,
and each attempt is counted in the ``webhook_delivery`` row.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.crypto import DecryptionError, Keyring
from core.db.engine import make_sessionmaker
from core.db.models import Tenant
from core.egress import EgressDenied, EgressError, GuardedResponse, guarded_request
from core.webhooks.contracts import (
    DELIVERY_DELIVERED,
    DELIVERY_DROPPED,
    DELIVERY_FAILED,
    DELIVERY_PENDING,
    EVENT_TYPES,
    WEBHOOK_EGRESS_DENIED,
    WEBHOOK_GONE,
    WEBHOOK_REJECTED,
    WEBHOOK_UNREACHABLE,
    DeliverWebhookInput,
    DeliveryOutcome,
    EnqueueWebhookDeliveriesInput,
    MarkDeliveryFailedInput,
)
from core.webhooks.events import event_body, event_id_for
from core.webhooks.signing import SIGNATURE_HEADER, sign
from core.webhooks.store import WebhookStore

log = structlog.get_logger(__name__)

DELIVERY_TIMEOUT_S = 10.0
_RETRYABLE_4XX = frozenset({408, 429})
_MAX_RETRY_AFTER_S = 60


def _retry_after(response: GuardedResponse) -> timedelta | None:
    value = response.headers.get("retry-after", "").strip()
    if not value.isdigit():
        return None
    return timedelta(seconds=min(int(value), _MAX_RETRY_AFTER_S))


def _excerpt(response: GuardedResponse) -> str:
    text = response.text().strip().replace("\n", " ")
    return f"HTTP {response.status}" + (f": {text[:300]}" if text else "")


class WebhookActivities:
    """Webhook activities with their dependencies injected by the worker."""

    def __init__(
        self,
        sessions: AsyncEngine | async_sessionmaker[AsyncSession],
        keyring: Keyring,
        platform_allowlist: Sequence[str] = (),
        *,
        timeout_s: float = DELIVERY_TIMEOUT_S,
        inflight_limit: int | None = None,
    ):
        """Build the activities.

        Args:
            sessions: Engine or session factory of the app database.
            keyring: Decrypts webhook secrets.
            platform_allowlist: Entries of ``AIMPACT_EGRESS_ALLOWLIST``.
            timeout_s: Timeout of one delivery attempt.
            inflight_limit: Pending deliveries per tenant beyond which ``enqueue`` records new ones as dropped.
        """
        self._sessions = make_sessionmaker(sessions) if isinstance(sessions, AsyncEngine) else sessions
        self._keyring = keyring
        self._platform = list(platform_allowlist)
        self._timeout_s = timeout_s
        self._inflight_limit = inflight_limit

    @activity.defn(name="webhooks.enqueue")
    async def enqueue(self, inp: EnqueueWebhookDeliveriesInput) -> list[str]:
        """Delivery ids to start for one run event, one per subscribed live webhook (idempotent; not dropped ones)."""
        if inp.event_type not in EVENT_TYPES:
            raise ApplicationError(f"unknown event type {inp.event_type!r}", type="InvalidEvent", non_retryable=True)
        event_id = event_id_for(inp.run_id, inp.event_type, inp.event_key)
        async with self._sessions() as session:
            ids = await WebhookStore(session, inp.tenant_id).enqueue(
                event_id, inp.event_type, inp.data, inflight_limit=self._inflight_limit
            )
            await session.commit()
        return ids

    @activity.defn(name="webhooks.deliver")
    async def deliver(self, inp: DeliverWebhookInput) -> DeliveryOutcome:
        """POST the event, signed; raise to retry on 5xx/408/429/network errors."""
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, delivery_id=inp.delivery_id)
        async with self._sessions() as session:
            store = WebhookStore(session, inp.tenant_id, self._keyring)
            delivery = await store.delivery(inp.delivery_id)
            if delivery is None or (inp.webhook_id and delivery.webhook_id != inp.webhook_id):
                raise ApplicationError(f"delivery {inp.delivery_id} not found", type=WEBHOOK_GONE, non_retryable=True)
            if delivery.status in (DELIVERY_DELIVERED, DELIVERY_DROPPED):
                return DeliveryOutcome(inp.delivery_id, delivery.status, delivery.attempts, delivery.last_status_code)
            webhook = await store.get(delivery.webhook_id)
            if webhook is None:
                raise ApplicationError(
                    f"webhook {delivery.webhook_id} was deleted", type=WEBHOOK_GONE, non_retryable=True
                )
            try:
                secret = store.secret_of(webhook)
            except DecryptionError as exc:
                raise ApplicationError(
                    f"webhook secret cannot be decrypted: {exc}", type=WEBHOOK_GONE, non_retryable=True
                ) from None
            tenant = await session.get(Tenant, inp.tenant_id)
            allowlist = self._platform + list(tenant.egress_allowlist if tenant else [])
            url, payload, attempts = webhook.url, delivery.payload, delivery.attempts

        body = event_body(payload)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "AImPact-Webhooks/1",
            SIGNATURE_HEADER: sign(secret, body, int(time.time())),
            "X-AImPact-Event": str(payload.get("type", "")),
            "X-AImPact-Event-Id": str(payload.get("id", "")),
            "X-AImPact-Delivery": inp.delivery_id,
        }
        response: GuardedResponse | None = None
        failure: ApplicationError | None = None
        try:
            response = await guarded_request(
                "POST",
                url,
                allowlist=allowlist,
                headers=headers,
                content=body,
                timeout_s=self._timeout_s,
                max_response_bytes=4096,
                follow_redirects=False,
            )
        except EgressDenied as exc:
            failure = ApplicationError(str(exc), type=WEBHOOK_EGRESS_DENIED, non_retryable=True)
        except EgressError as exc:
            failure = ApplicationError(str(exc), type=WEBHOOK_UNREACHABLE)

        status_code = response.status if response is not None else None
        if response is not None:
            if 200 <= response.status < 300:
                pass
            elif response.status in _RETRYABLE_4XX or response.status >= 500:
                failure = ApplicationError(
                    _excerpt(response), type=WEBHOOK_UNREACHABLE, next_retry_delay=_retry_after(response)
                )
            else:
                note = " (redirects are not followed)" if 300 <= response.status < 400 else ""
                failure = ApplicationError(_excerpt(response) + note, type=WEBHOOK_REJECTED, non_retryable=True)

        if failure is None:
            status = DELIVERY_DELIVERED
        else:
            status = DELIVERY_FAILED if failure.non_retryable else DELIVERY_PENDING
        async with self._sessions() as session:
            await WebhookStore(session, inp.tenant_id).record_attempt(
                inp.delivery_id,
                status=status,
                status_code=status_code,
                error=failure.message if failure is not None else None,
            )
            await session.commit()
        log.info(
            "webhook delivery attempt",
            status=status,
            status_code=status_code,
            attempt=activity.info().attempt,
        )
        if failure is not None:
            raise failure
        return DeliveryOutcome(inp.delivery_id, status, attempts + 1, status_code)

    @activity.defn(name="webhooks.mark_failed")
    async def mark_failed(self, inp: MarkDeliveryFailedInput) -> None:
        """Record that the delivery gave up (no-op when it was delivered)."""
        async with self._sessions() as session:
            await WebhookStore(session, inp.tenant_id).mark_failed(inp.delivery_id, inp.error)
            await session.commit()
