"""Long-term memories in PostgreSQL + pgvector: always filtered by tenant, and by subject when given."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.db.models import Memory, utcnow
from core.memory.embedders import Vector

_memory = Memory.__table__  # type: ignore[attr-defined]
EF_SEARCH = 100
"""HNSW candidate list size per search (index m=16, ef_construction=200): see bench/memory.py for recall."""


@dataclass
class NewMemory:
    """A memory to store; ``id`` is chosen by the caller so a retried write adds nothing."""

    id: str
    subject: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    importance: float = 0.5
    source_run_id: str | None = None
    source_step_id: str | None = None


@dataclass
class MemoryHit:
    """A search result: the memory and its cosine similarity to the query (1 = same direction)."""

    id: str
    subject: str
    text: str
    score: float
    metadata: dict[str, Any]
    created_at: datetime


def _hit(row: Any) -> MemoryHit:
    return MemoryHit(
        id=row.id,
        subject=row.subject,
        text=row.text,
        score=round(1.0 - float(row.distance), 6),
        metadata=row.metadata or {},
        created_at=row.created_at,
    )


_TUNE = text("select set_config('hnsw.ef_search', :ef, true), set_config('hnsw.iterative_scan', 'relaxed_order', true)")


async def _tune(conn: AsyncConnection, ef_search: int) -> None:
    # Iterative scans keep filtering by tenant/subject from starving the HNSW result list (pgvector 0.8);
    # both settings are transaction-local and sent in one round trip.
    await conn.execute(_TUNE, {"ef": str(int(ef_search))})


class MemoryStore:
    """Reads and writes ``memory`` rows for one engine."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    async def add(self, tenant_id: str, memories: Sequence[NewMemory]) -> list[str]:
        """Store ``memories`` as ``pending`` (ids already present are left as they are).

        Returns the ids among ``memories`` that are pending now — new ones, and earlier
        writes still waiting for their embedding — i.e. those to queue for embedding.
        """
        if not memories:
            return []
        rows = [
            {
                "id": m.id,
                "tenant_id": tenant_id,
                "subject": m.subject,
                "text": m.text,
                "metadata": m.metadata,
                "status": "pending",
                "importance": m.importance,
                "use_count": 0,
                "source_run_id": m.source_run_id,
                "source_step_id": m.source_step_id,
            }
            for m in memories
        ]
        ids = [m.id for m in memories]
        async with self.engine.begin() as conn:
            await conn.execute(insert(_memory).values(rows).on_conflict_do_nothing(index_elements=["id"]))
            pending = set(
                (
                    await conn.scalars(
                        select(_memory.c.id).where(
                            _memory.c.tenant_id == tenant_id, _memory.c.id.in_(ids), _memory.c.status == "pending"
                        )
                    )
                ).all()
            )
        return [i for i in ids if i in pending]

    async def texts(self, tenant_id: str, ids: Sequence[str], *, pending_only: bool = True) -> list[tuple[str, str]]:
        """``(id, text)`` of the tenant's memories among ``ids`` (those still pending, by default)."""
        query = select(_memory.c.id, _memory.c.text).where(_memory.c.tenant_id == tenant_id, _memory.c.id.in_(ids))
        if pending_only:
            query = query.where(_memory.c.status == "pending")
        async with self.engine.connect() as conn:
            return [(r.id, r.text) for r in (await conn.execute(query)).all()]

    async def set_embeddings(self, tenant_id: str, embedder: str, vectors: Sequence[tuple[str, Vector]]) -> int:
        """Attach embeddings and mark the memories ``ready``; returns how many rows changed."""
        if not vectors:
            return 0
        statement = (
            update(_memory)
            .where(_memory.c.tenant_id == tenant_id, _memory.c.id == bindparam("memory_id"))
            .values(embedding=bindparam("vector", type_=_memory.c.embedding.type), embedder=embedder, status="ready")
        )
        async with self.engine.begin() as conn:  # one pipelined batch, not a round trip per row
            result = await conn.execute(statement, [{"memory_id": m, "vector": v} for m, v in vectors])
        return int(result.rowcount) if result.rowcount >= 0 else len(vectors)

    def _search_query(self, tenant_id: str, subject: str | None, vector: Vector, embedder: str, k: int) -> Select[Any]:
        distance = _memory.c.embedding.cosine_distance(vector).label("distance")
        query = select(
            _memory.c.id, _memory.c.subject, _memory.c.text, _memory.c.metadata, _memory.c.created_at, distance
        ).where(_memory.c.tenant_id == tenant_id, _memory.c.status == "ready", _memory.c.embedder == embedder)
        if subject is not None:
            query = query.where(_memory.c.subject == subject)
        return query.order_by(distance).limit(k)

    async def search(
        self,
        tenant_id: str,
        subject: str | None,
        vector: Vector,
        *,
        embedder: str,
        k: int = 5,
        ef_search: int = EF_SEARCH,
        touch: bool = True,
    ) -> list[MemoryHit]:
        """The ``k`` memories nearest to ``vector`` (HNSW, cosine); marks them used unless ``touch=False``."""
        async with self.engine.begin() as conn:
            await _tune(conn, max(ef_search, k))
            rows = (await conn.execute(self._search_query(tenant_id, subject, vector, embedder, k))).all()
            hits = sorted((_hit(r) for r in rows), key=lambda h: -h.score)
            if touch and hits:
                await conn.execute(
                    update(_memory)
                    .where(_memory.c.tenant_id == tenant_id, _memory.c.id.in_([h.id for h in hits]))
                    .values(last_used_at=utcnow(), use_count=_memory.c.use_count + 1)
                )
        return hits

    async def exact_search(
        self, tenant_id: str, subject: str | None, vector: Vector, *, embedder: str, k: int = 10
    ) -> list[MemoryHit]:
        """The true ``k`` nearest (sequential scan, no index): the reference for recall measurements."""
        async with self.engine.begin() as conn:
            await conn.execute(text("set local enable_indexscan = off"))
            await conn.execute(text("set local enable_bitmapscan = off"))
            rows = (await conn.execute(self._search_query(tenant_id, subject, vector, embedder, k))).all()
        return [_hit(r) for r in rows]

    async def get(self, tenant_id: str, memory_id: str) -> Any | None:
        """One memory row of the tenant, or ``None``."""
        async with self.engine.connect() as conn:
            return (
                await conn.execute(select(_memory).where(_memory.c.tenant_id == tenant_id, _memory.c.id == memory_id))
            ).first()

    async def list(
        self, tenant_id: str, subject: str, *, limit: int, before: tuple[datetime, str] | None = None
    ) -> Sequence[Any]:
        """The subject's memories, newest first, ``limit`` at a time (keyset cursor ``before``)."""
        query = select(_memory).where(_memory.c.tenant_id == tenant_id, _memory.c.subject == subject)
        if before is not None:
            created, memory_id = before
            query = query.where(
                or_(
                    _memory.c.created_at < created,
                    and_(_memory.c.created_at == created, _memory.c.id < memory_id),
                )
            )
        query = query.order_by(_memory.c.created_at.desc(), _memory.c.id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).all()

    async def delete(self, tenant_id: str, memory_id: str) -> bool:
        """Delete one memory; ``False`` if the tenant has no such memory."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(_memory).where(_memory.c.tenant_id == tenant_id, _memory.c.id == memory_id)
            )
        return bool(result.rowcount)

    async def count(self, tenant_id: str, subject: str) -> int:
        """How many memories the subject has."""
        async with self.engine.connect() as conn:
            value = await conn.scalar(
                select(func.count())
                .select_from(_memory)
                .where(_memory.c.tenant_id == tenant_id, _memory.c.subject == subject)
            )
        return int(value or 0)
