"""``PipelineWorkflow``: interprets one version of a tenant's pipeline, a DAG of steps.

The definition travels as a snapshot in ``PipelineRunInput.definition``; what runs next is
decided by ``core.pipelines.scheduler.Scheduler`` (pure, so replays decide the same):

0. A run a schedule started has no run id yet: ``pipeline.begin_scheduled`` records it
   (or records it ``failed`` when it cannot start: the workflow ends there) and answers its
   id, version and definition (cancelled meanwhile: the row, if written, is ``cancelled``).
   A re-run's input carries the records it reuses.
1. Every top-level step is written ``pending`` (a re-run's reused steps as they were). With
   ``max_concurrent_runs`` and ``on_concurrency_limit: queue`` the run first waits ``queued``
   for a slot (``pipeline.claim_slot``, retried until it gets one, first come first served);
   then it is marked ``running``.
2. Loop: ``advance(records)`` answers the steps to start, skip or fail (an ``if`` that is
   false, a need that was skipped, an expression error) and, once every step is final,
   the run's outcome. Each started step runs as its own coroutine, so steps without a
   ``needs`` path between them run concurrently; the loop waits for any step to end and
   asks again. A ``deferred`` answer (expression cost budget reached) yields one workflow
   task (a 1 ms timer) before asking again.
3. Per step type:

   - ``tool``: the ``pipeline.tool`` activity, ``timeout_s`` per attempt (default 30 s)
     and ``retry`` as its RetryPolicy (``max_attempts``; ``backoff_s`` doubling). The
     step's output is the tool's result.
   - ``agent``: ``pipeline.agent_run`` inserts the agent's run (a ``run`` row whose
     ``parent_run_id`` is this pipeline run, listed under ``/v1/runs``), then a child
     ``AgentRunWorkflow`` runs it on the agents queue (``timeout_s`` bounds the child);
     the answer is the step's output, its usage adds to the run's. One attempt.
   - ``wait``: a durable timer of ``seconds``.
   - ``approval``: the step (and the run) are ``waiting_approval`` until the update
     ``decide_approval`` answers it, or ``timeout_s`` passes: then, after checking once
     more for a decision that landed with the timer, ``on_timeout`` decides (``reject``
     fails the step with ``PipelineApprovalTimedOut``, ``approve`` completes it). A
     rejection fails it with ``PipelineApprovalRejected``. The output is
     ``{decision, comment, by}``.
   - ``map``: its step runs once per item of ``over``, at most ``max_concurrency`` at a
     time, each item recorded as step ``<map id>[<index>]``; the map's output is the list
     of the items' outputs (``core.pipelines.scheduler.map_result``). After an item fails
     with ``on_error: fail``, no further item starts. Up to ``MAP_INLINE_ITEMS`` items
     (``RUN_INLINE_ITEMS`` per run) run in this history; a larger map runs them in
     ``PipelineMapChunkWorkflow`` children (``workflows/pipeline_map.py``): ``lanes``
     children at once, each given a share of ``max_concurrency`` (the shares add up to it)
     and at most ``MAP_CHUNK_ITEMS`` prepared items; a lane starts its next chunk when its
     chunk ends. A chunk that fails the map cancels the others. Maps of ``approval`` or
     ``map`` steps (their items need this run's updates and scope) and maps inside maps
     always run here, so past the inline bounds they fail with ``PipelineMapTooLarge``.
   - ``pipeline``: ``pipeline.sub_run`` inserts the child run (the tenant's live pipeline at
     its current version, the step's ``input`` checked against its ``inputs`` schema, listed
     under ``/v1/pipeline-runs`` with ``parent_run_id``/``parent_step_id``), then a child
     ``PipelineWorkflow`` runs it (depth + 1; a run at ``MAX_PIPELINE_DEPTH`` fails the step
     with ``PipelineTooDeep``). Its output is the step's, its usage adds to the run's; a
     failed child fails the step (``PipelineSubRunFailed``); past ``timeout_s`` the child is
     cancelled and the step fails ``PipelineStepTimedOut``.

   Sizes: a step's output is at most ``MAX_STEP_OUTPUT_BYTES`` (a map's ``MAX_MAP_OUTPUT_BYTES``,
   its items stop once their outputs pass it), and the run's steps take and give at most
   ``MAX_RUN_PAYLOAD_BYTES`` in all; past a bound the step fails with ``PipelineOutputTooLarge``
   (``error.scope``: ``step``, ``map`` or ``run``). A projection write carries at most
   ``PROJECTION_BATCH_BYTES`` of outputs.

4. A step with ``on_error: fail`` that fails fails the run: started steps are cancelled
   (activity/child cancellation), the rest marked ``cancelled``. ``on_error: continue``
   records the step ``failed`` and goes on. When all steps are final the ``output``
   expression gives the run's output.
5. Temporal cancellation (``POST /v1/pipeline-runs/{id}/cancel``) cancels the running
   steps (child runs and chunks too), marks every unfinished step ``cancelled``, records the
   run ``cancelled`` and ends the workflow cancelled.

Projection: step changes are queued and written by one writer coroutine, a batch per
``pipeline.project`` call (one upsert statement), so a map of many items costs few writes;
step times are workflow time. The outcome is written by ``pipeline.finish``. Both are local
activities (patch ``LOCAL_WRITES``): a few fast statements run in the workflow's own task.
Both activities announce what they wrote (``core.pipelines.events``) and answer the webhook
deliveries they queued, which the workflow starts as abandoned children (as agent runs do).
The ``state`` query answers the live view (items run in chunks: the chunk's own ``state``).
Child workflow ids derive from the run and the step id (``m[3]`` for map items), unique for
the life of the run; a chunk's is ``<tenant>:pipeline-map:<run id>:<map id>:<first index>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, FailureError
from temporalio.exceptions import CancelledError as TemporalCancelledError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.pipeline import PipelineActivities
    from activities.pipeline_schedule import ScheduledRunActivities
    from core import policies
    from core.contracts.agent_run import AGENT_RUN_WORKFLOW, AgentRunInput, AgentRunResult
    from core.contracts.llm import Usage
    from core.contracts.pipelines import (
        APPROVAL_REJECTED,
        APPROVAL_TIMED_OUT,
        BUDGET_EXCEEDED,
        DECIDE_APPROVAL_UPDATE,
        DEFINITION_INVALID,
        MAP_CHUNK_WORKFLOW_NAME,
        MAP_TOO_LARGE,
        MAX_MAP_OUTPUT_BYTES,
        MAX_PIPELINE_DEPTH,
        MAX_RUN_PAYLOAD_BYTES,
        MAX_STEP_OUTPUT_BYTES,
        PIPELINE_TOO_DEEP,
        STATE_QUERY,
        STEP_TIMED_OUT,
        SUB_RUN_FAILED,
        TOOL_FAILED,
        WORKFLOW_NAME,
        AgentStepInput,
        AgentStepRun,
        ClaimSlotInput,
        FinishRunInput,
        MapChunkInput,
        MapChunkItem,
        MapChunkResult,
        OnConcurrencyLimit,
        OnTimeout,
        PipelineApprovalDecision,
        PipelineRunInput,
        PipelineRunResult,
        PipelineRunStatus,
        PipelineStateView,
        PipelineStepStatus,
        PipelineStepView,
        ProjectionWrite,
        ScheduledRun,
        ScheduledRunStart,
        StepRecord,
        StepWriteView,
        SubRun,
        SubRunInput,
        ToolStepInput,
        ToolStepOutput,
        WebhookDeliveries,
    )
    from core.errors import NON_RETRYABLE_TYPES
    from core.ids import AGENT_ID, PIPELINE_ID, RUN_KIND, TENANT_ID, workflow_id
    from core.pipelines.definition import (
        AgentStep,
        ApprovalStep,
        Definition,
        MapStep,
        PipelineStep,
        ToolStep,
        WaitStep,
    )
    from core.pipelines.expressions import json_size
    from core.pipelines.runs import RUN_KIND_PIPELINE
    from core.pipelines.scheduler import (
        MAP_CHUNK_INPUT_BYTES,
        MAP_CHUNK_ITEMS,
        MAP_INLINE_ITEMS,
        RUN_INLINE_ITEMS,
        Failure,
        Launch,
        Outcome,
        OutputBudget,
        Scheduler,
        Skip,
        live_status,
        map_result,
        stops_map,
        too_large,
    )
    from core.pipelines.schedules import scheduled_run_id
    from core.pipelines.validation import load_definition
    from workflows._helpers import error_of
    from workflows.webhook_delivery import start_deliveries


DECISIONS = ("approve", "reject")
DEFAULT_TOOL_TIMEOUT = policies.TOOL_TIMEOUT
RUN_KIND_MAP_CHUNK = "pipeline_map"
"""``RunKind`` of ``PipelineMapChunkWorkflow`` children."""
PROJECTION_BATCH_BYTES = 1024 * 1024
"""JSON size of the step outputs and errors one ``pipeline.project`` call carries (at least one step)."""
SLOT_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=2),
    maximum_attempts=0,
    non_retryable_error_types=list(NON_RETRYABLE_TYPES),
)
"""``pipeline.claim_slot``: retried until the run gets a slot, at most 2 s apart."""
LOCAL_WRITES = "projection-as-local-activity"
"""Patch id: runs started before it wrote the projection (``pipeline.project``, ``pipeline.finish``)
through regular activities; since, they are local activities, run in the workflow's own task."""
_Status = PipelineStepStatus
_Write = TypeVar("_Write", ProjectionWrite, FinishRunInput)


