"""Tool calls of a model answer: its plan, each call (after its approval), and ``run_agent`` children."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import Priority, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.agent_run import AgentRunActivities
    from core import policies
    from core.contracts.agent_run import (
        AgentRunInput,
        AgentRunResult,
        BegunRun,
        ChildRun,
        ChildRunInput,
        ToolBinding,
        ToolStepInput,
        ToolStepResult,
    )
    from core.contracts.llm import ToolCall
    from core.ids import AGENT_ID, RUN_KIND, TENANT_ID
    from core.tools.run_agent import RUN_AGENT
    from workflows._helpers import error_of

from workflows.agent_run.approvals import Approvals
from workflows.agent_run.patches import PARALLEL_TOOLS, TOOL_CALL_LIMIT
from workflows.agent_run.state import Plan

MAX_CONCURRENT_TOOL_CALLS = 8
"""Tool calls of one answer in flight at once (their thread appends contend for the thread's end)."""


class ToolCalls(Approvals):
    """The ``tool`` (and ``child``) activities of a turn, run from the answer's :class:`Plan`."""

    async def _run_plan(self, inp: AgentRunInput, begun: BegunRun) -> None:
        """Run the answer's tool calls that are left: concurrently when the agent allows, else in order.

        After a failure the plan keeps only the calls that did not complete, so a retry
        runs just those.
        """
        plan = self._plan
        assert plan is not None
        bindings = {b.name: b for b in begun.bindings}
        if len(plan.calls) > 1 and begun.parallel_tool_calls and workflow.patched(PARALLEL_TOOLS):
            calls = list(plan.calls)
            # Runs started before the limit scheduled all calls of the answer at once.
            limit = MAX_CONCURRENT_TOOL_CALLS if workflow.patched(TOOL_CALL_LIMIT) else len(calls)
            slots = asyncio.Semaphore(limit)

            async def bounded(call: ToolCall) -> None:
                async with slots:
                    await self._call_tool(inp, call, bindings.get(call.name), plan)

            outcomes = await asyncio.gather(*(bounded(call) for call in calls), return_exceptions=True)
            failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
            plan.calls = [call for call, outcome in zip(calls, outcomes, strict=True) if outcome in failures]
            if failures:
                raise failures[0]
        while plan.calls:
            call = plan.calls[0]
            await self._call_tool(inp, call, bindings.get(call.name), plan)
            plan.calls.pop(0)
        self._plan = None

    async def _call_tool(self, inp: AgentRunInput, call: ToolCall, binding: ToolBinding | None, plan: Plan) -> None:
        rejection = None
        if binding is not None and binding.requires_approval:
            rejection = await self._approval(inp, call, binding)
        step_id = self._begin_step("tool", call.name)
        outcome = None
        if binding is not None and call.name == RUN_AGENT and rejection is None:
            outcome = await self._run_child(inp, step_id, call)
        timeout = binding.timeout_s if binding and binding.timeout_s else None
        try:
            result = await workflow.execute_activity_method(
                AgentRunActivities.tool,
                ToolStepInput(
                    inp.tenant_id,
                    inp.run_id,
                    step_id,
                    call,
                    permitted=binding is not None,
                    thread_id=inp.thread_id,
                    assistant=plan.assistant,
                    assistant_key=plan.assistant_key,
                    rejection=rejection,
                    outcome=outcome,
                ),
                start_to_close_timeout=timedelta(seconds=timeout) if timeout else policies.TOOL_TIMEOUT,
                heartbeat_timeout=timedelta(seconds=inp.heartbeat_timeout_s),
                retry_policy=policies.tool_retry(binding.max_attempts if binding else None),
                summary=f"{step_id} tool {call.name}" + (" (rejected)" if rejection is not None else ""),
            )
        except BaseException:
            self._end_step(step_id, status="failed")
            raise
        self._end_step(step_id, status="failed" if result.is_error else "completed")

    async def _run_child(self, inp: AgentRunInput, step_id: str, call: ToolCall) -> ToolStepResult:
        """Run another agent of the tenant as a child workflow; its usage rolls up into this run."""
        from workflows.agent_run.workflow import AgentRunWorkflow  # here: that module imports this one

        agent_id, text = str(call.arguments.get("agent_id", "")), str(call.arguments.get("input", ""))
        if not agent_id or not text:
            return ToolStepResult(content="error: run_agent needs agent_id and input", is_error=True)
        child: ChildRun = await workflow.execute_activity_method(
            AgentRunActivities.child,
            ChildRunInput(inp.tenant_id, inp.run_id, step_id, agent_id, text),
            start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
            retry_policy=policies.DB_RETRY,
            summary=f"{step_id} child run of agent {agent_id}",
        )
        if child.error:
            return ToolStepResult(content=f"error: {child.error}", is_error=True)
        try:
            result: AgentRunResult = await workflow.execute_child_workflow(
                AgentRunWorkflow.run,
                AgentRunInput(
                    inp.tenant_id,
                    child.run_id,
                    child.agent_id,
                    child.agent_version,
                    max_steps=inp.max_steps,
                    heartbeat_timeout_s=inp.heartbeat_timeout_s,
                    thread_id=child.thread_id,
                ),
                id=child.workflow_id,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(TENANT_ID, inp.tenant_id),
                        SearchAttributePair(AGENT_ID, child.agent_id),
                        SearchAttributePair(RUN_KIND, "agent_run"),
                    ]
                ),
                priority=Priority(fairness_key=inp.tenant_id),
            )
        except ChildWorkflowError as exc:
            return ToolStepResult(content=f"error: the agent failed: {error_of(exc)['message']}", is_error=True)
        self._loop.usage = self._loop.usage.add(result.usage)
        return ToolStepResult(content=result.output, data={"run_id": child.run_id, "output": result.output})
