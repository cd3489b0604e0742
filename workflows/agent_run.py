"""``AgentRunWorkflow``: one durable, multi-turn agent conversation.

A turn: model step → tool steps (each possibly waiting for a human approval) →
model step … → answer. Every step is an activity with a named retry policy; the
conversation lives in PostgreSQL (``thread_message``) and the workflow passes
references. Between turns the run waits for ``send_message``; a failed turn
waits for ``retry`` and then continues from the step that failed. Long
conversations continue-as-new between turns.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import (
    Priority,
    RetryPolicy,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    FailureError,
    is_cancelled_exception,
)
from temporalio.workflow import ActivityCancellationType, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.agent_run import AgentRunActivities
    from core import errors, policies
    from core.contracts.agent_run import (
        AgentRunInput,
        AgentRunResult,
        ApprovalDecision,
        ApprovalInput,
        BeginRunInput,
        BegunRun,
        CarryOver,
        ChildRun,
        ChildRunInput,
        CloseRunInput,
        FinishRunInput,
        FinishRunResult,
        LlmStepInput,
        LlmStepResult,
        MessageAccepted,
        RetryRequest,
        RunStateView,
        SendMessage,
        StartTurnInput,
        StateQuery,
        StepView,
        ToolBinding,
        ToolStepInput,
        ToolStepResult,
        UserMessage,
    )
    from core.contracts.llm import ChatMessage, ToolCall, Usage
    from core.ids import AGENT_ID, RUN_KIND, TENANT_ID
    from core.tools.run_agent import RUN_AGENT
    from core.webhooks import WebhookDeliveryInput, delivery_workflow_id
    from workflows._helpers import error_of, start_child_once, wait_or_timeout
    from workflows.webhook_delivery import WebhookDeliveryWorkflow

FINAL = ("completed", "failed", "cancelled")
LOCAL_BEGIN = "begin-as-local-activity"
"""Patch id: runs started before it scheduled ``begin`` as a regular activity."""
LOCAL_FINISH = "finish-as-local-activity"
"""Patch id: runs started before it scheduled ``finish`` as a regular activity."""
PARALLEL_TOOLS = "parallel-tool-calls"
"""Patch id: runs started before it ran the tool calls of one model answer one by one."""
CANCEL_IN_STEP = "cancel-in-step-cancels"
"""Patch id: runs started before it marked a run cancelled during a step as failed (and retryable)."""
DELIVERY_START_IDEMPOTENT = "delivery-start-idempotent"
"""Patch id: runs started before it failed when a delivery child of the same id already existed."""
TOOL_CALL_LIMIT = "bounded-tool-calls"
"""Patch id: runs started before it ran all tool calls of one answer at once (no concurrency limit)."""
MESSAGE_AT_IDLE_DEADLINE = "message-at-idle-deadline"
"""Patch id: runs started before it closed when a message landed in the task of the idle timeout."""
RETRY_AT_DEADLINE = "retry-at-window-end"
"""Patch id: runs started before it failed for good when a retry landed in the task of the window's end."""
DECISION_AT_DEADLINE = "decision-at-approval-deadline"
"""Patch id: runs started before it rejected a call when its decision landed in the task of the deadline."""
CANCEL_MODEL_STEP = "cancel-cancels-model-step"
"""Patch id: runs started before it left the model activity running when the run was cancelled during it."""
IDLE_CANCEL_KEEPS_ANSWER = "idle-cancel-keeps-answer"
"""Patch id: runs started before it became ``cancelled`` (output erased) when cancelled between turns."""
RUN_CLOSED_EVENT = "run-closed-event"
"""Patch id: runs started before it ended without publishing ``run.closed`` on their event stream."""
MAX_CONCURRENT_TOOL_CALLS = 8
"""Tool calls of one answer in flight at once (their thread appends contend for the thread's end)."""


class _Interrupted(Exception):  # noqa: N818 - a control-flow signal, not an error
    """A new message interrupted the model step in flight."""


@dataclass
class _Plan:
    """Tool calls of the latest model answer that still have to run (resumable after a failure)."""

    assistant: ChatMessage
    assistant_key: str
    calls: list[ToolCall] = field(default_factory=list)


