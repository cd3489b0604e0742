"""Approvals: a tool call that requires one waits for a human decision, or its deadline."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.agent_run import AgentRunActivities
    from core import policies
    from core.contracts.agent_run import AgentRunInput, ApprovalDecision, ApprovalInput, FinishRunResult, ToolBinding
    from core.contracts.llm import ToolCall
    from workflows._helpers import wait_or_timeout

from workflows.agent_run.deliveries import deliver
from workflows.agent_run.patches import DECISION_AT_DEADLINE
from workflows.agent_run.state import RunState


class Approvals(RunState):
    """The approval step before a tool call; decisions arrive through ``decide_approval``."""

    async def _approval(self, inp: AgentRunInput, call: ToolCall, binding: ToolBinding) -> str | None:
        """Wait for a human decision on ``call``; the rejection reason, or ``None`` when approved."""
        step_id = self._begin_step("approval", call.name, status="waiting")
        request = ApprovalInput(
            inp.tenant_id, inp.run_id, step_id, tool_step_id="", call=call, deadline_s=binding.approval_timeout_s
        )
        self._waiting.append(step_id)  # decisions are accepted from now on, even before the record is written
        self._set_status("waiting_approval")
        await self._record_approval(request)
        timeout = timedelta(seconds=binding.approval_timeout_s) if binding.approval_timeout_s else None
        if await wait_or_timeout(lambda: step_id in self._decisions, timeout, patch_id=DECISION_AT_DEADLINE):
            decision = self._decisions[step_id]
        else:
            decision = ApprovalDecision(
                step_id, "reject", "deadline", f"no decision within {binding.approval_timeout_s} s"
            )
        self._waiting.remove(step_id)
        self._set_status("waiting_approval" if self._waiting else "running")
        request.decision, request.decided_by, request.comment = decision.decision, decision.decided_by, decision.comment
        await self._record_approval(request)
        self._end_step(step_id, status="completed" if decision.decision == "approve" else "rejected")
        if decision.decision == "approve":
            return None
        return decision.comment or f"rejected by {decision.decided_by}"

    async def _record_approval(self, request: ApprovalInput) -> None:
        result: FinishRunResult | None = await workflow.execute_activity_method(
            AgentRunActivities.approval,
            request,
            start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
            retry_policy=policies.DB_RETRY,
            summary=f"{request.step_id} approval of tool {request.call.name}: {request.decision or 'requested'}",
        )
        await deliver(request.tenant_id, result)
