"""``/v1/webhooks``: subscriptions to run events, signed deliveries and their log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from api.audit import audit
from api.deps import SessionDep, StateDep
from api.pagination import Limit, NewestFirst
from api.permissions import WebhooksManage
from api.problem_types import ProblemType, problems
from api.problems import ProblemError
from api.schemas import Page
from api.tool_schemas import DeliveryPublic, WebhookCreate, WebhookCreated, WebhookPublic
from core.db.models import Webhook, WebhookDelivery
from core.db.repos import Keyset
from core.webhooks.store import WebhookLimitReached, WebhookStore

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

WebhookId = Annotated[str, Path(min_length=1, max_length=40)]
WEBHOOKS = NewestFirst("webhooks")
DELIVERIES = NewestFirst("deliveries")


def _public(row: Webhook) -> WebhookPublic:
    return WebhookPublic(id=row.id, url=row.url, events=list(row.events), created_at=row.created_at)


def _delivery(row: WebhookDelivery) -> DeliveryPublic:
    return DeliveryPublic(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


def _not_found(webhook_id: str) -> ProblemError:
    return ProblemError(404, f"webhook {webhook_id} not found", slug=ProblemType.NOT_FOUND)


@router.post("", status_code=201, response_model=WebhookCreated, responses=problems(409))
async def create_webhook(
    body: WebhookCreate, state: StateDep, session: SessionDep, principal: WebhooksManage
) -> WebhookCreated:
    """Subscribe a URL to run events; the answer holds the signing secret, shown only this once.

    The URL's address is checked against the egress policy when each delivery is made.
    A tenant may have ``AIMPACT_WEBHOOKS_PER_TENANT`` live webhooks; one more answers 409.
    """
    store = WebhookStore(session, principal.tenant_id, state.keyring)
    try:
        row, secret = await store.create(body.url, body.events, limit=state.settings.webhooks_per_tenant)
    except WebhookLimitReached as exc:
        raise ProblemError(
            409, f"{exc} (AIMPACT_WEBHOOKS_PER_TENANT={exc.limit})", slug=ProblemType.WEBHOOK_LIMIT
        ) from None
    audit(
        session,
        principal,
        action="webhook.created",
        target_type="webhook",
        target_id=row.id,
        data={"events": list(row.events)},
    )
    await session.commit()
    return WebhookCreated(id=row.id, url=row.url, events=list(row.events), created_at=row.created_at, secret=secret)


@router.get("", response_model=Page[WebhookPublic])
async def list_webhooks(
    session: SessionDep,
    principal: WebhooksManage,
    after: Annotated[Keyset | None, Depends(WEBHOOKS.after)],
    limit: Limit = 50,
) -> Page[WebhookPublic]:
    """The tenant's webhooks, newest first (without secrets)."""
    found = await WebhookStore(session, principal.tenant_id).list(limit=limit + 1, after=after)
    rows, next_cursor = WEBHOOKS.page(found, limit)
    return Page(items=[_public(r) for r in rows], next_cursor=next_cursor)


@router.get("/{webhook_id}", response_model=WebhookPublic)
async def get_webhook(webhook_id: WebhookId, session: SessionDep, principal: WebhooksManage) -> WebhookPublic:
    """One webhook (without its secret)."""
    row = await WebhookStore(session, principal.tenant_id).get(webhook_id)
    if row is None:
        raise _not_found(webhook_id)
    return _public(row)


@router.delete("/{webhook_id}", status_code=204, response_class=Response)
async def delete_webhook(webhook_id: WebhookId, session: SessionDep, principal: WebhooksManage) -> Response:
    """Stop sending events to a webhook; pending deliveries give up at their next attempt."""
    if not await WebhookStore(session, principal.tenant_id).delete(webhook_id):
        raise _not_found(webhook_id)
    audit(
        session,
        principal,
        action="webhook.deleted",
        target_type="webhook",
        target_id=webhook_id,
    )
    await session.commit()
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=Page[DeliveryPublic])
async def list_deliveries(
    webhook_id: WebhookId,
    session: SessionDep,
    principal: WebhooksManage,
    after: Annotated[Keyset | None, Depends(DELIVERIES.after)],
    limit: Limit = 50,
) -> Page[DeliveryPublic]:
    """The webhook's delivery log, newest first: status, attempts, last status code and error."""
    store = WebhookStore(session, principal.tenant_id)
    if await store.get(webhook_id) is None:
        raise _not_found(webhook_id)
    found = await store.deliveries(webhook_id, limit=limit + 1, after=after)
    rows, next_cursor = DELIVERIES.page(found, limit)
    return Page(items=[_delivery(r) for r in rows], next_cursor=next_cursor)
