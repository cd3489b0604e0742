"""Consolidation of a tenant's memories: merge near-duplicates, decay unused ones, cap each subject."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import and_, delete, distinct, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.db.models import Memory, utcnow
from core.errors import DomainError

_memory = Memory.__table__  # type: ignore[attr-defined]
MIN_IMPORTANCE = 0.05


class CorruptMemoryError(DomainError):
    """A stored memory that consolidation cannot read (retrying cannot help)."""


@dataclass
class SubjectChanges:
    """Counts of one subject's consolidation."""

    merged: int = 0
    decayed: int = 0
    evicted: int = 0


def _keep_order(row: Any) -> tuple[float, int, float]:
    """Which of two duplicates survives: more used, more important, newer."""
    return (row.use_count, row.importance, row.created_at.timestamp())


async def _merge_duplicates(conn: AsyncConnection, tenant_id: str, subject: str, threshold: float) -> int:
    rows = (
        await conn.execute(
            select(
                _memory.c.id,
                _memory.c.embedding,
                _memory.c.embedder,
                _memory.c.importance,
                _memory.c.use_count,
                _memory.c.created_at,
                _memory.c.metadata,
            ).where(_memory.c.tenant_id == tenant_id, _memory.c.subject == subject, _memory.c.status == "ready")
        )
    ).all()
    merged = 0
    by_embedder: dict[str, list[Any]] = {}
    for row in rows:
        if row.embedding is None or not isinstance(row.metadata, dict):
            raise CorruptMemoryError(f"memory {row.id} is ready without an embedding or with non-object metadata")
        by_embedder.setdefault(row.embedder, []).append(row)
    for group in by_embedder.values():
        group.sort(key=_keep_order, reverse=True)  # survivors first
        vectors = np.array([np.asarray(r.embedding, dtype=np.float32) for r in group])
        similarity = vectors @ vectors.T
        gone: set[int] = set()
        for i, keeper in enumerate(group):
            if i in gone:
                continue
            twins = [j for j in range(i + 1, len(group)) if j not in gone and similarity[i, j] >= threshold]
            if not twins:
                continue
            gone.update(twins)
            absorbed = [group[j] for j in twins]
            merged_from = list(keeper.metadata.get("merged_from", [])) + [r.id for r in absorbed]
            await conn.execute(
                update(_memory)
                .where(_memory.c.tenant_id == tenant_id, _memory.c.id == keeper.id)
                .values(
                    importance=min(1.0, max([keeper.importance, *(r.importance for r in absorbed)]) + 0.05),
                    use_count=_memory.c.use_count + sum(r.use_count for r in absorbed),
                    metadata=keeper.metadata | {"merged_from": merged_from},
                )
            )
            await conn.execute(
                delete(_memory).where(_memory.c.tenant_id == tenant_id, _memory.c.id.in_([r.id for r in absorbed]))
            )
            merged += len(absorbed)
    return merged


async def _decay_unused(
    conn: AsyncConnection, tenant_id: str, subject: str, decay_after_s: float, factor: float
) -> int:
    cutoff = utcnow() - timedelta(seconds=decay_after_s)
    result = await conn.execute(
        update(_memory)
        .where(
            _memory.c.tenant_id == tenant_id,
            _memory.c.subject == subject,
            _memory.c.use_count == 0,
            _memory.c.created_at <= cutoff,
            _memory.c.importance > MIN_IMPORTANCE,
        )
        .values(importance=func.greatest(MIN_IMPORTANCE, _memory.c.importance * factor))
    )
    return int(result.rowcount)


async def _evict_over_cap(conn: AsyncConnection, tenant_id: str, subject: str, cap: int) -> int:
    ranked = (
        select(_memory.c.id)
        .where(_memory.c.tenant_id == tenant_id, _memory.c.subject == subject)
        .order_by(
            _memory.c.importance.desc(),
            func.coalesce(_memory.c.last_used_at, _memory.c.created_at).desc(),
            _memory.c.id.desc(),
        )
        .offset(cap)
    )
    result = await conn.execute(
        delete(_memory).where(and_(_memory.c.tenant_id == tenant_id, _memory.c.id.in_(ranked.scalar_subquery())))
    )
    return int(result.rowcount)


async def tenants_with_memories(engine: AsyncEngine) -> list[str]:
    """Tenant ids that hold at least one memory."""
    async with engine.connect() as conn:
        return list((await conn.scalars(select(distinct(_memory.c.tenant_id)).order_by(_memory.c.tenant_id))).all())


async def tenants_page(engine: AsyncEngine, *, limit: int, after: str | None = None) -> list[str]:
    """Up to ``limit`` tenant ids that hold memories, in id order, after ``after``."""
    query = select(distinct(_memory.c.tenant_id)).order_by(_memory.c.tenant_id).limit(limit)
    if after is not None:
        query = query.where(_memory.c.tenant_id > after)
    async with engine.connect() as conn:
        return list((await conn.scalars(query)).all())


async def consolidate_tenant(
    engine: AsyncEngine,
    tenant_id: str,
    *,
    duplicate_similarity: float,
    subject_cap: int,
    decay_after_s: float,
    decay_factor: float,
    progress: Callable[[int, dict[str, int]], None] | None = None,
    resume: tuple[int, dict[str, int]] | None = None,
) -> dict[str, int]:
    """Consolidate every subject of the tenant, one transaction per subject; returns counts.

    Subjects go in order; after each one's transaction commits, ``progress(done, totals)``
    is called (the activity heartbeats there). ``resume`` (the last progress reported)
    skips the subjects already done, so a retry does not decay them twice.
    """
    async with engine.connect() as conn:
        subjects = list(
            (
                await conn.scalars(
                    select(distinct(_memory.c.subject))
                    .where(_memory.c.tenant_id == tenant_id)
                    .order_by(_memory.c.subject)
                )
            ).all()
        )
    done, totals = 0, {"subjects": len(subjects), "merged": 0, "decayed": 0, "evicted": 0}
    if resume is not None:
        done = min(resume[0], len(subjects))
        totals |= {k: int(resume[1].get(k, 0)) for k in ("merged", "decayed", "evicted")}
    for subject in subjects[done:]:
        async with engine.begin() as conn:
            totals["merged"] += await _merge_duplicates(conn, tenant_id, subject, duplicate_similarity)
            totals["decayed"] += await _decay_unused(conn, tenant_id, subject, decay_after_s, decay_factor)
            totals["evicted"] += await _evict_over_cap(conn, tenant_id, subject, subject_cap)
        done += 1
        if progress is not None:
            progress(done, dict(totals))
    return totals
