"""Activities of the memory workflows: embed pending memories in batches, consolidate tenants."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import database_rejections, rejection
from activities.heartbeat import heartbeating
from core import errors
from core.contracts.memory import ConsolidationInput, EmbedBatchInput, MemoryIngestResult, TenantPageInput
from core.memory.consolidation import CorruptMemoryError, consolidate_tenant, tenants_page, tenants_with_memories
from core.memory.embedders import Embedder, EmbedderRejected, EmbedderUnavailable
from core.memory.store import MemoryStore

log = structlog.get_logger(__name__)


class MemoryActivities:
    """Memory activities with the store and embedder injected by the worker."""

    def __init__(self, engine: AsyncEngine, embedder: Embedder, *, duplicate_similarity: float, subject_cap: int):
        self._engine = engine
        self._store = MemoryStore(engine)
        self._embedder = embedder
        self._duplicate_similarity = duplicate_similarity
        self._subject_cap = subject_cap

    @activity.defn(name="memory.embed")
    async def embed(self, inp: EmbedBatchInput) -> MemoryIngestResult:
        """Embed the batch's memories that are still pending and mark them ready."""
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id)
        pending = await self._store.texts(inp.tenant_id, inp.memory_ids)
        if not pending:
            return MemoryIngestResult()
        try:
            async with heartbeating():
                vectors = await self._embedder.embed([text for _, text in pending])
        except EmbedderRejected as exc:
            raise ApplicationError(str(exc), type=errors.EMBEDDER_REJECTED, non_retryable=True) from exc
        except EmbedderUnavailable as exc:
            raise ApplicationError(str(exc), type=errors.EMBEDDER_UNAVAILABLE) from exc
        changed = await self._store.set_embeddings(
            inp.tenant_id, self._embedder.name, [(mid, v) for (mid, _), v in zip(pending, vectors, strict=True)]
        )
        return MemoryIngestResult(embedded=changed)

    @activity.defn(name="memory.tenants")
    async def tenants(self) -> list[str]:
        """Tenants that hold memories (the shards of a consolidation pass)."""
        return await tenants_with_memories(self._engine)

    @activity.defn(name="memory.tenant_page")
    async def tenant_page(self, inp: TenantPageInput) -> list[str]:
        """One page of the tenants that hold memories, after ``inp.after`` in id order."""
        return await tenants_page(self._engine, limit=inp.limit, after=inp.after)

    @activity.defn(name="memory.consolidate")
    async def consolidate(self, inp: ConsolidationInput) -> dict[str, int]:
        """Consolidate one tenant's memories; returns counts.

        Heartbeats after each subject with ``(subjects done, counts so far)``; a retry
        resumes after the subjects its previous attempt finished. A corrupt memory or a
        database rejection fails the tenant without retries.
        """
        if inp.tenant_id is None:
            raise rejection(AssertionError("memory.consolidate needs a tenant_id"), "memory.consolidate")
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id)
        details = activity.info().heartbeat_details
        resume: tuple[int, dict[str, int]] | None = None
        if len(details) >= 2 and isinstance(details[0], int) and isinstance(details[1], dict):
            resume = (details[0], details[1])
        try:
            with database_rejections("memory.consolidate"):
                counts = await consolidate_tenant(
                    self._engine,
                    inp.tenant_id,
                    duplicate_similarity=inp.duplicate_similarity or self._duplicate_similarity,
                    subject_cap=inp.subject_cap or self._subject_cap,
                    decay_after_s=inp.decay_after_s,
                    decay_factor=inp.decay_factor,
                    progress=activity.heartbeat,
                    resume=resume,
                )
        except CorruptMemoryError as exc:
            raise ApplicationError(str(exc), type=errors.MEMORY_CORRUPT, non_retryable=True) from exc
        log.info("memories consolidated", **counts)
        return counts
