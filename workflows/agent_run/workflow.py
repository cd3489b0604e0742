"""The ``AgentRunWorkflow`` class: its handlers (query, updates) and its run loop over turns."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from core.contracts.agent_run import (
        AGENT_RUN_WORKFLOW,
        AgentRunInput,
        AgentRunResult,
        ApprovalDecision,
        CarryOver,
        MessageAccepted,
        RetryRequest,
        RunStateView,
        SendMessage,
        StateQuery,
        UserMessage,
    )
    from workflows._helpers import error_of

from workflows.agent_run.lifecycle import RunLifecycle
from workflows.agent_run.patches import IDLE_CANCEL_KEEPS_ANSWER
from workflows.agent_run.state import Loop
from workflows.agent_run.turn import Turns


@workflow.defn(name=AGENT_RUN_WORKFLOW)
class AgentRunWorkflow(Turns, RunLifecycle):
    """A durable agent conversation."""

    @workflow.init
    def __init__(self, inp: AgentRunInput) -> None:
        super().__init__()
        carry = inp.carry
        if carry is not None and carry.received is not None:
            self._received = carry.received  # message ids stay unique across continue-as-new
        elif carry is not None:
            # Carried over before the counter was: its value is unknown, so this execution's ids get
            # a prefix of their own (the run id) and cannot collide with the earlier executions' ``m{n}``.
            self._message_prefix = f"m{workflow.info().run_id[:8]}-"

    # -- queries and updates ----------------------------------------------------------------

    @workflow.query
    def state(self, query: StateQuery | None = None) -> RunStateView:
        """Status, steps, output, usage, turn, approvals waiting and queued messages.

        Without an argument (``temporal workflow query --type state``) the steps are included.
        """
        include_steps = query.include_steps if query is not None else True
        return RunStateView(
            run_id=self._loop.run_id,
            status=self._loop.status,
            steps=list(self._loop.steps) if include_steps else [],
            output=self._loop.output,
            usage=self._loop.usage,
            turn=self._loop.turn,
            waiting_approval=list(self._waiting),
            pending_messages=len(self._pending),
        )

    @workflow.update
    def send_message(self, message: SendMessage) -> MessageAccepted:
        """Add a user message: the next turn, or — while a turn runs — per the agent's double-texting policy."""
        self._received += 1
        message_id = message.message_id or f"{self._message_prefix}{self._received}"
        self._pending.append(UserMessage(id=message_id, text=message.text))
        if self._in_turn and self._policy == "interrupt":
            self._interrupt = True
        return MessageAccepted(message_id=message_id, turn=self._loop.turn + 1, policy=self._policy)

    @send_message.validator
    def _validate_message(self, message: SendMessage) -> None:
        if self._closed or self._loop.status in ("failed", "cancelled"):
            raise ApplicationError(f"run is {self._loop.status if not self._closed else 'closed'}", type="RunClosed")
        if self._in_turn and self._policy == "reject":
            raise ApplicationError("a turn is running and this agent rejects messages meanwhile", type="TurnRunning")
        if not message.text:
            raise ApplicationError("empty message", type="InvalidMessage")

    @workflow.update
    def decide_approval(self, decision: ApprovalDecision) -> str:
        """Approve or reject a tool call that waits for a human."""
        self._decisions[decision.step_id] = decision
        return decision.decision

    @decide_approval.validator
    def _validate_decision(self, decision: ApprovalDecision) -> None:
        if decision.step_id not in self._waiting or decision.step_id in self._decisions:
            raise ApplicationError(f"step {decision.step_id} is not waiting for approval", type="NotWaiting")
        if decision.decision not in ("approve", "reject"):
            raise ApplicationError("decision must be approve or reject", type="InvalidDecision")

    @workflow.update
    def retry(self, request: RetryRequest) -> str:
        """Continue a failed run from the step that failed."""
        self._retry = True
        return "retrying"

    @retry.validator
    def _validate_retry(self, request: RetryRequest) -> None:
        if self._closed or self._loop.status != "failed":
            raise ApplicationError(f"run is {self._loop.status}, not failed", type="NotFailed")

    # -- the run --------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: AgentRunInput) -> AgentRunResult:
        """Drive turns until the conversation goes idle (or fails for good, or is cancelled)."""
        carry = inp.carry or CarryOver()
        self._loop = Loop(run_id=inp.run_id, usage=carry.usage, turn=max(carry.turn, 1), step_offset=carry.steps)
        self._pending = list(carry.pending) + self._pending  # messages accepted before the run started
        try:
            try:
                begun = carry.begun or await self._begin(inp)
            except ActivityError as exc:
                error = error_of(exc)
                raise ApplicationError(error["message"], type=error["type"], non_retryable=True) from exc
            self._policy = begun.double_texting
            inp.thread_id = inp.thread_id or begun.thread_id
            executed_turns = 0
            needs_start = inp.carry is not None
            while True:
                if needs_start:
                    await self._start_turn(inp)
                needs_start = True
                answer = await self._turn_with_retries(inp, begun)
                await self._finish(inp, "completed", answer=answer)
                executed_turns += 1
                try:
                    if not self._pending and not await self._wait_for_message(inp.idle_timeout_s):
                        break
                except asyncio.CancelledError:
                    if not workflow.patched(IDLE_CANCEL_KEEPS_ANSWER):
                        raise
                    # Cancelled between turns: the conversation closes; the completed turn's answer stays.
                    break
                self._loop.turn += 1
                if executed_turns >= inp.max_turns_per_execution or workflow.info().is_continue_as_new_suggested():
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    workflow.continue_as_new(self._carry(inp, begun))
        except asyncio.CancelledError:
            await self._finish(inp, "cancelled")
            await self._announce_close(inp, "cancelled")
            raise
        except FailureError:  # the run fails (continue-as-new is no exception: it passes)
            await self._announce_close(inp, "failed")
            raise
        finally:
            self._closed = True
        await self._announce_close(inp, self._loop.status)
        return AgentRunResult(
            run_id=inp.run_id,
            output=self._loop.output or "",
            usage=self._loop.usage,
            steps=self._loop.step_offset + len(self._loop.steps),
            turns=self._loop.turn,
        )
