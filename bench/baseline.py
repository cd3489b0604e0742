"""The raw Temporal baselines: bare workflows of no-op activities, in stages or fanned out."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def noop(step: int) -> int:
    """Does nothing; the baseline's unit of work."""
    return step


@workflow.defn
class BaselineWorkflow:
    """Stages run one after another; the ``width`` no-op activities of a stage run concurrently."""

    @workflow.run
    async def run(self, widths: list[int]) -> int:
        step = 0
        for width in widths:
            await asyncio.gather(
                *(
                    workflow.execute_activity(noop, step + i, start_to_close_timeout=timedelta(seconds=30))
                    for i in range(width)
                )
            )
            step += width
        return step


@workflow.defn
class FanOutWorkflow:
    """``count`` no-op activities, at most ``limit`` in flight (what a map step does, written directly)."""

    @workflow.run
    async def run(self, count: int, limit: int) -> int:
        slots = asyncio.Semaphore(limit)

        async def one(index: int) -> int:
            async with slots:
                return await workflow.execute_activity(noop, index, start_to_close_timeout=timedelta(seconds=30))

        return len(await asyncio.gather(*(one(i) for i in range(count))))
