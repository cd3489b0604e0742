"""Activities of the memory workflows: embed pending memories, consolidate tenants, extract a turn's facts."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import classify_database_errors, database_rejections, rejection
from activities.heartbeat import heartbeating
from activities.model_access import ModelAccess
from core import errors
from core.contracts.llm import ChatMessage
from core.contracts.memory import (
    ConsolidationInput,
    EmbedBatchInput,
    MemoryExtractInput,
    MemoryIngestResult,
    TenantPageInput,
)
from core.db.projection import RunProjection
from core.events import RunEventLog
from core.llm.base import ProviderError
from core.memory.consolidation import CorruptMemoryError, consolidate_tenant, tenants_page, tenants_with_memories
from core.memory.embedders import Embedder, EmbedderRejected, EmbedderUnavailable
from core.memory.extraction import extract_facts
from core.memory.service import MemoryService, memory_id_for
from core.memory.store import MemoryStore, NewMemory
from core.threads import ThreadStore

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


class MemoryExtractionActivities:
    """The extraction of a finished turn's facts, with the runs, threads, models and memory injected."""

    def __init__(
        self,
        *,
        projection: RunProjection,
        events: RunEventLog,
        threads: ThreadStore,
        models: ModelAccess,
        memory: MemoryService,
    ):
        self._projection = projection
        self._events = events
        self._threads = threads
        self._models = models
        self._memory = memory

    @activity.defn(name="agent_run.extract_memories")  # its name as an agent-run activity: histories hold it
    @classify_database_errors
    async def extract_memories(self, inp: MemoryExtractInput) -> list[str]:
        """Remember the salient facts of one turn; returns the memory ids written.

        The run's subject is read afresh: a subject erased since the turn ended is not
        written again.
        """
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, run_id=inp.run_id)
        identity = await self._projection.identity(inp.tenant_id, inp.run_id)
        if identity is None or not identity.subject:
            return []
        config = await self._models.config(inp.tenant_id, identity.agent_id, identity.agent_version)
        model = config.model.to_contract()
        turn = _latest_turn(await self._threads.run_messages(inp.tenant_id, inp.thread_id, inp.run_id))
        try:
            api_key = await self._models.api_key(inp.tenant_id, model)
            async with heartbeating():
                facts, method = await extract_facts(self._models.provider(model.provider), model, turn, api_key=api_key)
        except ProviderError as exc:
            raise ApplicationError(
                f"{exc.provider}: {exc}",
                type=errors.PROVIDER_UNAVAILABLE if exc.retryable else errors.PROVIDER_REJECTED,
                non_retryable=not exc.retryable,
            ) from exc
        memories = [
            NewMemory(
                id=memory_id_for(f"{inp.tenant_id}:{identity.subject}:{' '.join(fact.lower().split())}"),
                subject=identity.subject,
                text=fact,
                metadata={"source": "extraction", "method": method},
                source_run_id=inp.run_id,
                source_step_id=f"turn-{inp.turn}",
            )
            for fact in facts
        ]
        if not memories:
            return []
        ids, _ = await self._memory.remember(inp.tenant_id, memories)
        await self._events.publish(inp.tenant_id, inp.run_id, "memory.written", {"ids": ids, "method": method})
        return ids


def _latest_turn(messages: list[ChatMessage]) -> list[ChatMessage]:
    """The messages of the latest turn: from the user messages after the previous answer to the end."""
    end = len(messages)
    answers = [i for i, m in enumerate(messages) if m.role == "assistant" and not m.tool_calls]
    previous = answers[-2] if len(answers) >= 2 else -1
    return messages[previous + 1 : end]
