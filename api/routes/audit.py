"""``GET /v1/audit-events``: the tenant's audit log, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlmodel import col, select

from api.deps import Principal, SessionDep, require
from api.identity_schemas import AuditEventPublic
from api.problems import invalid_cursor
from api.schemas import Page
from core.db.models import AuditEvent
from core.db.repos import CursorError, decode_cursor, encode_cursor

router = APIRouter(tags=["audit"])


@router.get("/v1/audit-events", response_model=Page[AuditEventPublic])
async def list_audit_events(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("audit:read"))],
    action: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[AuditEventPublic]:
    """Who created, changed or deleted what in the caller's tenant."""
    query = select(AuditEvent).where(AuditEvent.tenant_id == principal.tenant_id)
    if action:
        query = query.where(AuditEvent.action == action)
    if cursor:
        try:
            created_at, event_id = decode_cursor(cursor)
        except CursorError as exc:
            raise invalid_cursor(exc) from exc
        query = query.where(
            (col(AuditEvent.created_at) < created_at)
            | ((col(AuditEvent.created_at) == created_at) & (col(AuditEvent.id) < event_id))
        )
    query = query.order_by(col(AuditEvent.created_at).desc(), col(AuditEvent.id).desc()).limit(limit + 1)
    rows = (await session.exec(query)).all()
    more = len(rows) > limit
    items = [AuditEventPublic.model_validate(r, from_attributes=True) for r in rows[:limit]]
    last = rows[limit - 1] if more else None
    return Page(items=items, next_cursor=encode_cursor(last.created_at, last.id) if last else None)
