"""Memory on the agents queue: ingestion, extraction and the consolidation schedule."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from activities.memory import MemoryActivities
from core.memory.embedders import MiniLMEmbedder
from core.memory.schedule import ensure_consolidation_schedule
from workers.deps import WorkerDeps
from workers.registry import Slice
from workflows.memory import MemoryConsolidationWorkflow, MemoryExtractWorkflow, MemoryIngestWorkflow


def _activities(deps: WorkerDeps) -> Sequence[Callable[..., Any]]:
    memory = MemoryActivities(
        deps.engine,
        deps.embedder,
        duplicate_similarity=deps.settings.memory_duplicate_similarity,
        subject_cap=deps.settings.memory_subject_cap,
    )
    return [memory.embed, memory.tenants, memory.tenant_page, memory.consolidate]


async def warm_embedder(deps: WorkerDeps) -> None:
    """Load the local embedding model in the background, off the first request's path."""
    if isinstance(deps.embedder, MiniLMEmbedder):
        deps.spawn(deps.embedder.warm())


async def consolidation_schedule(deps: WorkerDeps) -> None:
    """Create or update the Temporal Schedule of ``MemoryConsolidationWorkflow``."""
    await ensure_consolidation_schedule(deps.client, deps.settings)


SLICE = Slice(
    workflows=[MemoryIngestWorkflow, MemoryExtractWorkflow, MemoryConsolidationWorkflow],
    activities=_activities,
    on_start=[warm_embedder, consolidation_schedule],
)