@dataclass
class _Loop:
    """Mutable state of one run, exposed through the ``state`` query."""

    run_id: str = ""
    status: str = "queued"
    steps: list[StepView] = field(default_factory=list)
    output: str | None = None
    usage: Usage = field(default_factory=Usage)
    turn: int = 1
    step_offset: int = 0

    def next_step_id(self) -> str:
        return f"s{self.step_offset + len(self.steps) + 1}"


@workflow.defn
class AgentRunWorkflow:
    """A durable agent conversation."""

    @workflow.init
    def __init__(self, inp: AgentRunInput) -> None:
        self._loop = _Loop()
        self._pending: list[UserMessage] = []
        self._decisions: dict[str, ApprovalDecision] = {}
        self._waiting: list[str] = []
        self._policy = "enqueue"
        self._in_turn = False
        self._interrupt = False
        self._retry = False
        self._closed = False
        self._plan: _Plan | None = None
        self._received = 0
        self._message_prefix = "m"
        carry = inp.carry
        if carry is not None and carry.received is not None:
            self._received = carry.received  # message ids stay unique across continue-as-new
        elif carry is not None:
            # Carried over before the counter was: its value is unknown, so this execution's ids get
            # a prefix of their own (the run id) and cannot collide with the earlier executions' ``m{n}``.
            self._message_prefix = f"m{workflow.info().run_id[:8]}-"

    # -- queries and updates ----------------------------------------------------------------

    @workflow.query
    def state(self, query: StateQuery) -> RunStateView:
        """Status, steps, output, usage, turn, approvals waiting and queued messages."""
        return RunStateView(
            run_id=self._loop.run_id,
            status=self._loop.status,
            steps=list(self._loop.steps) if query.include_steps else [],
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
        self._loop = _Loop(run_id=inp.run_id, usage=carry.usage, turn=max(carry.turn, 1), step_offset=carry.steps)
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
            )
        except ActivityError as exc:
            workflow.logger.warning("run.closed not published", extra={"error": str(exc.cause or exc)})

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

    async def _wait_for_message(self, timeout_s: float) -> bool:
        if timeout_s <= 0:
            return False
        return await wait_or_timeout(
            lambda: bool(self._pending), timedelta(seconds=timeout_s), patch_id=MESSAGE_AT_IDLE_DEADLINE
        )

    async def _begin(self, inp: AgentRunInput) -> BegunRun:
        request = BeginRunInput(inp.tenant_id, inp.run_id, inp.agent_id, inp.agent_version, thread_id=inp.thread_id)
        begun: BegunRun
        if workflow.patched(LOCAL_BEGIN):
            # A few fast database writes: run in the workflow's own task, no activity task round trip.
            begun = await workflow.execute_local_activity_method(
                AgentRunActivities.begin,
                request,
                start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
                retry_policy=policies.DB_RETRY,
            )
        else:
            begun = await workflow.execute_activity_method(
                AgentRunActivities.begin,
                request,
                start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
                retry_policy=policies.DB_RETRY,
            )
        self._loop.status = "running"
        return begun

    async def _start_turn(self, inp: AgentRunInput, *, interrupted: str | None = None) -> None:
        messages, self._pending = self._pending, []
        self._loop.status = "running"
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
        )

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
                except _Interrupted as interrupted:
                    self._interrupt = False
                    await self._start_turn(inp, interrupted=str(interrupted))
                    continue
                response = result.response
                self._loop.usage = self._loop.usage.add(response.usage)
                if not response.tool_calls:
                    return result
                step_key = f"{workflow.info().workflow_id}:{self._loop.steps[-1].id}:assistant"
                self._plan = _Plan(
                    assistant=ChatMessage(role="assistant", content=response.content, tool_calls=response.tool_calls),
                    assistant_key=step_key,
                    calls=list(response.tool_calls),
                )
            raise ApplicationError(
                f"no answer within {inp.max_steps} model steps", type=errors.STEP_LIMIT, non_retryable=True
            )
        finally:
            self._in_turn = False

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
            raise _Interrupted(step_id)
        try:
            result: LlmStepResult = task.result()
        except BaseException:
            self._end_step(step_id, status="failed")
            raise
        self._end_step(step_id)
        return result

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

    async def _call_tool(self, inp: AgentRunInput, call: ToolCall, binding: ToolBinding | None, plan: _Plan) -> None:
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
            )
        except BaseException:
            self._end_step(step_id, status="failed")
            raise
        self._end_step(step_id, status="failed" if result.is_error else "completed")

    async def _run_child(self, inp: AgentRunInput, step_id: str, call: ToolCall) -> ToolStepResult:
        """Run another agent of the tenant as a child workflow; its usage rolls up into this run."""
        agent_id, text = str(call.arguments.get("agent_id", "")), str(call.arguments.get("input", ""))
        if not agent_id or not text:
            return ToolStepResult(content="error: run_agent needs agent_id and input", is_error=True)
        child: ChildRun = await workflow.execute_activity_method(
            AgentRunActivities.child,
            ChildRunInput(inp.tenant_id, inp.run_id, step_id, agent_id, text),
            start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
            retry_policy=policies.DB_RETRY,
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

    async def _approval(self, inp: AgentRunInput, call: ToolCall, binding: ToolBinding) -> str | None:
        """Wait for a human decision on ``call``; the rejection reason, or ``None`` when approved."""
        step_id = self._begin_step("approval", call.name, status="waiting")
        request = ApprovalInput(
            inp.tenant_id, inp.run_id, step_id, tool_step_id="", call=call, deadline_s=binding.approval_timeout_s
        )
        self._waiting.append(step_id)  # decisions are accepted from now on, even before the record is written
        self._loop.status = "waiting_approval"
        await self._record_approval(request)
        timeout = timedelta(seconds=binding.approval_timeout_s) if binding.approval_timeout_s else None
        if await wait_or_timeout(lambda: step_id in self._decisions, timeout, patch_id=DECISION_AT_DEADLINE):
            decision = self._decisions[step_id]
        else:
            decision = ApprovalDecision(
                step_id, "reject", "deadline", f"no decision within {binding.approval_timeout_s} s"
            )
        self._waiting.remove(step_id)
        self._loop.status = "waiting_approval" if self._waiting else "running"
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
        )
        await self._deliver(request.tenant_id, result)

    async def _deliver(self, tenant_id: str, result: FinishRunResult | None) -> None:
        """Start one durable delivery workflow per queued webhook delivery (they outlive this run).

        They run on the webhooks task queue the activity named, under the tenant's fairness key.
        A delivery that already exists (the same event again, e.g. a turn that fails again after
        a retry while the first delivery still retries) is not started twice: a no-op.
        """
        if result is None or not result.delivery_ids:
            return
        queue = result.webhooks_task_queue or workflow.info().task_queue
        for delivery_id in result.delivery_ids:
            started = await start_child_once(
                WebhookDeliveryWorkflow.run,
                WebhookDeliveryInput(tenant_id=tenant_id, webhook_id="", delivery_id=delivery_id),
                id=delivery_workflow_id(tenant_id, delivery_id),
                task_queue=queue,
                parent_close_policy=ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(TENANT_ID, tenant_id), SearchAttributePair(RUN_KIND, "webhook")]
                ),
                priority=Priority(fairness_key=tenant_id),
                patch_id=DELIVERY_START_IDEMPOTENT,
            )
            if not started:
                workflow.logger.info("webhook delivery already started", extra={"delivery_id": delivery_id})

    async def _finish(
        self,
        inp: AgentRunInput,
        status: str,
        *,
        answer: LlmStepResult | None = None,
        error: dict[str, str] | None = None,
    ) -> None:
        output = answer.response.content if answer else None
        self._loop.status, self._loop.output = status, output if answer else self._loop.output
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
        if workflow.patched(LOCAL_FINISH):
            # A few fast database writes and an event: run in the workflow's own task.
            result = await workflow.execute_local_activity_method(
                AgentRunActivities.finish, request, start_to_close_timeout=policies.DB_WRITE_TIMEOUT, retry_policy=retry
            )
        else:
            result = await workflow.execute_activity_method(
                AgentRunActivities.finish, request, start_to_close_timeout=policies.DB_WRITE_TIMEOUT, retry_policy=retry
            )
        await self._deliver(inp.tenant_id, result)

    def _begin_step(self, kind: str, name: str, *, status: str = "running") -> str:
        step_id = self._loop.next_step_id()
        self._loop.steps.append(StepView(id=step_id, kind=kind, name=name, status=status))
        return step_id

    def _end_step(self, step_id: str, *, status: str = "completed") -> None:
        for step in self._loop.steps:
            if step.id == step_id:
                step.status = status


def _int_param(value: object) -> int | None:
    return value if isinstance(value, int) and 0 < value <= 20 else None
