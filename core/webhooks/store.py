"""The tenant-scoped store of webhooks and their deliveries, and the per-tenant limits.

Per-tenant limits keep one tenant's webhooks from flooding the platform: at most
``webhooks_per_tenant`` live webhooks (:py:class:`WebhookLimitReached`), and at most
``webhook_inflight_per_tenant`` deliveries in flight (``pending``). An event that
would go beyond the second is still logged, one row per webhook, with status
``dropped`` and the reason in ``last_error``; no delivery workflow is started for it.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.crypto import Keyring
from core.db.models import Webhook, WebhookDelivery, utcnow
from core.db.repos import Keyset, newest_first
from core.ids import new_id
from core.telemetry import metrics
from core.webhooks.contracts import DELIVERY_DELIVERED, DELIVERY_DROPPED, DELIVERY_FAILED, DELIVERY_PENDING
from core.webhooks.events import event_payload
from core.webhooks.signing import generate_secret, secret_aad

INFLIGHT_HORIZON = timedelta(hours=1)
"""Pending deliveries older than this no longer count as in flight (a delivery gives up within minutes)."""
_LOCK_WEBHOOKS = 0x5748_0001
_LOCK_INFLIGHT = 0x5748_0002


class WebhookLimitReached(Exception):  # noqa: N818 - a limit, reported as 409
    """The tenant already has as many live webhooks as it may."""

    def __init__(self, limit: int):
        super().__init__(f"a tenant may have at most {limit} webhooks; delete one first")
        self.limit = limit


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

    async def _lock(self, kind: int) -> None:
        """Serialise one kind of limit check per tenant until the transaction ends."""
        await self._session.exec(select(func.pg_advisory_xact_lock(kind, func.hashtext(self._tenant_id))))

    async def live_count(self) -> int:
        """How many live (not deleted) webhooks the tenant has."""
        query = select(func.count()).where(col(Webhook.tenant_id) == self._tenant_id, col(Webhook.deleted_at).is_(None))
        return int((await self._session.exec(query)).one())

    async def create(self, url: str, events: Sequence[str], *, limit: int | None = None) -> tuple[Webhook, str]:
        """A new webhook and its plaintext secret (shown once; stored encrypted).

        Raises:
            WebhookLimitReached: The tenant already has ``limit`` live webhooks.
        """
        if limit is not None:
            await self._lock(_LOCK_WEBHOOKS)
            if await self.live_count() >= limit:
                raise WebhookLimitReached(limit)
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

    async def list(self, *, limit: int, after: Keyset | None = None) -> Sequence[Webhook]:
        """At most ``limit`` live webhooks, newest first, after the keyset ``after``."""
        query = select(Webhook).where(Webhook.tenant_id == self._tenant_id, col(Webhook.deleted_at).is_(None))
        query = newest_first(query, col(Webhook.created_at), col(Webhook.id), after)
        rows: Sequence[Webhook] = (await self._session.exec(query.limit(limit))).all()
        return rows

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

    async def inflight(self) -> int:
        """Deliveries of the tenant still being attempted (``pending``, younger than ``INFLIGHT_HORIZON``)."""
        query = select(func.count()).where(
            col(WebhookDelivery.tenant_id) == self._tenant_id,
            col(WebhookDelivery.status) == DELIVERY_PENDING,
            col(WebhookDelivery.created_at) > utcnow() - INFLIGHT_HORIZON,
        )
        return int((await self._session.exec(query)).one())

    async def enqueue(
        self, event_id: str, event_type: str, data: dict[str, Any], *, inflight_limit: int | None = None
    ) -> builtins.list[str]:
        """Delivery ids of ``event_id`` to start, one per subscribed webhook, inserting rows not there yet.

        With ``inflight_limit``, a new delivery beyond that many pending ones of the tenant
        is recorded as ``dropped`` (with the reason) and left out of the answer; so is one
        dropped before. Enqueueing the same event again returns the same ids.
        """
        webhooks = await self.subscribed(event_type)
        if not webhooks:
            return []
        if inflight_limit is not None:
            await self._lock(_LOCK_INFLIGHT)
        existing = set(
            (
                await self._session.exec(
                    select(WebhookDelivery.webhook_id).where(
                        WebhookDelivery.tenant_id == self._tenant_id, WebhookDelivery.event_id == event_id
                    )
                )
            ).all()
        )
        inflight = await self.inflight() if inflight_limit is not None else 0
        now = utcnow()
        payload = event_payload(event_id, event_type, data, now)
        dropped = 0
        for webhook in webhooks:
            if webhook.id in existing:
                continue
            status, reason = DELIVERY_PENDING, None
            if inflight_limit is not None and inflight >= inflight_limit:
                status = DELIVERY_DROPPED
                reason = (
                    f"dropped, not sent: the workspace had {inflight} webhook deliveries in flight"
                    f" (limit {inflight_limit} per workspace)"
                )
            inserted = await self._session.exec(
                insert(_delivery)
                .values(
                    id=new_id("dlv"),
                    tenant_id=self._tenant_id,
                    webhook_id=webhook.id,
                    event_id=event_id,
                    event_type=event_type,
                    status=status,
                    attempts=0,
                    last_error=reason,
                    payload=payload,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["webhook_id", "event_id"])
                .returning(_delivery.c.id)
            )
            if inserted.first() is not None:
                inflight += status == DELIVERY_PENDING
                dropped += status == DELIVERY_DROPPED
        if dropped:
            metrics.WEBHOOK_DELIVERIES_DROPPED.inc(dropped)
        rows = (
            await self._session.exec(
                select(WebhookDelivery).where(
                    WebhookDelivery.tenant_id == self._tenant_id,
                    WebhookDelivery.event_id == event_id,
                    col(WebhookDelivery.webhook_id).in_([w.id for w in webhooks]),
                    col(WebhookDelivery.status) != DELIVERY_DROPPED,
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
        self, webhook_id: str, *, limit: int, after: Keyset | None = None
    ) -> Sequence[WebhookDelivery]:
        """At most ``limit`` of a webhook's deliveries, newest first, after the keyset ``after``."""
        query = select(WebhookDelivery).where(
            WebhookDelivery.tenant_id == self._tenant_id, WebhookDelivery.webhook_id == webhook_id
        )
        query = newest_first(query, col(WebhookDelivery.created_at), col(WebhookDelivery.id), after)
        rows: Sequence[WebhookDelivery] = (await self._session.exec(query.limit(limit))).all()
        return rows

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
