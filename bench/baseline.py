"""The raw Temporal baseline: a bare workflow of sequential no-op activities."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def noop(step: int) -> int:
    """Does nothing; the baseline's unit of work."""
    return step


@workflow.defn
class BaselineWorkflow:
    """``steps`` sequential no-op activities."""

    @workflow.run
    async def run(self, steps: int) -> int:
        for step in range(steps):
            await workflow.execute_activity(noop, step, start_to_close_timeout=timedelta(seconds=30))
        return steps
