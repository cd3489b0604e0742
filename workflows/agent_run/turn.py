"""A turn: model step → tool calls → model step … → answer; after a failure, retried on ``retry``."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from core import errors
    from core.contracts.agent_run import AgentRunInput, BegunRun, LlmStepResult
    from core.contracts.llm import ChatMessage
    from workflows._helpers import error_of, wait_or_timeout

from workflows.agent_run.lifecycle import RunLifecycle
from workflows.agent_run.model_step import Interrupted, ModelStep
from workflows.agent_run.patches import CANCEL_IN_STEP, RETRY_AT_DEADLINE
from workflows.agent_run.state import Plan
from workflows.agent_run.tool_calls import ToolCalls


class Turns(RunLifecycle, ModelStep, ToolCalls):
    """The steps of one turn, up to the agent's ``max_steps``."""

    async def _turn_with_retries(self, inp: AgentRunInput, begun: BegunRun) -> LlmStepResult:
        """One turn; after a failure, wait for ``retry`` and continue from the failed step."""
        while True:
            try:
                return await self._turn(inp, begun)
            except (ActivityError, ApplicationError) as exc:
                if is_cancelled_exception(exc) and workflow.patched(CANCEL_IN_STEP):
                    # The run was cancelled while a step ran: the step reports it as its own failure.
                    raise asyncio.CancelledError() from exc
                error = error_of(exc)
                await self._finish(inp, "failed", error=error)
                if not await self._wait_for_retry(inp.retry_window_s):
                    raise ApplicationError(
                        f"run failed: {error['message']}", type=error["type"], non_retryable=True
                    ) from exc
                self._retry = False
                await self._start_turn(inp)

    async def _wait_for_retry(self, window_s: float) -> bool:
        if window_s <= 0:
            return False
        return await wait_or_timeout(lambda: self._retry, timedelta(seconds=window_s), patch_id=RETRY_AT_DEADLINE)

    async def _turn(self, inp: AgentRunInput, begun: BegunRun) -> LlmStepResult:
        self._in_turn = True
        try:
            for _ in range(inp.max_steps):
                if self._plan is not None:
                    await self._run_plan(inp, begun)
                try:
                    result = await self._model_step(inp, begun)
                except Interrupted as interrupted:
                    self._interrupt = False
                    await self._start_turn(inp, interrupted=str(interrupted))
                    continue
                response = result.response
                self._loop.usage = self._loop.usage.add(response.usage)
                if not response.tool_calls:
                    return result
                step_key = f"{workflow.info().workflow_id}:{self._loop.steps[-1].id}:assistant"
                self._plan = Plan(
                    assistant=ChatMessage(role="assistant", content=response.content, tool_calls=response.tool_calls),
                    assistant_key=step_key,
                    calls=list(response.tool_calls),
                )
            raise ApplicationError(
                f"no answer within {inp.max_steps} model steps", type=errors.STEP_LIMIT, non_retryable=True
            )
        finally:
            self._in_turn = False
