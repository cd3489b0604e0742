"""``PipelineWorkflow``: interprets one version of a tenant's pipeline, a DAG of steps.

The definition travels as a snapshot in ``PipelineRunInput.definition``; what runs next is
decided by ``core.pipelines.scheduler.Scheduler`` (pure, so replays decide the same):

0. A run a schedule started has no run id yet: ``pipeline.begin_scheduled`` records it
   (or records it ``failed`` when it cannot start: the workflow ends there) and answers its
   id, version and definition (cancelled meanwhile: the row, if written, is ``cancelled``).
   A re-run's input carries the records it reuses.
1. The run is marked ``running`` and every top-level step is written ``pending`` (a
   re-run's reused steps as they were).
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
     with ``on_error: fail``, no further item starts. All items live in one history: a
     map of the maximum 1000 items adds a few thousand events (no continue-as-new).
   - ``pipeline`` (sub-pipeline): not supported yet; the step fails.

4. A step with ``on_error: fail`` that fails fails the run: started steps are cancelled
   (activity/child cancellation), the rest marked ``cancelled``. ``on_error: continue``
   records the step ``failed`` and goes on. When all steps are final the ``output``
   expression gives the run's output.
5. Temporal cancellation (``POST /v1/pipeline-runs/{id}/cancel``) cancels the running
   steps, marks every unfinished step ``cancelled``, records the run ``cancelled`` and
   ends the workflow cancelled.

Projection: step changes are queued and written by one writer coroutine, a batch per
``pipeline.project`` activity (one upsert statement), so a map of many items costs few
activities; step times are workflow time. The outcome is written by ``pipeline.finish``.
The ``state`` query answers the live view. Child workflow ids derive from the run and the
step id (``m[3]`` for map items), unique for the life of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

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
    from core.contracts.agent_run import AgentRunInput, AgentRunResult
    from core.contracts.llm import Usage
    from core.contracts.pipelines import (
        APPROVAL_REJECTED,
        APPROVAL_TIMED_OUT,
        DECIDE_APPROVAL_UPDATE,
        DEFINITION_INVALID,
        STATE_QUERY,
        STEP_TIMED_OUT,
        TOOL_FAILED,
        WORKFLOW_NAME,
        AgentStepInput,
        AgentStepRun,
        FinishRunInput,
        OnError,
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
        ToolStepInput,
        ToolStepOutput,
    )
    from core.ids import AGENT_ID, RUN_KIND, TENANT_ID
    from core.pipelines.definition import AgentStep, ApprovalStep, MapStep, ToolStep, WaitStep
    from core.pipelines.scheduler import Failure, Launch, Scheduler, Skip, live_status, map_result
    from core.pipelines.schedules import scheduled_run_id
    from core.pipelines.validation import load_definition
    from workflows._helpers import error_of

from workflows.agent_run import AgentRunWorkflow

DECISIONS = ("approve", "reject")
DEFAULT_TOOL_TIMEOUT = policies.TOOL_TIMEOUT
_Status = PipelineStepStatus


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
            return await self._finish(writer, PipelineRunStatus.FAILED, None, error)
        scheduler = Scheduler(definition, inp.input)
        self._top = [s.id for s in definition.steps]
        for step in definition.steps:
            reused = inp.reused_steps.get(step.id)
            self._records[step.id] = reused or StepRecord()
            self._steps[step.id] = _Step(type=str(step.type))
            self._dirty[step.id] = None
        self._status = PipelineRunStatus.RUNNING
        tasks: dict[str, asyncio.Task[None]] = {}
        try:
            outcome = await self._drive(scheduler, tasks)
        except asyncio.CancelledError:
            await self._cancel(tasks, list(self._records))
            await self._finish(writer, PipelineRunStatus.CANCELLED, None, None)
            raise
        if outcome.cancel:
            await self._cancel(tasks, list(outcome.cancel))
        return await self._finish(writer, outcome.status, outcome.output, outcome.error)

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
        await workflow.execute_activity_method(
            PipelineActivities.finish,
            FinishRunInput(
                tenant_id=inp.tenant_id, run_id=scheduled_run_id(workflow.info().workflow_id), status=status
            ),
            start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
            retry_policy=policies.DB_RETRY,
            summary=f"run {status}",
        )

    async def _drive(self, scheduler: Scheduler, tasks: dict[str, asyncio.Task[None]]) -> Any:
        """Apply the scheduler's answers until it gives the outcome."""
        while True:
            self._changed = False
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

    async def _cancel(self, tasks: dict[str, asyncio.Task[None]], step_ids: list[str]) -> None:
        """Cancel the running steps among ``step_ids`` and mark every unfinished one ``cancelled``."""
        running = [t for s, t in tasks.items() if s in step_ids and not t.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        for step_id in list(self._records):
            if self._records[step_id].status not in _Status.FINAL:
                self._end(step_id, StepRecord(status=_Status.CANCELLED, attempts=self._records[step_id].attempts))

    async def _finish(
        self, writer: asyncio.Task[None], status: str, output: Any, error: dict[str, Any] | None
    ) -> PipelineRunResult:
        assert self._inp is not None
        self._status = status
        self._closing = True
        await writer
        await workflow.execute_activity_method(
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
            start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
            retry_policy=policies.DB_RETRY,
            summary=f"run {status}",
        )
        return PipelineRunResult(run_id=self._inp.run_id, status=status, output=output, error=error)

    # --- steps ------------------------------------------------------------------------

    async def _run_step(self, scheduler: Scheduler, launch: Launch) -> StepRecord:
        """Run one step, already marked started (top-level or a map item), to its final record."""
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
            if isinstance(step, MapStep):
                return await self._map(scheduler, launch, step)
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
            result: AgentRunResult = await workflow.execute_child_workflow(
                AgentRunWorkflow.run,
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
            )
        except ChildWorkflowError as exc:
            _raise_if_cancelled(exc)
            error = error_of(exc)
            if isinstance(exc.cause, TemporalTimeoutError):
                error = {"type": STEP_TIMED_OUT, "message": f"the agent run took longer than {step.timeout_s}s"}
            return _failed({**error, "run_id": run.run_id})
        self._usage = self._usage.add(result.usage)
        return StepRecord(status=_Status.COMPLETED, output=result.output, attempts=1)

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
        items: list[Any] = launch.arguments.get("items") or []
        slots = asyncio.Semaphore(step.max_concurrency)
        records: list[StepRecord] = [StepRecord() for _ in items]
        stop = False

        async def one(index: int, item: Any) -> None:
            nonlocal stop
            async with slots:
                if stop:
                    return
                prepared = scheduler.prepare_item(launch, index, item)
                if isinstance(prepared, Launch):
                    self._begin(prepared.step_id, str(prepared.step.type))
                    record = await self._run_step(scheduler, prepared)
                elif isinstance(prepared, Skip):
                    record = StepRecord(status=_Status.SKIPPED, error={"reason": prepared.reason})
                else:
                    assert isinstance(prepared, Failure)
                    record = _failed(prepared.error)
                records[index] = record
                self._steps.setdefault(prepared.step_id, _Step(type=str(step.step.type)))
                self._end(prepared.step_id, record)
                if record.status == _Status.FAILED and step.step.on_error == OnError.FAIL:
                    stop = True

        await asyncio.gather(*(one(i, item) for i, item in enumerate(items)))
        result = map_result(step, records)
        result.attempts = 1
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
        return self._status if live and self._status != self._projected else ""

    def _batch(self) -> ProjectionWrite:
        assert self._inp is not None
        steps = []
        for step_id in self._dirty:
            record, step = self._records[step_id], self._steps[step_id]
            error = record.error if record.status != _Status.SKIPPED else None
            steps.append(
                StepWriteView(step_id=step_id, type=step.type, status=record.status, attempts=record.attempts,
                              started_at=step.started_at, ended_at=step.ended_at, output=record.output, error=error)
            )  # fmt: skip
        self._dirty = {}
        return ProjectionWrite(
            tenant_id=self._inp.tenant_id,
            run_id=self._inp.run_id,
            status=self._status_to_write(),
            steps=steps,
            workflow_run_id="" if self._written else workflow.info().run_id,
        )

    async def _write_loop(self) -> None:
        """Write queued step changes and the live status, one ``pipeline.project`` batch at a time, until closing."""
        while True:
            await workflow.wait_condition(lambda: bool(self._dirty) or bool(self._status_to_write()) or self._closing)
            if self._closing and not self._dirty and self._written:
                return
            batch = self._batch()
            await workflow.execute_activity_method(
                PipelineActivities.project,
                batch,
                start_to_close_timeout=policies.DB_WRITE_TIMEOUT,
                retry_policy=policies.DB_RETRY,
                summary=f"{len(batch.steps)} steps" + (f", run {batch.status}" if batch.status else ""),
            )
            self._written = True
            self._projected = batch.status or self._projected


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
