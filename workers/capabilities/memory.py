"""Memory on the agents queue: ingestion, extraction and the consolidation schedule."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from activities.memory import MemoryActivities, MemoryExtractionActivities
from activities.model_access import ModelAccess
from core.db.projection import RunProjection
from core.events import RunEventLog
from core.memory.embedders import MiniLMEmbedder
from core.memory.schedule import ensure_consolidation_schedule
from core.secrets import SecretReader
from core.threads import ThreadStore
from workers.deps import WorkerDeps
from workers.model_access import egress_check, model_providers
from workers.registry import Slice
from workflows.memory import MemoryConsolidationWorkflow, MemoryExtractWorkflow, MemoryIngestWorkflow


def _activities(deps: WorkerDeps) -> Sequence[Callable[..., Any]]:
    memory = MemoryActivities(
        deps.engine,
        deps.embedder,
        duplicate_similarity=deps.settings.memory_duplicate_similarity,
        subject_cap=deps.settings.memory_subject_cap,
    )
    return [memory.embed, memory.tenants, memory.tenant_page, memory.consolidate, _extraction(deps).extract_memories]


def _extraction(deps: WorkerDeps) -> MemoryExtractionActivities:
    """Extraction calls the agent's model as its model steps do: same providers, secrets and egress check."""
    projection = RunProjection(deps.engine)
    models = ModelAccess(
        projection,
        model_providers(deps.settings),
        secrets=SecretReader(deps.engine, deps.keyring),
        egress=egress_check(deps.sessions, deps.platform_allowlist),
    )
    return MemoryExtractionActivities(
        projection=projection,
        events=RunEventLog(deps.redis),
        threads=ThreadStore(deps.engine, deps.redis),
        models=models,
        memory=deps.memory,
    )


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
