"""Webhooks: signing, secrets, event payloads, and the tenant-scoped store.

Every delivery is a ``POST`` of the event as JSON with::

    X-AImPact-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

The HMAC key is the whole secret string (``whsec_…``) as UTF-8 and ``<body>`` is
the raw request body. Receivers recompute the HMAC, compare in constant time and
refuse timestamps older than a few minutes (:py:func:`verify` does exactly that).

An event is ``{"id", "type", "created_at" (RFC 3339), "data"}``; ``id`` is stable
across retries, so receivers can drop duplicates.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.crypto import Keyring
from core.db.models import Webhook, WebhookDelivery, utcnow
from core.db.repos import decode_cursor, encode_cursor
from core.ids import new_id, workflow_id

__all__ = [
    "EVENT_TYPES",
    "SIGNATURE_HEADER",
    "DeliverWebhookInput",
    "DeliveryOutcome",
    "EnqueueWebhookDeliveriesInput",
    "EventType",
    "MarkDeliveryFailedInput",
    "WebhookDeliveryInput",
    "WebhookStore",
    "delivery_workflow_id",
    "event_body",
    "event_id_for",
    "event_payload",
    "generate_secret",
    "secret_aad",
    "sign",
    "verify",
]

EventType = Literal["run.completed", "run.failed", "run.waiting_approval"]
EVENT_TYPES: tuple[str, ...] = ("run.completed", "run.failed", "run.waiting_approval")
SIGNATURE_HEADER = "X-AImPact-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a public prefix, not a secret

DELIVERY_PENDING = "pending"
DELIVERY_DELIVERED = "delivered"
DELIVERY_FAILED = "failed"

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


# --- signing -----------------------------------------------------------------------------------


def generate_secret() -> str:
    """A new signing secret: ``whsec_`` + 32 random bytes, URL-safe base64 without padding."""
    return SECRET_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def _mac(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-AImPact-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},v1={_mac(secret, body, timestamp)}"


def verify(secret: str, body: bytes, header: str, tolerance_s: int = 300, *, now: float | None = None) -> bool:
    """Whether ``header`` is a valid signature of ``body`` made within ``tolerance_s`` of ``now``.

    Several ``v1=`` values are accepted (any may match), so a sender can sign with
    an old and a new secret while a receiver rotates.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = _mac(secret, body, timestamp)
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    return matched


# --- events ------------------------------------------------------------------------------------


def event_id_for(run_id: str, event_type: str, key: str = "") -> str:
    """The event id: ``"<run id>:<type>"`` (``:<key>`` added for repeatable events such as approvals)."""
    return f"{run_id}:{event_type}" + (f":{key}" if key else "")


def event_payload(event_id: str, event_type: str, data: dict[str, Any], created_at: datetime) -> dict[str, Any]:
    """The JSON document delivered for one event."""
    return {
        "id": event_id,
        "type": event_type,
        "created_at": created_at.isoformat().replace("+00:00", "Z"),
        "data": data,
    }


def event_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()


def secret_aad(tenant_id: str, webhook_id: str) -> bytes:
    """Associated data binding a webhook secret's ciphertext to its tenant and webhook."""
    return f"{tenant_id}:webhook:{webhook_id}".encode()


def delivery_workflow_id(tenant_id: str, delivery_id: str) -> str:
    """Workflow id of the delivery of one event to one webhook."""
    return workflow_id(tenant_id, "webhook", delivery_id)


# --- workflow and activity contracts -------------------------------------------------------------


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


# --- store -------------------------------------------------------------------------------------

_delivery = WebhookDelivery.__table__  # type: ignore[attr-defined]


async def has_live_webhooks(engine: AsyncEngine, tenant_id: str) -> bool:
    """Whether the tenant has any live (not deleted) webhook: one light query before any delivery work."""
    _webhook = Webhook.__table__  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        found = await conn.scalar(
            sa_select(_webhook.c.id).where(_webhook.c.tenant_id == tenant_id, _webhook.c.deleted_at.is_(None)).limit(1)
        )
    return found is not None


