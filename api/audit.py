"""Audit events recorded by routes on behalf of the calling principal."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import Principal
from core.audit import record_audit
from core.db.models import AuditEvent

PLATFORM_ACTOR = "platform"
"""How a tenant's audit log names a platform administrator: as the platform, never by user id."""


def audit(
    session: AsyncSession,
    principal: Principal,
    *,
    action: str,
    target_type: str,
    target_id: str,
    data: dict[str, Any] | None = None,
    tenant_id: str | None = None,
) -> AuditEvent:
    """Add an audit event (committed with the change it describes).

    It belongs to the principal's tenant unless ``tenant_id`` names another one
    (a platform admin acting on a tenant). A platform administrator's act appears in the
    tenant's log with the platform as its actor; the administrator's own id is kept in the
    platform's log (``tenant_id`` NULL), which no tenant can read.
    """
    actor_id: str = principal.subject_id
    actor_kind: str = principal.kind
    if principal.is_platform_admin:
        record_audit(
            session,
            tenant_id=None,
            actor_id=actor_id,
            actor_kind=actor_kind,
            action=action,
            target_type=target_type,
            target_id=target_id,
            data={**(data or {}), "tenant_id": tenant_id},
        )
        actor_id = actor_kind = PLATFORM_ACTOR
    return record_audit(
        session,
        tenant_id=tenant_id or principal.tenant_id,
        actor_id=actor_id,
        actor_kind=actor_kind,
        action=action,
        target_type=target_type,
        target_id=target_id,
        data=data,
    )