@dataclass(kw_only=True)
class _Step:
    """What the workflow knows of one step (top-level or a map item) beyond its scheduler record."""

    type: str
    started_at: str | None = None
    ended_at: str | None = None


@workflow.defn(name=WORKFLOW_NAME)
class PipelineWorkflow:
    """One pipeline run; see the module docstring."""

    def __init__(self) -> None:
        self._inp: PipelineRunInput | None = None
        self._status: str = PipelineRunStatus.QUEUED
        self._records: dict[str, StepRecord] = {}
        """Every step's record, map items included (``m[3]``)."""
        self._steps: dict[str, _Step] = {}
        self._top: list[str] = []
        self._decisions: dict[str, PipelineApprovalDecision] = {}
        self._waiting: set[str] = set()
        self._dirty: dict[str, None] = {}
        self._projected: str = ""
        """The live status last written to the projection."""
        self._written = False
        self._closing = False
        self._changed = False
        self._usage = Usage()
        self._payload = 0
        """JSON bytes of the rendered fields and outputs of the steps run in this history."""
        self._inline_items = 0
        """Map items run in this history (the others in ``PipelineMapChunkWorkflow`` children)."""
        self._owns_run = True
        """Writes the run's live status and workflow run id (a map chunk writes only its items)."""
        self._budget: float | None = None
        self._over_budget: dict[str, Any] | None = None
        """The run's error once its agent steps cost more than ``budget_usd``."""

    # --- messages ---------------------------------------------------------------------

    @workflow.query(name=STATE_QUERY)
    def state(self) -> PipelineStateView:
        """The run's status and every step's status (map items too)."""
        return PipelineStateView(
            run_id=self._inp.run_id if self._inp else "",
            status=self._status,
            steps=[self._view(i, s) for i, s in self._steps.items() if i in self._records],
            waiting_approval=sorted(self._waiting),
        )

    def _view(self, step_id: str, step: _Step) -> PipelineStepView:
        record = self._records[step_id]
        return PipelineStepView(
            id=step_id, type=step.type, status=record.status, attempts=record.attempts, error=record.error
        )

    @workflow.update(name=DECIDE_APPROVAL_UPDATE)
    async def decide_approval(self, decision: PipelineApprovalDecision) -> str:
        """Decide the approval step ``decision.step_id``; answers the step's status afterwards."""
        self._decisions[decision.step_id] = decision
        await workflow.wait_condition(lambda: decision.step_id not in self._waiting)
        return self._records[decision.step_id].status

    @decide_approval.validator
    def _check_decision(self, decision: PipelineApprovalDecision) -> None:
        if decision.decision not in DECISIONS:
            raise ApplicationError(f"decision must be one of {', '.join(DECISIONS)}", type="InvalidDecision")
        if decision.step_id not in self._waiting or decision.step_id in self._decisions:
            raise ApplicationError(f"step {decision.step_id!r} is not waiting for approval", type="NotWaiting")

    # --- the run ----------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: PipelineRunInput) -> PipelineRunResult:
        """Interpret the definition until every step is final, the run fails or it is cancelled."""
        if not inp.run_id:  # started by a schedule: the run is recorded (or refused) first
            try:
                begun = await self._begin_scheduled(inp)
            except asyncio.CancelledError:  # cancelled while recording (overlap cancel_other): record that
                await self._cancelled_before_start(inp)
                raise
            if begun.error is not None:
                return PipelineRunResult(run_id=begun.run_id, status=PipelineRunStatus.FAILED, error=begun.error)
            inp = dataclasses.replace(inp, run_id=begun.run_id, version=begun.version, definition=begun.definition)
        self._inp = inp
        writer = asyncio.create_task(self._write_loop())
        try:
            definition = load_definition(inp.definition)
        except Exception as exc:  # a saved version always parses: this guards hand-made input
            error = {"type": DEFINITION_INVALID, "message": str(exc)[:500]}
            return await self._close(writer, {}, Outcome(status=PipelineRunStatus.FAILED, error=error))
        scheduler = Scheduler(definition, inp.input)
        self._budget = definition.budget_usd
        self._top = [s.id for s in definition.steps]
        for step in definition.steps:
            reused = inp.reused_steps.get(step.id)
            self._records[step.id] = reused or StepRecord()
            self._steps[step.id] = _Step(type=str(step.type))
            self._dirty[step.id] = None
        tasks: dict[str, asyncio.Task[None]] = {}
        try:
            await self._claim_slot(definition)
            self._status = PipelineRunStatus.RUNNING
            outcome = await self._drive(scheduler, tasks)
        except asyncio.CancelledError:
            await self._close(writer, tasks, Outcome(status=PipelineRunStatus.CANCELLED, cancel=tuple(self._records)))
            raise
        return await self._close(writer, tasks, outcome)

    async def _claim_slot(self, definition: Definition) -> None:
        """With ``max_concurrent_runs`` and ``on_concurrency_limit: queue``: wait ``queued`` for a slot.

        ``pipeline.claim_slot`` fails until the run gets one; its retries (no attempt limit,
        backoff capped at ``SLOT_RETRY.maximum_interval``) add no history events.
        """
        assert self._inp is not None
        limit = definition.max_concurrent_runs
        if limit is None or definition.on_concurrency_limit != OnConcurrencyLimit.QUEUE:
            return
        try:
            await workflow.execute_activity_method(
                PipelineActivities.claim_slot,
                ClaimSlotInput(
                    tenant_id=self._inp.tenant_id,
                    run_id=self._inp.run_id,
                    pipeline_id=self._inp.pipeline_id,
                    limit=limit,
                ),
                start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
                retry_policy=SLOT_RETRY,
                summary=f"wait for one of {limit} slots",
            )
        except ActivityError as exc:  # a cancelled run leaves the queue
            _raise_if_cancelled(exc)
            raise
        self._projected = PipelineRunStatus.RUNNING  # the claim wrote it

    async def _begin_scheduled(self, inp: PipelineRunInput) -> ScheduledRun:
        """Record the run a schedule started (``pipeline.begin_scheduled``): its id, version and definition."""
        return await workflow.execute_activity_method(
            ScheduledRunActivities.begin_scheduled,
            ScheduledRunStart(
                tenant_id=inp.tenant_id,
                pipeline_id=inp.pipeline_id,
                schedule_id=inp.schedule_id,
                workflow_id=workflow.info().workflow_id,
                version=inp.version,
                input=inp.input,
            ),
            start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
            retry_policy=policies.DB_RETRY,
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,  # the row exists, or never will
            summary="record the scheduled run",
        )

    async def _cancelled_before_start(self, inp: PipelineRunInput) -> None:
        """A scheduled run cancelled while ``pipeline.begin_scheduled`` recorded it: its row (if any) ``cancelled``."""
        status = PipelineRunStatus.CANCELLED
        run_id = scheduled_run_id(workflow.info().workflow_id)
        await self._write(
            PipelineActivities.finish,
            FinishRunInput(tenant_id=inp.tenant_id, run_id=run_id, status=status),
            f"run {status}",
        )

    async def _drive(self, scheduler: Scheduler, tasks: dict[str, asyncio.Task[None]]) -> Outcome:
        """Apply the scheduler's answers until it gives the outcome (or the budget is spent)."""
        while True:
            self._changed = False
            if self._over_budget is not None:
                return Outcome(status=PipelineRunStatus.FAILED, error=self._over_budget, cancel=tuple(self._records))
            top = {s: self._records[s] for s in self._top}
            answer = scheduler.advance(top)
            for skip in answer.skips:
                self._end(skip.step_id, StepRecord(status=_Status.SKIPPED, error={"reason": skip.reason}))
            for failure in answer.failures:
                self._end(failure.step_id, StepRecord(status=_Status.FAILED, error=failure.error))
            if answer.outcome is not None:
                return answer.outcome
            for launch in answer.launches:
                self._begin(launch.step_id, str(launch.step.type))  # before the next advance sees it
                tasks[launch.step_id] = asyncio.create_task(self._top_step(scheduler, launch))
            if answer.deferred:
                await workflow.sleep(timedelta(milliseconds=1))
            elif not (answer.skips or answer.failures or answer.launches):
                await workflow.wait_condition(lambda: self._changed)

    async def _top_step(self, scheduler: Scheduler, launch: Launch) -> None:
        self._end(launch.step_id, await self._run_step(scheduler, launch))

    async def _cancel(self, tasks: dict[str, asyncio.Task[None]], step_ids: tuple[str, ...]) -> None:
        """Cancel the running steps among ``step_ids`` and mark every unfinished one ``cancelled``."""
        running = [t for s, t in tasks.items() if s in step_ids and not t.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        for step_id in list(self._records):
            if self._records[step_id].status not in _Status.FINAL:
                self._end(step_id, StepRecord(status=_Status.CANCELLED, attempts=self._records[step_id].attempts))

    async def _close(
        self, writer: asyncio.Task[None], tasks: dict[str, asyncio.Task[None]], outcome: Outcome
    ) -> PipelineRunResult:
        """End the run with ``outcome``: cancel its unfinished steps, then ``pipeline.finish``.

        Shielded: a cancellation that lands meanwhile (the outcome is decided) neither stops
        the steps' last writes nor the finish, so the projection always gets the outcome.
        """
        closing = asyncio.create_task(self._finish(writer, tasks, outcome))
        try:
            return await asyncio.shield(closing)
        except asyncio.CancelledError:
            return await closing

    async def _finish(
        self, writer: asyncio.Task[None], tasks: dict[str, asyncio.Task[None]], outcome: Outcome
    ) -> PipelineRunResult:
        assert self._inp is not None
        if outcome.cancel:
            await self._cancel(tasks, outcome.cancel)
        status, output, error = outcome.status, outcome.output, outcome.error
        self._status = status
        self._closing = True
        await writer
        deliveries = await self._write(
            PipelineActivities.finish,
            FinishRunInput(
                tenant_id=self._inp.tenant_id,
                run_id=self._inp.run_id,
                status=status,
                output=output,
                error=error,
                input_tokens=self._usage.input_tokens,
                output_tokens=self._usage.output_tokens,
                cost_usd=self._usage.cost_usd,
            ),
            f"run {status}",
        )
        await self._deliver(deliveries)
        return PipelineRunResult(
            run_id=self._inp.run_id,
            status=status,
            output=output,
            error=error,
            input_tokens=self._usage.input_tokens,
            output_tokens=self._usage.output_tokens,
            cost_usd=self._usage.cost_usd,
        )

    # --- steps ------------------------------------------------------------------------

    async def _run_step(self, scheduler: Scheduler | None, launch: Launch) -> StepRecord:
        """Run one step, already marked started (top-level or a map item), to its final record (size-bounded)."""
        if not self._spend(json_size(launch.arguments)):
            return _run_too_large()
        record = await self._execute(scheduler, launch)
        if record.status != _Status.COMPLETED or record.output is None:
            return record
        size = json_size(record.output)
        limit = MAX_MAP_OUTPUT_BYTES if isinstance(launch.step, MapStep) else MAX_STEP_OUTPUT_BYTES
        if size > limit:
            return too_large(f"the step's output is {size} bytes, more than {limit}", "step")
        if not self._spend(size):
            return _run_too_large()
        return record

    def _spend(self, size: int) -> bool:
        """Count ``size`` bytes into the run's payload; ``False`` once past ``MAX_RUN_PAYLOAD_BYTES``."""
        self._payload += size
        return self._payload <= MAX_RUN_PAYLOAD_BYTES

    async def _execute(self, scheduler: Scheduler | None, launch: Launch) -> StepRecord:
        step = launch.step
        try:
            if isinstance(step, ToolStep):
                return await self._tool(launch, step)
            if isinstance(step, AgentStep):
                return await self._agent(launch, step)
            if isinstance(step, WaitStep):
                if step.seconds > 0:
                    await workflow.sleep(timedelta(seconds=step.seconds))
                return StepRecord(status=_Status.COMPLETED, attempts=1)
            if isinstance(step, ApprovalStep):
                return await self._approval(launch, step)
            if isinstance(step, MapStep) and scheduler is not None:
                return await self._map(scheduler, launch, step)
            if isinstance(step, PipelineStep):
                return await self._pipeline(launch, step)
            return _failed({"type": DEFINITION_INVALID, "message": f"steps of type {step.type} are not supported yet"})
        except FailureError as exc:  # an activity or child failure no step handler expected: the step fails
            return _failed(dict(error_of(exc)), attempts=self._records[launch.step_id].attempts)
        except asyncio.CancelledError:
            attempts = self._records[launch.step_id].attempts
            self._end(launch.step_id, StepRecord(status=_Status.CANCELLED, attempts=attempts))
            raise

    async def _tool(self, launch: Launch, step: ToolStep) -> StepRecord:
        assert self._inp is not None
        attempts = step.retry.max_attempts if step.retry else 1
        backoff = step.retry.backoff_s if step.retry else 1.0
        try:
            result: ToolStepOutput = await workflow.execute_activity_method(
                PipelineActivities.tool,
                ToolStepInput(
                    tenant_id=self._inp.tenant_id,
                    run_id=self._inp.run_id,
                    step_id=launch.step_id,
                    tool=step.tool,
                    args=launch.arguments.get("args") or {},
                ),
                start_to_close_timeout=timedelta(seconds=step.timeout_s) if step.timeout_s else DEFAULT_TOOL_TIMEOUT,
                retry_policy=RetryPolicy(
                    maximum_attempts=attempts,
                    initial_interval=timedelta(seconds=max(backoff, 0.01)),
                    backoff_coefficient=2.0,
                ),
                summary=f"{launch.step_id} tool {step.tool}",
            )
        except ActivityError as exc:
            _raise_if_cancelled(exc)
            return _failed(_activity_error(exc, attempts), attempts=_attempt_of(exc, attempts))
        return StepRecord(status=_Status.COMPLETED, output=result.output, attempts=result.attempts)

    async def _agent(self, launch: Launch, step: AgentStep) -> StepRecord:
        assert self._inp is not None
        text = launch.arguments.get("input")
        run: AgentStepRun = await workflow.execute_activity_method(
            PipelineActivities.agent_run,
            AgentStepInput(
                tenant_id=self._inp.tenant_id,
                run_id=self._inp.run_id,
                step_id=launch.step_id,
                agent_id=step.agent_id,
                input=text if isinstance(text, str) else _text(text),
            ),
            start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
            retry_policy=policies.DB_RETRY,
            summary=f"{launch.step_id} agent {step.agent_id}",
        )
        if run.error:
            return _failed({"type": "AgentNotFound", "message": run.error})
        try:
            result = await workflow.execute_child_workflow(
                AGENT_RUN_WORKFLOW,  # by name: importing the class would re-import its modules in each run's sandbox
                AgentRunInput(
                    self._inp.tenant_id,
                    run.run_id,
                    run.agent_id,
                    run.agent_version,
                    max_steps=run.max_steps,
                    heartbeat_timeout_s=run.heartbeat_timeout_s,
                    thread_id=run.thread_id,
                ),
                id=run.workflow_id,
                task_queue=run.task_queue,
                execution_timeout=timedelta(seconds=step.timeout_s) if step.timeout_s else None,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(TENANT_ID, self._inp.tenant_id),
                        SearchAttributePair(AGENT_ID, run.agent_id),
                        SearchAttributePair(RUN_KIND, "agent_run"),
                    ]
                ),
                priority=Priority(fairness_key=self._inp.tenant_id),
                result_type=AgentRunResult,
            )
        except ChildWorkflowError as exc:
            _raise_if_cancelled(exc)
            error = error_of(exc)
            if isinstance(exc.cause, TemporalTimeoutError):
                error = {"type": STEP_TIMED_OUT, "message": f"the agent run took longer than {step.timeout_s}s"}
            return _failed({**error, "run_id": run.run_id})
        self._add_usage(result.usage, launch.step_id)
        return StepRecord(status=_Status.COMPLETED, output=result.output, attempts=1)

    async def _pipeline(self, launch: Launch, step: PipelineStep) -> StepRecord:
        """A child ``PipelineWorkflow`` of the pipeline's current version; its output is the step's."""
        assert self._inp is not None
        inp = self._inp
        if inp.depth >= MAX_PIPELINE_DEPTH:
            message = f"sub-pipelines nest at most {MAX_PIPELINE_DEPTH} deep; this run is at depth {inp.depth}"
            return _failed({"type": PIPELINE_TOO_DEEP, "message": message})
        run_input = launch.arguments.get("input")
        sub: SubRun = await workflow.execute_activity_method(
            PipelineActivities.sub_run,
            SubRunInput(
                tenant_id=inp.tenant_id,
                run_id=inp.run_id,
                step_id=launch.step_id,
                pipeline_id=step.pipeline_id,
                input=run_input,
            ),
            start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
            retry_policy=policies.DB_RETRY,
            summary=f"{launch.step_id} pipeline {step.pipeline_id}",
        )
        if sub.error:
            return _failed(sub.error)
        if not self._spend(2 * json_size(sub.definition)):  # the activity's result, then the child's input
            return _run_too_large()
        child = PipelineRunInput(
            tenant_id=inp.tenant_id,
            run_id=sub.run_id,
            pipeline_id=sub.pipeline_id,
            version=sub.version,
            definition=sub.definition,
            input=run_input,
            parent_run_id=inp.run_id,
            parent_step_id=launch.step_id,
            depth=inp.depth + 1,
        )

        async def run_child() -> PipelineRunResult:
            try:
                return await workflow.execute_child_workflow(
                    PipelineWorkflow.run,
                    child,
                    id=sub.workflow_id,
                    task_queue=workflow.info().task_queue,
                    search_attributes=_attributes(inp.tenant_id, sub.pipeline_id, RUN_KIND_PIPELINE),
                    priority=Priority(fairness_key=inp.tenant_id),
                )
            except ChildWorkflowError as exc:
                _raise_if_cancelled(exc)
                raise

        try:  # past timeout_s the child is cancelled (and records that), then the step fails
            result = await asyncio.wait_for(run_child(), step.timeout_s)
        except TimeoutError:
            return _failed({"type": STEP_TIMED_OUT, "message": f"the pipeline run took longer than {step.timeout_s}s",
                            "run_id": sub.run_id})  # fmt: skip
        except ChildWorkflowError as exc:
            return _failed({**error_of(exc), "run_id": sub.run_id})
        usage = Usage(input_tokens=result.input_tokens, output_tokens=result.output_tokens, cost_usd=result.cost_usd)
        self._add_usage(usage, launch.step_id)
        if result.status != PipelineRunStatus.COMPLETED:
            cause = result.error or {}
            message = f"pipeline run {sub.run_id} {result.status}: {cause.get('message') or result.status}"
            return _failed({"type": SUB_RUN_FAILED, "message": message[:1000], "run_id": sub.run_id, "cause": cause})
        return StepRecord(status=_Status.COMPLETED, output=result.output, attempts=1)

    def _add_usage(self, usage: Usage, step_id: str) -> None:
        """Add an agent step's usage; past ``budget_usd`` the run is to stop (``_drive`` sees it next)."""
        self._usage = self._usage.add(usage)
        spent = self._usage.cost_usd
        if self._budget is None or spent <= self._budget or self._over_budget is not None:
            return
        self._over_budget = {
            "type": BUDGET_EXCEEDED,
            "message": f"the run's agent steps cost {spent:.6f} USD, more than its budget of {self._budget} USD",
            "spent_usd": spent,
            "budget_usd": self._budget,
            "step_id": step_id,
        }
        self._changed = True

    async def _approval(self, launch: Launch, step: ApprovalStep) -> StepRecord:
        step_id = launch.step_id
        self._records[step_id] = StepRecord(status=_Status.WAITING_APPROVAL, attempts=1)
        self._waiting.add(step_id)
        self._touch(step_id)
        timeout = timedelta(seconds=step.timeout_s) if step.timeout_s else None
        try:
            with contextlib.suppress(TimeoutError):  # a decision that landed with the timer still counts
                await workflow.wait_condition(lambda: step_id in self._decisions, timeout=timeout)
            decision = self._decisions.get(step_id)
            if decision is None:
                if step.on_timeout == OnTimeout.APPROVE:
                    output = {"decision": "approve", "comment": None, "by": "timeout"}
                    return StepRecord(status=_Status.COMPLETED, output=output, attempts=1)
                message = f"no decision within {step.timeout_s}s"
                return _failed({"type": APPROVAL_TIMED_OUT, "message": message})
            output = {"decision": decision.decision, "comment": decision.comment, "by": decision.decided_by}
            if decision.decision != "approve":
                return _failed({"type": APPROVAL_REJECTED, "message": f"rejected by {decision.decided_by}", **output})
            return StepRecord(status=_Status.COMPLETED, output=output, attempts=1)
        finally:
            self._waiting.discard(step_id)

    async def _map(self, scheduler: Scheduler, launch: Launch, step: MapStep) -> StepRecord:
        """Items run here while the run's history has room for them, else in ``PipelineMapChunkWorkflow`` children."""
        items: list[Any] = launch.arguments.get("items") or []
        inline = len(items) <= MAP_INLINE_ITEMS and self._inline_items + len(items) <= RUN_INLINE_ITEMS
        nested = "[" in launch.step_id  # a map inside a map: its chunks would multiply with the outer items
        if not inline and (nested or isinstance(step.step, ApprovalStep | MapStep)):
            what = "a map inside a map" if nested else f"a map of {step.step.type} steps"
            message = f"{what} runs at most {MAP_INLINE_ITEMS} items ({RUN_INLINE_ITEMS} map items per run)"
            return _failed({"type": MAP_TOO_LARGE, "message": message, "field": "over"})
        records: list[StepRecord] = [StepRecord() for _ in items]
        budget = OutputBudget(left=MAX_MAP_OUTPUT_BYTES)
        if inline:
            self._inline_items += len(items)
            await self._run_items(step, [(launch.step_id, i, item) for i, item in enumerate(items)],
                                  step.max_concurrency, budget, records, scheduler, launch)  # fmt: skip
        else:
            await self._run_chunks(scheduler, launch, step, items, records)
        result = map_result(step, records)
        result.attempts = 1
        return result

    async def _run_items(
        self,
        step: MapStep,
        items: list[tuple[str, int, Any]],
        concurrency: int,
        budget: OutputBudget,
        records: list[StepRecord],
        scheduler: Scheduler | None = None,
        launch: Launch | None = None,
    ) -> None:
        """Run map items ``(map id, index, item)``, at most ``concurrency`` at once; ``records[index]`` gets each
        outcome. With ``scheduler`` and the map's ``launch``, an item is prepared from its value; without,
        the value is its step's rendered fields already (a chunk's items)."""
        slots = asyncio.Semaphore(concurrency)
        stop = False

        async def one(map_id: str, index: int, item: Any) -> None:
            nonlocal stop
            async with slots:
                if stop:
                    return
                if scheduler is not None and launch is not None:
                    prepared = scheduler.prepare_item(launch, index, item)
                else:
                    prepared = Launch(step_id=f"{map_id}[{index}]", step=step.step, arguments=item)
                if isinstance(prepared, Launch):
                    self._begin(prepared.step_id, str(prepared.step.type))
                    record = budget.take(await self._run_step(scheduler, prepared))
                    self._end(prepared.step_id, record)
                else:
                    record = self._not_started(step, prepared)
                records[index] = record
                stop = stop or stops_map(step, record)

        await asyncio.gather(*(one(*entry) for entry in items))

    async def _run_chunks(
        self, scheduler: Scheduler, launch: Launch, step: MapStep, items: list[Any], records: list[StepRecord]
    ) -> None:
        """Run the items in ``PipelineMapChunkWorkflow`` children: ``lanes`` of them at once, each lane a share
        of ``max_concurrency`` (the shares add up to it) running its part of the items one chunk after another.
        A chunk that fails the map cancels the others; no further chunk starts."""
        assert self._inp is not None
        lanes = min(step.max_concurrency, math.ceil(len(items) / MAP_CHUNK_ITEMS))
        shares = [step.max_concurrency // lanes + (j < step.max_concurrency % lanes) for j in range(lanes)]
        bounds = [round(len(items) * sum(shares[:j]) / step.max_concurrency) for j in range(lanes + 1)]
        stopped = False

        def stop(j: int) -> None:
            nonlocal stopped
            stopped = True
            for k, other in enumerate(tasks):
                if k != j:
                    other.cancel()

        async def lane(j: int) -> None:
            index = bounds[j]
            while index < bounds[j + 1] and not stopped:
                chunk, index = self._chunk(scheduler, launch, step, items, index, bounds[j + 1], records)
                if chunk is None:
                    return stop(j)
                if not chunk.items:
                    continue
                chunk.concurrency = shares[j]
                chunk.output_budget = MAX_MAP_OUTPUT_BYTES * len(chunk.items) // len(items)
                result = await self._run_chunk(chunk)
                for entry, record in zip(chunk.items, result.records, strict=True):
                    records[entry.index] = record or StepRecord()
                if any(record is not None and stops_map(step, record) for record in result.records):
                    return stop(j)

        tasks = [asyncio.create_task(lane(j)) for j in range(lanes)]
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in outcomes:  # a lane ended by a sibling's cancel is expected; anything else is raised
            if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
                raise outcome

    def _chunk(
        self,
        scheduler: Scheduler,
        launch: Launch,
        step: MapStep,
        items: list[Any],
        start: int,
        end: int,
        records: list[StepRecord],
    ) -> tuple[MapChunkInput | None, int]:
        """The next chunk from ``start`` (before ``end``) and where the one after starts; items that skip or fail
        while prepared are recorded here. ``None``: an item failed the map, or the run's payload bound is reached."""
        assert self._inp is not None
        chunk = MapChunkInput(
            run=replace(self._inp, definition={}, input=None, reused_steps={}),
            map_id=launch.step_id,
            step=step.model_dump(mode="json", by_alias=True, exclude_unset=True),
        )
        size = 0
        index = start
        while index < end and len(chunk.items) < MAP_CHUNK_ITEMS and size < MAP_CHUNK_INPUT_BYTES:
            prepared = scheduler.prepare_item(launch, index, items[index])
            index += 1
            if isinstance(prepared, Launch):
                size += json_size(prepared.arguments)
                chunk.items.append(MapChunkItem(index=index - 1, arguments=prepared.arguments))
                continue
            records[index - 1] = self._not_started(step, prepared)
            if stops_map(step, records[index - 1]):
                return None, index
        if not self._spend(size):
            records[start] = _run_too_large()
            return None, index
        return chunk, index

    def _not_started(self, step: MapStep, prepared: Skip | Failure) -> StepRecord:
        """Record a map item that skipped or failed while it was prepared."""
        record = (StepRecord(status=_Status.SKIPPED, error={"reason": prepared.reason})
                  if isinstance(prepared, Skip) else _failed(prepared.error))  # fmt: skip
        self._steps.setdefault(prepared.step_id, _Step(type=str(step.step.type)))
        self._end(prepared.step_id, record)
        return record

    async def _run_chunk(self, chunk: MapChunkInput) -> MapChunkResult:
        assert self._inp is not None
        first = chunk.items[0].index
        try:
            result: MapChunkResult = await workflow.execute_child_workflow(
                MAP_CHUNK_WORKFLOW_NAME,
                chunk,
                result_type=MapChunkResult,
                id=workflow_id(self._inp.tenant_id, "pipeline-map", f"{self._inp.run_id}:{chunk.map_id}:{first}"),
                task_queue=workflow.info().task_queue,
                search_attributes=_attributes(self._inp.tenant_id, self._inp.pipeline_id, RUN_KIND_MAP_CHUNK),
                priority=Priority(fairness_key=self._inp.tenant_id),
                static_summary=f"{chunk.map_id}[{first}..{chunk.items[-1].index}]",
            )
        except ChildWorkflowError as exc:
            _raise_if_cancelled(exc)
            raise
        usage = Usage(input_tokens=result.input_tokens, output_tokens=result.output_tokens, cost_usd=result.cost_usd)
        self._add_usage(usage, chunk.map_id)
        return result

    # --- records and the projection ---------------------------------------------------

    def _begin(self, step_id: str, type_: str) -> None:
        self._steps[step_id] = _Step(type=type_, started_at=workflow.now().isoformat())
        self._records[step_id] = StepRecord(status=_Status.RUNNING, attempts=1)
        self._touch(step_id)

    def _end(self, step_id: str, record: StepRecord) -> None:
        step = self._steps.setdefault(step_id, _Step(type=""))
        if step.started_at is not None or record.status != _Status.SKIPPED:
            step.ended_at = workflow.now().isoformat()
        self._records[step_id] = record
        self._touch(step_id)

    def _touch(self, step_id: str) -> None:
        self._dirty[step_id] = None
        self._changed = True
        if self._status not in PipelineRunStatus.FINAL:
            self._status = live_status(self._records)

    def _status_to_write(self) -> str:
        """The live status if the projection does not show it yet."""
        live = self._status not in PipelineRunStatus.FINAL and self._status != PipelineRunStatus.QUEUED
        return self._status if self._owns_run and live and self._status != self._projected else ""

    def _batch(self) -> ProjectionWrite:
        assert self._inp is not None
        steps: list[StepWriteView] = []
        size = 0
        for step_id in list(self._dirty):
            record, step = self._records[step_id], self._steps[step_id]
            error = record.error if record.status != _Status.SKIPPED else None
            if record.output is not None or error is not None:
                size += json_size(record.output) + json_size(error)
                if steps and size > PROJECTION_BATCH_BYTES:  # the rest in the next batch: one payload stays small
                    break
            steps.append(
                StepWriteView(step_id=step_id, type=step.type, status=record.status, attempts=record.attempts,
                              started_at=step.started_at, ended_at=step.ended_at, output=record.output, error=error)
            )  # fmt: skip
            del self._dirty[step_id]
        return ProjectionWrite(
            tenant_id=self._inp.tenant_id,
            run_id=self._inp.run_id,
            status=self._status_to_write(),
            steps=steps,
            workflow_run_id="" if self._written or not self._owns_run else workflow.info().run_id,
        )

    async def _write_loop(self) -> None:
        """Write queued step changes and the live status, one ``pipeline.project`` batch at a time, until closing."""
        while True:
            await workflow.wait_condition(lambda: bool(self._dirty) or bool(self._status_to_write()) or self._closing)
            if self._closing and not self._dirty and self._written:
                return
            batch = self._batch()
            summary = f"{len(batch.steps)} steps" + (f", run {batch.status}" if batch.status else "")
            deliveries = await self._write(PipelineActivities.project, batch, summary)
            await self._deliver(deliveries)
            self._written = True
            self._projected = batch.status or self._projected

    async def _write(
        self,
        activity: Callable[[Any, _Write], Awaitable[WebhookDeliveries | None]],
        write: _Write,
        summary: str,
    ) -> WebhookDeliveries | None:
        """A projection write (``pipeline.project`` or ``pipeline.finish``), retried until the database takes it.

        A few fast statements: a local activity, run in the workflow's own task (no activity
        task round trip), behind the ``LOCAL_WRITES`` patch.
        """
        if workflow.patched(LOCAL_WRITES):
            return await workflow.execute_local_activity_method(
                activity,
                write,
                start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
                retry_policy=policies.DB_RETRY,
                summary=summary,
            )
        return await workflow.execute_activity_method(
            activity,
            write,
            start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
            retry_policy=policies.DB_RETRY,
            summary=summary,
        )

    async def _deliver(self, deliveries: WebhookDeliveries | None) -> None:
        """Start the webhook deliveries a projection write queued (durable workflows that outlive the run)."""
        if deliveries is not None:
            assert self._inp is not None
            await start_deliveries(self._inp.tenant_id, deliveries.delivery_ids, deliveries.webhooks_task_queue)


def _run_too_large() -> StepRecord:
    return too_large(f"the run's steps take and give more than {MAX_RUN_PAYLOAD_BYTES} bytes", "run")


def _attributes(tenant_id: str, pipeline_id: str, kind: str) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(TENANT_ID, tenant_id),
            SearchAttributePair(PIPELINE_ID, pipeline_id),
            SearchAttributePair(RUN_KIND, kind),
        ]
    )


def _failed(error: dict[str, Any], *, attempts: int = 1) -> StepRecord:
    return StepRecord(status=_Status.FAILED, error=error, attempts=attempts)


def _attempt_of(exc: ActivityError, default: int) -> int:
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.details and isinstance(cause.details[0], dict):
        return int(cause.details[0].get("attempt", default))
    return default


def _activity_error(exc: ActivityError, attempts: int) -> dict[str, Any]:
    """The step's error from its activity's last failure (a timeout named as such)."""
    if isinstance(exc.cause, TemporalTimeoutError):
        return {"type": STEP_TIMED_OUT, "message": "the tool did not answer within timeout_s"}
    error: dict[str, Any] = dict(error_of(exc))
    if error["type"] == TOOL_FAILED and attempts > 1:
        error["message"] += f" (after {_attempt_of(exc, attempts)} attempts)"
    return error


def _raise_if_cancelled(exc: ActivityError | ChildWorkflowError) -> None:
    """An activity or child ended by our cancellation: cancel the step's coroutine too."""
    if isinstance(exc.cause, TemporalCancelledError):
        raise asyncio.CancelledError from exc


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
