"""``AgentRunWorkflow``: one agent conversation driven by retriable activities.

Loop: load the agent version → model step → tool steps → model step … →
answer. Every step is an activity with a named retry policy; the run's read
projection is written by those activities.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.agent_run import AgentRunActivities
    from core import errors, policies
    from core.contracts.agent_run import (
        AgentRunInput,
        AgentRunResult,
        BeginRunInput,
        BegunRun,
        FinishRunInput,
        LlmStepInput,
        RunStateView,
        StateQuery,
        StepView,
        ToolBinding,
        ToolStepInput,
    )
    from core.contracts.llm import ChatMessage, ToolCall, Usage


@dataclass
class _Loop:
    """Mutable state of one run, exposed through the ``state`` query."""

    run_id: str = ""
    status: str = "queued"
    steps: list[StepView] = field(default_factory=list)
    output: str | None = None
    usage: Usage = field(default_factory=Usage)

    def next_step_id(self) -> str:
        return f"s{len(self.steps) + 1}"


@workflow.defn
class AgentRunWorkflow:
    """A durable agent run."""

    def __init__(self) -> None:
        self._loop = _Loop()

    @workflow.query
    def state(self, query: StateQuery) -> RunStateView:
        """Status, steps, output and usage so far."""
        return RunStateView(
            run_id=self._loop.run_id,
            status=self._loop.status,
            steps=list(self._loop.steps) if query.include_steps else [],
            output=self._loop.output,
            usage=self._loop.usage,
        )

    @workflow.run
    async def run(self, inp: AgentRunInput) -> AgentRunResult:
        """Drive the run to an answer, recording a final status in every case."""
        self._loop.run_id = inp.run_id
        try:
            output = await self._converse(inp)
        except (ActivityError, ApplicationError) as exc:
            await self._finish(inp, "failed", error=_error_of(exc))
            raise ApplicationError(
                f"run failed: {_error_of(exc)['message']}", type=_error_of(exc)["type"], non_retryable=True
            ) from exc
        except asyncio.CancelledError:
            await self._finish(inp, "cancelled")
            raise
        await self._finish(inp, "completed", output=output)
        return AgentRunResult(run_id=inp.run_id, output=output, usage=self._loop.usage, steps=len(self._loop.steps))

    async def _converse(self, inp: AgentRunInput) -> str:
        begun: BegunRun = await workflow.execute_activity_method(
            AgentRunActivities.begin,
            BeginRunInput(inp.tenant_id, inp.run_id, inp.agent_id, inp.agent_version),
            start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
            retry_policy=policies.DB_RETRY,
        )
        self._loop.status = "running"
        messages = list(begun.messages)
        bindings = {b.name: b for b in begun.bindings}
        for _ in range(inp.max_steps):
            step_id = self._begin_step("llm", f"{begun.model.provider}:{begun.model.name}")
            result = await workflow.execute_activity_method(
                AgentRunActivities.llm,
                LlmStepInput(inp.tenant_id, inp.run_id, step_id, begun.model, messages, begun.tools),
                start_to_close_timeout=policies.LLM_TIMEOUT,
                heartbeat_timeout=timedelta(seconds=inp.heartbeat_timeout_s),
                retry_policy=policies.LLM_RETRY,
            )
            self._end_step(step_id)
            response = result.response
            self._loop.usage = self._loop.usage.add(response.usage)
            messages.append(ChatMessage(role="assistant", content=response.content, tool_calls=response.tool_calls))
            if not response.tool_calls:
                return response.content
            for call in response.tool_calls:
                messages.append(await self._call_tool(inp, call, bindings.get(call.name)))
        raise ApplicationError(
            f"no answer within {inp.max_steps} model steps", type=errors.STEP_LIMIT, non_retryable=True
        )

    async def _call_tool(self, inp: AgentRunInput, call: ToolCall, binding: ToolBinding | None) -> ChatMessage:
        step_id = self._begin_step("tool", call.name)
        timeout = binding.timeout_s if binding and binding.timeout_s else None
        result = await workflow.execute_activity_method(
            AgentRunActivities.tool,
            ToolStepInput(inp.tenant_id, inp.run_id, step_id, call, permitted=binding is not None),
            start_to_close_timeout=timedelta(seconds=timeout) if timeout else policies.TOOL_TIMEOUT,
            heartbeat_timeout=timedelta(seconds=inp.heartbeat_timeout_s),
            retry_policy=policies.tool_retry(binding.max_attempts if binding else None),
        )
        self._end_step(step_id, failed=result.is_error)
        return ChatMessage(role="tool", content=result.content, tool_call_id=call.id, name=call.name)

    async def _finish(
        self, inp: AgentRunInput, status: str, *, output: str | None = None, error: dict[str, str] | None = None
    ) -> None:
        self._loop.status, self._loop.output = status, output
        await workflow.execute_activity_method(
            AgentRunActivities.finish,
            FinishRunInput(inp.tenant_id, inp.run_id, status, output=output, error=error, usage=self._loop.usage),
            start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
            retry_policy=policies.DB_RETRY,
        )

    def _begin_step(self, kind: str, name: str) -> str:
        step_id = self._loop.next_step_id()
        self._loop.steps.append(StepView(id=step_id, kind=kind, name=name, status="running"))
        return step_id

    def _end_step(self, step_id: str, *, failed: bool = False) -> None:
        for step in self._loop.steps:
            if step.id == step_id:
                step.status = "failed" if failed else "completed"


def _error_of(exc: BaseException) -> dict[str, str]:
    """The innermost application error's type and message."""
    cause: BaseException | None = exc
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return {"type": cause.type or "ApplicationError", "message": cause.message}
    return {"type": type(cause).__name__, "message": str(cause)}
