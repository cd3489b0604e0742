"""``PipelineMapChunkWorkflow``: runs a slice of a large map's items for its ``PipelineWorkflow``.

A map of more than ``MAP_INLINE_ITEMS`` items (or one that would pass the run's
``RUN_INLINE_ITEMS``) runs its items in these children, so that the run's own history grows by
a few events per chunk, not per item. The parent prepares each chunk's items (their fields
rendered) and gives the chunk a share of the map's ``max_concurrency`` and of its output bound;
the chunk runs them with the same step code as the run (``PipelineWorkflow._run_items``),
records each as step ``<map id>[<index>]`` of the parent's run in the projection (it never
writes the run's status), and answers their records and usage. Cancelled, it cancels its
running items, records them ``cancelled`` and ends cancelled.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from core.contracts.pipelines import MAP_CHUNK_WORKFLOW_NAME, MapChunkInput, MapChunkResult, StepRecord
    from core.pipelines.definition import MapStep
    from core.pipelines.scheduler import OutputBudget

from workflows.pipeline import PipelineWorkflow


@workflow.defn(name=MAP_CHUNK_WORKFLOW_NAME)
class PipelineMapChunkWorkflow(PipelineWorkflow):
    """Some items of one map of a pipeline run; see the module docstring."""

    @workflow.run
    async def run(self, inp: MapChunkInput) -> MapChunkResult:  # type: ignore[override]
        """Run the chunk's items, at most ``inp.concurrency`` at once, and answer their records."""
        self._inp = inp.run
        self._owns_run = False
        step = MapStep.model_validate(inp.step)
        positions = {item.index: position for position, item in enumerate(inp.items)}
        records = [StepRecord() for _ in range(max(positions, default=-1) + 1)]
        writer = asyncio.create_task(self._write_loop())
        try:
            await self._run_items(
                step,
                [(inp.map_id, item.index, item.arguments) for item in inp.items],
                inp.concurrency,
                OutputBudget(left=inp.output_budget),
                records,
            )
        finally:
            self._closing = True
            await writer
        started = {f"{inp.map_id}[{item.index}]" for item in inp.items} & self._records.keys()
        return MapChunkResult(
            records=[records[i.index] if f"{inp.map_id}[{i.index}]" in started else None for i in inp.items],
            input_tokens=self._usage.input_tokens,
            output_tokens=self._usage.output_tokens,
            cost_usd=self._usage.cost_usd,
        )
