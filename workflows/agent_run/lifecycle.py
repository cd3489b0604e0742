"""The run's lifecycle: begin, start a turn, finish it, wait between turns, carry over, close."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.agent_run import AgentRunActivities
    from core import policies
    from core.contracts.agent_run import (
        AgentRunInput,
        BeginRunInput,
        BegunRun,
        CarryOver,
        CloseRunInput,
        FinishRunInput,
        FinishRunResult,
        LlmStepResult,
        StartTurnInput,
    )
    from core.contracts.llm import ChatMessage
    from workflows._helpers import wait_or_timeout

from workflows.agent_run.deliveries import deliver
from workflows.agent_run.patches import LOCAL_BEGIN, LOCAL_FINISH, MESSAGE_AT_IDLE_DEADLINE, RUN_CLOSED_EVENT
from workflows.agent_run.state import RunState


class RunLifecycle(RunState):
    """The activities that open, advance and close the run's record."""

    async def _begin(self, inp: AgentRunInput) -> BegunRun:
        request = BeginRunInput(inp.tenant_id, inp.run_id, inp.agent_id, inp.agent_version, thread_id=inp.thread_id)
        begun: BegunRun
        summary = f"begin run: agent {inp.agent_id} v{inp.agent_version}"
        if workflow.patched(LOCAL_BEGIN):
            # A few fast database writes: run in the workflow's own task, no activity task round trip.
            begun = await workflow.execute_local_activity_method(
                AgentRunActivities.begin,
                request,
                start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
                retry_policy=policies.DB_RETRY,
                summary=summary,
            )
        else:
            begun = await workflow.execute_activity_method(
                AgentRunActivities.begin,
                request,
                start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
                retry_policy=policies.DB_RETRY,
                summary=summary,
            )
        self._set_status("running")
        return begun

    async def _start_turn(self, inp: AgentRunInput, *, interrupted: str | None = None) -> None:
        messages, self._pending = self._pending, []
        self._set_status("running")
        await workflow.execute_activity_method(
            AgentRunActivities.start_turn,
            StartTurnInput(
                inp.tenant_id,
                inp.run_id,
                inp.thread_id,
                self._loop.turn,
                messages=messages,
                interrupted_step_id=interrupted,
            ),
            start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
            retry_policy=policies.DB_RETRY,
            summary=f"turn {self._loop.turn}: start" + (f" (interrupts {interrupted})" if interrupted else ""),
        )

    async def _finish(
        self,
        inp: AgentRunInput,
        status: str,
        *,
        answer: LlmStepResult | None = None,
        error: dict[str, str] | None = None,
    ) -> None:
        output = answer.response.content if answer else None
        self._loop.output = output if answer else self._loop.output
        self._set_status(status)
        request = FinishRunInput(
            inp.tenant_id,
            inp.run_id,
            status,
            output=output,
            error=error,
            usage=self._loop.usage,
            thread_id=inp.thread_id,
            turn=self._loop.turn,
            answer=ChatMessage(role="assistant") if answer else None,
            answer_key=f"{workflow.info().workflow_id}:answer:{self._loop.turn}" if answer else None,
            output_ref=answer.content_ref if answer else None,
        )
        # Retried until the database takes it: a run's final status must never be lost.
        retry = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))
        result: FinishRunResult | None
        summary = f"turn {self._loop.turn}: {status}"
        if workflow.patched(LOCAL_FINISH):
            # A few fast database writes and an event: run in the workflow's own task.
            result = await workflow.execute_local_activity_method(
                AgentRunActivities.finish,
                request,
                start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
                retry_policy=retry,
                summary=summary,
            )
        else:
            result = await workflow.execute_activity_method(
                AgentRunActivities.finish,
                request,
                start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
                retry_policy=retry,
                summary=summary,
            )
        await deliver(inp.tenant_id, result)

    async def _wait_for_message(self, timeout_s: float) -> bool:
        if timeout_s <= 0:
            return False
        return await wait_or_timeout(
            lambda: bool(self._pending), timedelta(seconds=timeout_s), patch_id=MESSAGE_AT_IDLE_DEADLINE
        )

    def _carry(self, inp: AgentRunInput, begun: BegunRun) -> AgentRunInput:
        carry = CarryOver(
            turn=self._loop.turn,
            steps=self._loop.step_offset + len(self._loop.steps),
            usage=self._loop.usage,
            pending=list(self._pending),
            begun=begun,
            received=self._received,
        )
        return AgentRunInput(
            tenant_id=inp.tenant_id,
            run_id=inp.run_id,
            agent_id=inp.agent_id,
            agent_version=inp.agent_version,
            max_steps=inp.max_steps,
            heartbeat_timeout_s=inp.heartbeat_timeout_s,
            thread_id=inp.thread_id,
            idle_timeout_s=inp.idle_timeout_s,
            retry_window_s=inp.retry_window_s,
            max_turns_per_execution=inp.max_turns_per_execution,
            carry=carry,
        )

    async def _announce_close(self, inp: AgentRunInput, status: str) -> None:
        """Refuse messages from now on and publish ``run.closed``: the run's event streams end there.

        Best effort, retried briefly: a run never stays open for its announcement (streams
        that miss it find the workflow closed in Temporal). A regular activity, not a local
        one: on a worker that lacks it, it fails and the run closes (a local one would
        fail the workflow task, again and again).
        """
        self._closed = True
        if not workflow.patched(RUN_CLOSED_EVENT):
            return
        try:
            await workflow.execute_activity_method(
                AgentRunActivities.close,
                CloseRunInput(tenant_id=inp.tenant_id, run_id=inp.run_id, status=status, turn=self._loop.turn),
                start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=3),
                summary=f"close run: {status}",
            )
        except ActivityError as exc:
            workflow.logger.warning("run.closed not published", extra={"error": str(exc.cause or exc)})
