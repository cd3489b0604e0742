"""Memory workflows: durable embedding of new memories, and scheduled consolidation.

``MemoryIngestWorkflow`` (id ``{tenant}:memory-ingest:{memory id or batch hash}``)
embeds pending memories in batches; an embedder that is down is retried with
backoff until it answers, so an accepted write is never lost.
``MemoryExtractWorkflow`` extracts the facts of a finished turn, started by the run's
``finish`` so that a slow or failing model never holds up the run.
``MemoryConsolidationWorkflow`` runs from the ``memory-consolidation`` Schedule:
one activity per tenant (the shard), merging near-duplicates, decaying memories
never retrieved and capping each subject. Since ``CONSOLIDATION_PAGED`` it lists the
tenants a page at a time, consolidates a page's tenants a few at a time with bounded,
heartbeated attempts, reports a tenant that fails instead of stopping the pass, and
continues as new after each page.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.memory import MemoryActivities, MemoryExtractionActivities
    from core import errors, policies
    from core.contracts.memory import (
        EMBED_BATCH,
        MAX_FAILURE_CHARS,
        MAX_REPORTED_TENANTS,
        ConsolidationInput,
        ConsolidationResult,
        EmbedBatchInput,
        MemoryExtractInput,
        MemoryIngestInput,
        MemoryIngestResult,
        TenantPageInput,
    )

EMBED_TIMEOUT = timedelta(minutes=5)
CONSOLIDATE_TIMEOUT = timedelta(minutes=30)
CONSOLIDATE_HEARTBEAT = timedelta(seconds=60)
"""The activity beats after each subject; one subject taking longer than this counts as a lost worker."""
CONSOLIDATION_PAGED = "memory-consolidation-paged"
"""Patch: paged tenants, bounded concurrent attempts per tenant, failures reported, continue-as-new per page."""


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
                summary=f"embed memories {start + 1}-{start + len(batch.memory_ids)} of {len(inp.memory_ids)}",
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
            MemoryExtractionActivities.extract_memories,
            inp,
            start_to_close_timeout=policies.LLM_TIMEOUT,
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=policies.LLM_RETRY,
            priority=Priority(fairness_key=inp.tenant_id),
            summary="extract memories from the run's thread",
        )
        return ids


@workflow.defn
class MemoryConsolidationWorkflow:
    """Consolidates the memories of one tenant, or of every tenant that has any."""

    @workflow.run
    async def run(self, inp: ConsolidationInput) -> ConsolidationResult:
        """One ``memory.consolidate`` activity per tenant; totals of what changed (and which tenants failed)."""
        if workflow.patched(CONSOLIDATION_PAGED):
            return await self._paged(inp)
        return await self._serial(inp)

    async def _paged(self, inp: ConsolidationInput) -> ConsolidationResult:
        result = inp.totals or ConsolidationResult()
        if inp.tenant_id is not None:
            tenants, last_page = [inp.tenant_id], True
        else:
            page_size = max(1, inp.page_size)
            tenants = await workflow.execute_activity_method(
                MemoryActivities.tenant_page,
                TenantPageInput(limit=page_size, after=inp.after),
                start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
                retry_policy=policies.DB_RETRY,
                summary=f"list {page_size} tenants after {inp.after or 'the first'}",
            )
            last_page = len(tenants) < page_size
        result.pages += 1
        gate = asyncio.Semaphore(max(1, inp.concurrency))

        async def one(tenant_id: str) -> None:
            async with gate:
                await self._consolidate_one(inp, tenant_id, result)

        await asyncio.gather(*(one(t) for t in tenants))
        if not last_page and tenants:
            workflow.continue_as_new(
                ConsolidationInput(
                    duplicate_similarity=inp.duplicate_similarity,
                    subject_cap=inp.subject_cap,
                    decay_after_s=inp.decay_after_s,
                    decay_factor=inp.decay_factor,
                    page_size=inp.page_size,
                    concurrency=inp.concurrency,
                    after=tenants[-1],
                    totals=result,
                )
            )
        if result.failed_count:
            workflow.logger.warning(
                "memory consolidation finished with failed tenants",
                extra={"failed_count": result.failed_count, "tenants": result.tenants},
            )
        return result

    async def _consolidate_one(self, inp: ConsolidationInput, tenant_id: str, result: ConsolidationResult) -> None:
        shard = ConsolidationInput(
            tenant_id=tenant_id,
            duplicate_similarity=inp.duplicate_similarity,
            subject_cap=inp.subject_cap,
            decay_after_s=inp.decay_after_s,
            decay_factor=inp.decay_factor,
        )
        result.tenants += 1
        try:
            counts: dict[str, int] = await workflow.execute_activity_method(
                MemoryActivities.consolidate,
                shard,
                start_to_close_timeout=CONSOLIDATE_TIMEOUT,
                heartbeat_timeout=CONSOLIDATE_HEARTBEAT,
                retry_policy=policies.CONSOLIDATE_RETRY,
                priority=Priority(fairness_key=tenant_id),  # a platform workflow: each shard is its tenant's
                summary=f"consolidate tenant {tenant_id}",
            )
        except ActivityError as exc:
            cause = exc.cause
            kind = (cause.type if isinstance(cause, ApplicationError) else None) or type(cause).__name__
            message = f"{kind}: {cause.message if isinstance(cause, ApplicationError) else cause}"
            result.failed_count += 1
            if len(result.failed) < MAX_REPORTED_TENANTS:
                result.failed[tenant_id] = message[:MAX_FAILURE_CHARS]
            workflow.logger.warning(
                "memory consolidation of a tenant failed",
                extra={"failed_tenant_id": tenant_id, "error": message[:MAX_FAILURE_CHARS]},
            )
            return
        if len(result.by_tenant) < MAX_REPORTED_TENANTS:
            result.by_tenant[tenant_id] = counts
        result.subjects += counts["subjects"]
        result.merged += counts["merged"]
        result.decayed += counts["decayed"]
        result.evicted += counts["evicted"]

    async def _serial(self, inp: ConsolidationInput) -> ConsolidationResult:
        """The command sequence from before ``CONSOLIDATION_PAGED``, for passes started then."""
        if inp.tenant_id is not None:
            tenants = [inp.tenant_id]
        else:
            tenants = await workflow.execute_activity_method(
                MemoryActivities.tenants,
                start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
                retry_policy=policies.DB_RETRY,
                summary="list tenants",
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
                summary=f"consolidate tenant {tenant_id}",
            )
            result.by_tenant[tenant_id] = counts
            result.subjects += counts["subjects"]
            result.merged += counts["merged"]
            result.decayed += counts["decayed"]
            result.evicted += counts["evicted"]
        return result
