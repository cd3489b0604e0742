"""The raw Temporal baseline: a bare workflow of no-op activities in stages."""

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
