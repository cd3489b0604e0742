"""The memory service used by the API, the agent activities and the memory tools.

Writes store the text at once (``pending``) and hand the embedding to a durable
``MemoryIngestWorkflow``, so an embedder that is down delays a memory but never
loses it. Searches embed the query in-process and read the HNSW index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from core.contracts.memory import MemoryIngestInput
from core.ids import RUN_KIND, TENANT_ID, new_id, workflow_id
from core.memory.embedders import Embedder
from core.memory.store import MemoryHit, MemoryStore, NewMemory

INGEST_WORKFLOW = "MemoryIngestWorkflow"


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
        """Store ``memories`` and start their embedding; returns ids and the ingestion's handle."""
        ids = await self.store.add(tenant_id, memories)
        if not ids:
            return ids, None
        client = self._client
        wid = ingest_workflow_id(tenant_id, ids)
        try:
            handle: WorkflowHandle[Any, Any] = await client.start_workflow(
                INGEST_WORKFLOW,
                MemoryIngestInput(tenant_id=tenant_id, memory_ids=ids),
                id=wid,
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(TENANT_ID, tenant_id), SearchAttributePair(RUN_KIND, "memory")]
                ),
            )
        except WorkflowAlreadyStartedError:
            handle = client.get_workflow_handle(wid)
        return ids, handle

    async def search(
        self, tenant_id: str, subject: str | None, query: str, *, k: int = 5, touch: bool = True
    ) -> list[MemoryHit]:
        """The ``k`` memories of the tenant (and subject, when given) closest in meaning to ``query``."""
        [vector] = await self.embedder.embed([query])
        return await self.store.search(tenant_id, subject, vector, embedder=self.embedder.name, k=k, touch=touch)
