"""The audit log: who created, changed or deleted what."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from core.db.models import AuditEvent
from core.ids import new_id


def record_audit(
    session: AsyncSession,
    *,
    tenant_id: str | None,
    actor_id: str,
    actor_kind: str,
    action: str,
    target_type: str,
    target_id: str,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to ``session`` (committed with the change it describes)."""
    event = AuditEvent(
        id=new_id("aud"),
        tenant_id=tenant_id,
        actor_id=actor_id,
        actor_kind=actor_kind,
        action=action,
        target_type=target_type,
        target_id=target_id,
        data=data or {},
    )
    session.add(event)
    return event
