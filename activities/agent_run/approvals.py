"""The approval step: ``approval`` records that a tool call awaits a human, then the decision."""

from __future__ import annotations

import structlog
from temporalio import activity

from activities.agent_run.base import AgentRunBase
from activities.agent_run.steps import step_seq
from activities.errors import classify_database_errors
from core.contracts.agent_run import ApprovalInput, FinishRunResult
from core.db.models import utcnow
from core.db.projection import StepRecord
from core.telemetry import metrics


class ApprovalActivities(AgentRunBase):
    """The ``approval`` activity."""

    @activity.defn(name="agent_run.approval")
    @classify_database_errors
    async def approval(self, inp: ApprovalInput) -> FinishRunResult:
        """Record that a tool call awaits a human (status ``waiting_approval``), or the decision."""
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, run_id=inp.run_id)
        info = activity.info()
        waiting = inp.decision is None
        step = StepRecord(
            step_id=inp.step_id,
            seq=step_seq(inp.step_id),
            kind="approval",
            name=inp.call.name,
            status="waiting" if waiting else ("completed" if inp.decision == "approve" else "rejected"),
            input={"tool_step_id": inp.tool_step_id, "arguments": inp.call.arguments, "deadline_s": inp.deadline_s},
            output=None
            if waiting
            else {
                "decision": inp.decision,
                "decided_by": inp.decided_by,
                "comment": inp.comment,
                "at": utcnow().isoformat(),
            },
            started_at=utcnow() if waiting else None,
            ended_at=None if waiting else utcnow(),
        )
        if waiting:
            async with self._projection.engine.begin() as conn:  # a reader sees the waiting step and status together
                await self._projection.record_step(inp.tenant_id, inp.run_id, step, conn=conn)
                await self._projection.set_status(inp.tenant_id, inp.run_id, "waiting_approval", conn=conn)
            await self._announce(inp.tenant_id, inp.run_id, step)
        else:
            # The decision commits first, so concurrent decisions each see the others' steps when they check.
            await self._record(inp.tenant_id, inp.run_id, step)
            await self._projection.resume_after_approval(inp.tenant_id, inp.run_id)
        if info.attempt == 1:
            metrics.APPROVALS_WAITING.inc() if waiting else metrics.APPROVALS_WAITING.dec()
        if not waiting:
            return FinishRunResult()
        data = {"step_id": inp.step_id, "tool": inp.call.name, "arguments": inp.call.arguments}
        await self._events.publish(inp.tenant_id, inp.run_id, "approval.requested", data)
        return FinishRunResult(
            delivery_ids=await self._deliveries(inp.tenant_id, inp.run_id, "run.waiting_approval", inp.step_id, data),
            webhooks_task_queue=self._webhooks_task_queue,
        )
