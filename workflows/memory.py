"""Memory workflows: durable embedding of new memories, and scheduled consolidation.

``MemoryIngestWorkflow`` (id ``{tenant}:memory-ingest:{memory id or batch hash}``)
embeds pending memories in batches; an embedder that is down is retried with
backoff until it answers, so an accepted write is never lost.
``MemoryExtractWorkflow`` extracts the facts of a finished turn, started by the run's
``finish`` so that a slow or failing model never holds up the run.
``MemoryConsolidationWorkflow`` runs from the ``memory-consolidation`` Schedule:
one activity per tenant (the shard), merging near-duplicates, decaying memories
never retrieved and capping each subject.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.agent_run import AgentRunActivities
    from activities.memory import MemoryActivities
    from core import errors, policies
    from core.contracts.memory import (
        EMBED_BATCH,
        ConsolidationInput,
        ConsolidationResult,
        EmbedBatchInput,
        MemoryExtractInput,
        MemoryIngestInput,
        MemoryIngestResult,
    )

EMBED_TIMEOUT = timedelta(minutes=5)
CONSOLIDATE_TIMEOUT = timedelta(minutes=30)


@workflow.defn
class MemoryIngestWorkflow:
    """Embeds a set of pending memories."""

    @workflow.run
    async def run(self, inp: MemoryIngestInput) -> MemoryIngestResult:
        """Embed ``inp.memory_ids`` batch by batch; retries until the embedder answers."""
        retry = RetryPolicy(
            initial_interval=timedelta(seconds=inp.retry_initial_interval_s),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=inp.retry_maximum_interval_s),
            maximum_attempts=0,
            non_retryable_error_types=[errors.EMBEDDER_REJECTED],
        )
        embedded = 0
        for start in range(0, len(inp.memory_ids), EMBED_BATCH):
            batch = EmbedBatchInput(inp.tenant_id, inp.memory_ids[start : start + EMBED_BATCH])
            result: MemoryIngestResult = await workflow.execute_activity_method(
                MemoryActivities.embed,
                batch,
                start_to_close_timeout=EMBED_TIMEOUT,
                heartbeat_timeout=timedelta(seconds=60),
                retry_policy=retry,
                priority=Priority(fairness_key=inp.tenant_id),
            )
            embedded += result.embedded
        return MemoryIngestResult(embedded=embedded)


@workflow.defn
class MemoryExtractWorkflow:
    """Remembers the salient facts of one finished turn (id ``{tenant}:memory-extract:{run}:{turn}``)."""

    @workflow.run
    async def run(self, inp: MemoryExtractInput) -> list[str]:
        """The ids of the memories written; the model call is retried like a model step."""
        ids: list[str] = await workflow.execute_activity_method(
            AgentRunActivities.extract_memories,
            inp,
            start_to_close_timeout=policies.LLM_TIMEOUT,
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=policies.LLM_RETRY,
            priority=Priority(fairness_key=inp.tenant_id),
        )
        return ids


@workflow.defn
class MemoryConsolidationWorkflow:
    """Consolidates the memories of one tenant, or of every tenant that has any."""

    @workflow.run
    async def run(self, inp: ConsolidationInput) -> ConsolidationResult:
        """One ``memory.consolidate`` activity per tenant; totals of what changed."""
        if inp.tenant_id is not None:
            tenants = [inp.tenant_id]
        else:
            tenants = await workflow.execute_activity_method(
                MemoryActivities.tenants,
                start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
                retry_policy=policies.DB_RETRY,
            )
        result = ConsolidationResult(tenants=len(tenants))
        for tenant_id in tenants:
            shard = ConsolidationInput(
                tenant_id=tenant_id,
                duplicate_similarity=inp.duplicate_similarity,
                subject_cap=inp.subject_cap,
                decay_after_s=inp.decay_after_s,
                decay_factor=inp.decay_factor,
            )
            counts: dict[str, int] = await workflow.execute_activity_method(
                MemoryActivities.consolidate,
                shard,
                start_to_close_timeout=CONSOLIDATE_TIMEOUT,
                retry_policy=policies.DB_RETRY,
                priority=Priority(fairness_key=tenant_id),  # a platform workflow: each shard is its tenant's
            )
            result.by_tenant[tenant_id] = counts
            result.subjects += counts["subjects"]
            result.merged += counts["merged"]
            result.decayed += counts["decayed"]
            result.evicted += counts["evicted"]
        return result
