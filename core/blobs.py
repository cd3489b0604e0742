"""Large values kept out of workflow history: stored in PostgreSQL, passed by reference."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db.models import PayloadBlob

_blob = PayloadBlob.__table__  # type: ignore[attr-defined]


class BlobStore:
    """Content-addressed blobs per tenant."""

    def __init__(self, engine: AsyncEngine):
        self._engine = engine

    async def put(self, tenant_id: str, data: bytes) -> str:
        """Store ``data``; return its reference (``blob:<sha256>``)."""
        digest = hashlib.sha256(tenant_id.encode() + b"\x00" + data).hexdigest()
        statement = insert(_blob).values(id=digest, tenant_id=tenant_id, data=data, size=len(data))
        async with self._engine.begin() as conn:
            await conn.execute(statement.on_conflict_do_nothing(index_elements=["id"]))
        return f"blob:{digest}"

    async def get(self, tenant_id: str, ref: str) -> bytes:
        """The data of ``ref``; ``KeyError`` if absent."""
        async with self._engine.connect() as conn:
            data = (
                await conn.execute(
                    select(_blob.c.data).where(_blob.c.id == ref.removeprefix("blob:"), _blob.c.tenant_id == tenant_id)
                )
            ).scalar_one_or_none()
        if data is None:
            raise KeyError(ref)
        return bytes(data)
