"""The model step: one call of the agent's model, cancelled when a message interrupts it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.agent_run import AgentRunActivities
    from core import policies
    from core.contracts.agent_run import AgentRunInput, BegunRun, LlmStepInput, LlmStepResult

from workflows.agent_run.patches import CANCEL_MODEL_STEP
from workflows.agent_run.state import RunState


class Interrupted(Exception):  # noqa: N818 - a control-flow signal, not an error
    """A new message interrupted the model step in flight."""


class ModelStep(RunState):
    """The ``llm`` activity of a turn."""

    async def _model_step(self, inp: AgentRunInput, begun: BegunRun) -> LlmStepResult:
        step_id = self._begin_step("llm", f"{begun.model.provider}:{begun.model.name}")
        call = workflow.execute_activity_method(
            AgentRunActivities.llm,
            LlmStepInput(
                inp.tenant_id,
                inp.run_id,
                step_id,
                begun.model,
                tools=begun.tools,
                thread_id=inp.thread_id,
                agent_id=inp.agent_id,
                agent_version=inp.agent_version,
            ),
            start_to_close_timeout=policies.LLM_TIMEOUT,
            heartbeat_timeout=timedelta(seconds=inp.heartbeat_timeout_s),
            retry_policy=policies.llm_retry(_int_param(begun.model.params.get("max_attempts"))),
            cancellation_type=ActivityCancellationType.TRY_CANCEL,
            summary=f"{step_id} model {begun.model.provider}:{begun.model.name}",
        )
        task = asyncio.ensure_future(call)
        try:
            await workflow.wait_condition(lambda: task.done() or self._interrupt)
        except asyncio.CancelledError:
            if not task.done() and workflow.patched(CANCEL_MODEL_STEP):
                # The run is cancelled: cancel the model call too (it hears it on its next heartbeat).
                task.cancel()
                self._end_step(step_id, status="cancelled")
            raise
        if not task.done():
            task.cancel()
            self._end_step(step_id, status="cancelled")
            raise Interrupted(step_id)
        try:
            result: LlmStepResult = task.result()
        except BaseException:
            self._end_step(step_id, status="failed")
            raise
        self._end_step(step_id)
        return result


def _int_param(value: object) -> int | None:
    return value if isinstance(value, int) and 0 < value <= 20 else None