class WebhookStore:
    """Webhooks and deliveries of one tenant; the caller commits."""

    def __init__(self, session: AsyncSession, tenant_id: str, keyring: Keyring | None = None):
        if not tenant_id:
            raise ValueError("a tenant-scoped store needs a tenant id")
        self._session = session
        self._tenant_id = tenant_id
        self._keyring = keyring

    def _ring(self) -> Keyring:
        if self._keyring is None:
            raise ValueError("this WebhookStore has no keyring")
        return self._keyring

    async def create(self, url: str, events: Sequence[str]) -> tuple[Webhook, str]:
        """A new webhook and its plaintext secret (shown once; stored encrypted)."""
        webhook_id = new_id("whk")
        secret = generate_secret()
        row = Webhook(
            id=webhook_id,
            tenant_id=self._tenant_id,
            url=url,
            events=list(dict.fromkeys(events)),
            secret_ciphertext=self._ring().encrypt(secret.encode(), aad=secret_aad(self._tenant_id, webhook_id)),
        )
        self._session.add(row)
        await self._session.flush()
        return row, secret

    async def get(self, webhook_id: str, *, include_deleted: bool = False) -> Webhook | None:
        """The tenant's webhook ``webhook_id`` (live unless ``include_deleted``)."""
        query = select(Webhook).where(Webhook.id == webhook_id, Webhook.tenant_id == self._tenant_id)
        if not include_deleted:
            query = query.where(col(Webhook.deleted_at).is_(None))
        return (await self._session.exec(query)).first()

    def secret_of(self, webhook: Webhook) -> str:
        """The plaintext signing secret of ``webhook``."""
        if webhook.tenant_id != self._tenant_id:
            raise ValueError("webhook of another tenant")
        return self._ring().decrypt(webhook.secret_ciphertext, aad=secret_aad(self._tenant_id, webhook.id)).decode()

    async def list(self, *, limit: int, cursor: str | None) -> tuple[Sequence[Webhook], str | None]:
        """A page of live webhooks, newest first."""
        query = select(Webhook).where(Webhook.tenant_id == self._tenant_id, col(Webhook.deleted_at).is_(None))
        query = query.order_by(col(Webhook.created_at).desc(), col(Webhook.id).desc())
        if cursor is not None:
            created_at, row_id = decode_cursor(cursor)
            query = query.where(
                or_(
                    col(Webhook.created_at) < created_at,
                    and_(col(Webhook.created_at) == created_at, col(Webhook.id) < row_id),
                )
            )
        rows = (await self._session.exec(query.limit(limit + 1))).all()
        return _page(rows, limit)

    async def delete(self, webhook_id: str) -> bool:
        """Stop a webhook (soft delete: its delivery log stays); whether it was live."""
        result = await self._session.exec(
            update(Webhook)
            .where(
                col(Webhook.id) == webhook_id,
                col(Webhook.tenant_id) == self._tenant_id,
                col(Webhook.deleted_at).is_(None),
            )
            .values(deleted_at=utcnow())
        )
        return bool(result.rowcount)

    async def subscribed(self, event_type: str) -> Sequence[Webhook]:
        """Live webhooks listening to ``event_type``."""
        rows = (
            await self._session.exec(
                select(Webhook)
                .where(Webhook.tenant_id == self._tenant_id, col(Webhook.deleted_at).is_(None))
                .order_by(col(Webhook.created_at), col(Webhook.id))
            )
        ).all()
        return [row for row in rows if event_type in row.events]

    async def enqueue(self, event_id: str, event_type: str, data: dict[str, Any]) -> builtins.list[str]:
        """Delivery ids of ``event_id`` for every subscribed webhook, inserting rows not there yet."""
        webhooks = await self.subscribed(event_type)
        if not webhooks:
            return []
        now = utcnow()
        payload = event_payload(event_id, event_type, data, now)
        for webhook in webhooks:
            await self._session.exec(
                insert(_delivery)
                .values(
                    id=new_id("dlv"),
                    tenant_id=self._tenant_id,
                    webhook_id=webhook.id,
                    event_id=event_id,
                    event_type=event_type,
                    status=DELIVERY_PENDING,
                    attempts=0,
                    payload=payload,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["webhook_id", "event_id"])
            )
        rows = (
            await self._session.exec(
                select(WebhookDelivery).where(
                    WebhookDelivery.tenant_id == self._tenant_id,
                    WebhookDelivery.event_id == event_id,
                    col(WebhookDelivery.webhook_id).in_([w.id for w in webhooks]),
                )
            )
        ).all()
        by_webhook = {row.webhook_id: row.id for row in rows}
        return [by_webhook[w.id] for w in webhooks if w.id in by_webhook]

    async def delivery(self, delivery_id: str) -> WebhookDelivery | None:
        """One delivery of this tenant."""
        result = await self._session.exec(
            select(WebhookDelivery).where(
                WebhookDelivery.id == delivery_id, WebhookDelivery.tenant_id == self._tenant_id
            )
        )
        return result.first()

    async def deliveries(
        self, webhook_id: str, *, limit: int, cursor: str | None
    ) -> tuple[Sequence[WebhookDelivery], str | None]:
        """A page of a webhook's deliveries, newest first."""
        query = select(WebhookDelivery).where(
            WebhookDelivery.tenant_id == self._tenant_id, WebhookDelivery.webhook_id == webhook_id
        )
        query = query.order_by(col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id).desc())
        if cursor is not None:
            created_at, row_id = decode_cursor(cursor)
            query = query.where(
                or_(
                    col(WebhookDelivery.created_at) < created_at,
                    and_(col(WebhookDelivery.created_at) == created_at, col(WebhookDelivery.id) < row_id),
                )
            )
        rows = (await self._session.exec(query.limit(limit + 1))).all()
        return _page(rows, limit)

    async def record_attempt(
        self,
        delivery_id: str,
        *,
        status: str,
        status_code: int | None,
        error: str | None,
    ) -> None:
        """Count one attempt and its result (a delivered row is never changed again)."""
        now = utcnow()
        values: dict[str, Any] = {
            "attempts": col(WebhookDelivery.attempts) + 1,
            "status": status,
            "last_status_code": status_code,
            "last_error": error[:2000] if error else None,
            "updated_at": now,
        }
        if status == DELIVERY_DELIVERED:
            values["delivered_at"] = now
        await self._session.exec(
            update(WebhookDelivery)
            .where(
                col(WebhookDelivery.id) == delivery_id,
                col(WebhookDelivery.tenant_id) == self._tenant_id,
                col(WebhookDelivery.status) != DELIVERY_DELIVERED,
            )
            .values(**values)
        )

    async def mark_failed(self, delivery_id: str, error: str) -> None:
        """Give up on a delivery (unless it was delivered); keeps the last attempt's error if any."""
        row = await self.delivery(delivery_id)
        if row is None or row.status == DELIVERY_DELIVERED:
            return
        row.status = DELIVERY_FAILED
        row.last_error = row.last_error or (error[:2000] if error else None)
        row.updated_at = utcnow()
        self._session.add(row)


def _page(rows: Sequence[Any], limit: int) -> tuple[Sequence[Any], str | None]:
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(last.created_at, last.id)
