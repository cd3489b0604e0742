"""``GET /v1/audit-events``: the tenant's audit log, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlmodel import col, select

from api.deps import SessionDep
from api.identity_schemas import AuditEventPublic
from api.pagination import Limit, NewestFirst
from api.permissions import AuditRead
from api.schemas import Page
from core.db.models import AuditEvent
from core.db.repos import Keyset, newest_first

router = APIRouter(tags=["audit"])
AUDIT_EVENTS = NewestFirst("audit-events")


@router.get("/v1/audit-events", response_model=Page[AuditEventPublic])
async def list_audit_events(
    session: SessionDep,
    principal: AuditRead,
    after: Annotated[Keyset | None, Depends(AUDIT_EVENTS.after)],
    action: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 50,
) -> Page[AuditEventPublic]:
    """Who created, changed or deleted what in the caller's tenant, newest first."""
    query = select(AuditEvent).where(AuditEvent.tenant_id == principal.tenant_id)
    if action:
        query = query.where(AuditEvent.action == action)
    query = newest_first(query, col(AuditEvent.created_at), col(AuditEvent.id), after)
    rows, next_cursor = AUDIT_EVENTS.page((await session.exec(query.limit(limit + 1))).all(), limit)
    items = [AuditEventPublic.model_validate(r, from_attributes=True) for r in rows]
    return Page(items=items, next_cursor=next_cursor)
