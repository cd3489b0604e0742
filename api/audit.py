"""Audit events recorded by routes on behalf of the calling principal."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import Principal
from core.audit import record_audit
from core.db.models import AuditEvent


def audit(
    session: AsyncSession,
    principal: Principal,
    *,
    action: str,
    target_type: str,
    target_id: str,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event in the principal's tenant (committed with the change it describes)."""
    return record_audit(
        session,
        tenant_id=principal.tenant_id,
        actor_id=principal.subject_id,
        actor_kind=principal.kind,
        action=action,
        target_type=target_type,
        target_id=target_id,
        data=data,
    )
