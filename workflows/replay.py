"""``ReplayWorkflow``: a candidate version re-run on recorded runs' inputs, tool calls answered from the recordings.

The replay is marked ``running``; each run is replayed by a ``replay.run`` activity (at most
``concurrency`` in flight, on the tenant's fairness key) that writes its result; the summary
(means of both scores where there are any, runs with calls not in the recording, usage) is
written with the final status. A cancelled replay records ``cancelled``; a failed activity
(after its retries) fails the replay with the error's type and message.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.replay import ReplayActivities
    from core.contracts.optimizer import OptimizerRunStatus
    from core.contracts.replay import (
        REPLAY_FAILED,
        REPLAY_WORKFLOW_NAME,
        ReplayedRun,
        ReplayInput,
        ReplayRecordInput,
        ReplayRunInput,
    )
    from workflows._helpers import recorded_outcome, tenant_activity


@workflow.defn(name=REPLAY_WORKFLOW_NAME)
class ReplayWorkflow:
    """One replay; see the module docstring."""

    def __init__(self) -> None:
        self._inp: ReplayInput | None = None

    @workflow.run
    async def run(self, inp: ReplayInput) -> dict[str, Any]:
        """Replay every run; the summary."""
        self._inp = inp

        async def cancelled() -> None:
            await self._record(OptimizerRunStatus.CANCELLED)

        async def failed(error: dict[str, str]) -> None:
            await self._record(OptimizerRunStatus.FAILED, error=error)

        return await recorded_outcome(self._replay(inp), cancelled=cancelled, failed=failed, failure_type=REPLAY_FAILED)

    async def _replay(self, inp: ReplayInput) -> dict[str, Any]:
        await self._record(OptimizerRunStatus.RUNNING)
        slots = asyncio.Semaphore(max(inp.concurrency, 1))

        async def one(run_id: str) -> ReplayedRun:
            async with slots:
                arg = ReplayRunInput(inp.tenant_id, inp.replay_id, inp.agent_id, inp.version, run_id, inp.metric)
                result: ReplayedRun = await tenant_activity(inp, ReplayActivities.run, arg, ReplayedRun, heartbeat=True)
                return result

        replayed = await asyncio.gather(*(one(run_id) for run_id in inp.run_ids))
        summary = summarize(list(replayed))
        await self._record(OptimizerRunStatus.COMPLETED, summary=summary)
        return summary

    async def _record(
        self,
        status: OptimizerRunStatus,
        *,
        summary: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        assert self._inp is not None
        arg = ReplayRecordInput(self._inp.tenant_id, self._inp.replay_id, status.value, summary, error)
        await tenant_activity(self._inp, ReplayActivities.record, arg, type(None))


def summarize(replayed: list[ReplayedRun]) -> dict[str, Any]:
    """The replay's summary: runs, mean scores (``None`` without scores), runs with new calls, usage."""

    def mean(values: list[float | None]) -> float | None:
        scored = [v for v in values if v is not None]
        return sum(scored) / len(scored) if scored else None

    return {
        "runs": len(replayed),
        "failed": sum(1 for r in replayed if r.outcome == "failed"),
        "recorded_mean": mean([r.recorded_score for r in replayed]),
        "candidate_mean": mean([r.candidate_score for r in replayed]),
        "from_recording": sum(r.from_recording for r in replayed),
        "not_in_recording": sum(r.not_in_recording for r in replayed),
        "runs_with_new_calls": sum(1 for r in replayed if r.not_in_recording),
        "input_tokens": sum(r.input_tokens for r in replayed),
        "output_tokens": sum(r.output_tokens for r in replayed),
        "cost_usd": round(sum(r.cost_usd for r in replayed), 8),
    }
