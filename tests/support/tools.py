"""Tenant tools in tests: loopback egress for a local receiver, and a side-effecting HTTP tool that posts to it."""

from __future__ import annotations

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db.engine import make_sessionmaker
from core.db.models import Tenant


async def allow_loopback(engine: AsyncEngine, tenant_id: str, entries: list[str] | None = None) -> None:
    """Put the local receiver's address on the tenant's egress allowlist."""
    async with make_sessionmaker(engine)() as session:
        await session.exec(
            update(Tenant).where(Tenant.id == tenant_id).values(egress_allowlist=entries or ["127.0.0.1"])  # type: ignore[arg-type]
        )
        await session.commit()


async def record_tool(http: httpx.AsyncClient, url: str) -> None:
    """The tenant's side-effecting HTTP tool ``record`` (POST ``url`` with ``{note}``)."""
    created = await http.post(
        "/v1/tools",
        json={
            "name": "record",
            "description": "records a note",
            "parameters": {"type": "object", "properties": {"note": {"type": "string"}}, "required": ["note"]},
            "method": "POST",
            "url": url,
        },
    )
    assert created.status_code == 201, created.text
