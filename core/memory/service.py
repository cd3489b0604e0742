"""The memory service used by the API, the agent activities and the memory tools.

Writes store the text at once (``pending``) and hand the embedding to a durable
``MemoryIngestWorkflow``, so an embedder that is down delays a memory but never
loses it. Searches embed the query in-process and read the HNSW index. Memory
workflows start under the tenant's fairness key, like runs.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import Priority, SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from core.contracts.memory import MemoryExtractInput, MemoryIngestInput
from core.ids import RUN_KIND, TENANT_ID, new_id, workflow_id
from core.memory.embedders import Embedder
from core.memory.store import MemoryHit, MemoryStore, NewMemory

INGEST_WORKFLOW = "MemoryIngestWorkflow"
EXTRACT_WORKFLOW = "MemoryExtractWorkflow"


def memory_id_for(key: str) -> str:
    """A stable memory id for an idempotency key (a retried write stores nothing new)."""
    return "mem_" + hashlib.sha256(key.encode()).hexdigest()[:24]


def new_memory_id() -> str:
    """A fresh memory id."""
    return new_id("mem")


def ingest_workflow_id(tenant_id: str, memory_ids: Sequence[str]) -> str:
    """Workflow id of the ingestion of ``memory_ids``: ids only, never the text."""
    key = memory_ids[0] if len(memory_ids) == 1 else hashlib.sha256(",".join(memory_ids).encode()).hexdigest()[:24]
    return workflow_id(tenant_id, "memory-ingest", key)


class MemoryService:
    """Write (durably queued embedding) and search long-term memories."""

    def __init__(self, store: MemoryStore, embedder: Embedder, client: Client, task_queue: str):
        self.store = store
        self.embedder = embedder
        self._client = client
        self._task_queue = task_queue

    async def remember(
        self, tenant_id: str, memories: Sequence[NewMemory]
    ) -> tuple[list[str], WorkflowHandle[Any, Any] | None]:
        """Store ``memories`` and queue the embedding of those pending; returns all ids and the ingestion."""
        pending = await self.store.add(tenant_id, memories)
        ids = [m.id for m in memories]
        if not pending:
            return ids, None
        wid = ingest_workflow_id(tenant_id, pending)
        try:
            handle: WorkflowHandle[Any, Any] = await self._client.start_workflow(
                INGEST_WORKFLOW,
                MemoryIngestInput(tenant_id=tenant_id, memory_ids=pending),
                id=wid,
                task_queue=self._task_queue,
                # a memory erased or merged away and written again is ingested again
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(TENANT_ID, tenant_id), SearchAttributePair(RUN_KIND, "memory")]
                ),
                priority=Priority(fairness_key=tenant_id),
            )
        except WorkflowAlreadyStartedError:  # the same write in flight: its ingestion covers these ids
            handle = self._client.get_workflow_handle(wid)
        return ids, handle

    async def start_extraction(self, inp: MemoryExtractInput) -> None:
        """Start the extraction of a turn's facts (once per run and turn; a repeated start is a no-op)."""
        wid = workflow_id(inp.tenant_id, "memory-extract", f"{inp.run_id}:{inp.turn}")
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self._client.start_workflow(
                EXTRACT_WORKFLOW,
                inp,
                id=wid,
                task_queue=self._task_queue,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(TENANT_ID, inp.tenant_id), SearchAttributePair(RUN_KIND, "memory")]
                ),
                priority=Priority(fairness_key=inp.tenant_id),
            )

    async def search(
        self, tenant_id: str, subject: str | None, query: str, *, k: int = 5, touch: bool = True
    ) -> list[MemoryHit]:
        """The ``k`` memories of the tenant (and subject, when given) closest in meaning to ``query``."""
        [vector] = await self.embedder.embed([query])
        return await self.store.search(tenant_id, subject, vector, embedder=self.embedder.name, k=k, touch=touch)
