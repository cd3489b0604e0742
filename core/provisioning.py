"""Creating tenants and credentials (used by the seed, the admin API and tests)."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from core.db.models import ApiKey, Tenant
from core.ids import new_id
from core.security import NewApiKey, mint_api_key


async def create_tenant(session: AsyncSession, name: str) -> Tenant:
    """Insert a tenant (committed)."""
    tenant = Tenant(id=new_id("ten"), name=name)
    session.add(tenant)
    await session.commit()
    return tenant


async def issue_api_key(
    session: AsyncSession,
    tenant_id: str,
    *,
    name: str,
    role: str,
    user_id: str | None = None,
    key: NewApiKey | None = None,
    commit: bool = True,
) -> tuple[ApiKey, NewApiKey]:
    """Store a new API key for ``tenant_id``; the returned ``NewApiKey.key`` is shown once."""
    minted = key or mint_api_key()
    row = ApiKey(
        id=new_id("key"),
        tenant_id=tenant_id,
        user_id=user_id,
        name=name,
        role=role,
        prefix=minted.prefix,
        key_hash=minted.key_hash,
    )
    session.add(row)
    if commit:
        await session.commit()
    return row, minted
