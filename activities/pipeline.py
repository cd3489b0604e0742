"""Activities of ``PipelineWorkflow``: projection writes, tool steps and the runs of agent steps.

- ``pipeline.claim_slot`` takes a slot of a pipeline with ``max_concurrent_runs`` and
  ``on_concurrency_limit: queue`` (``PipelineRunStore.claim_slot``); it fails, retryably and
  quietly (a benign error), while the run must wait.
- ``pipeline.project`` / ``pipeline.finish`` write the run's projection (idempotent:
  steps upsert, a final run is never rewritten), then announce what they wrote on the
  run's event stream (``core.pipelines.events``) and queue the webhook deliveries of
  ``pipeline_run.waiting_approval`` / ``.completed`` / ``.failed``, whose ids they
  return for the workflow to start. A retried write announces again (at least once).
- ``pipeline.tool`` runs one attempt of a ``tool`` step through the same tool resolver as
  agent runs (built-ins, ``http_request``, memory tools, tenant tools). The side effect of
  a tool that has one (``side_effects``) is applied at most once per (workflow, step): a
  success is recorded under the key ``{workflow id}:{step id}`` (also the tool's idempotency
  key), so an attempt after a lost completion answers the recorded result; a tool without
  effects (``calculator``, a GET tool) runs again instead, with no record to read or write.
  A ``ToolError`` fails the attempt (retried per the step's ``retry``); an unknown tool or
  refused arguments fail the step without retrying.
- ``pipeline.agent_run`` inserts (once) the ``run`` row of an ``agent`` step, with
  ``parent_run_id`` = the pipeline run, so it is listed under ``/v1/runs``; the workflow
  then runs it as a child ``AgentRunWorkflow``.
- ``pipeline.sub_run`` inserts (once) the ``pipeline_run`` row of a ``pipeline`` step: the
  tenant's live pipeline at its current version, the step's input checked against that
  version's ``inputs`` schema, ``parent_run_id``/``parent_step_id`` naming the step (a
  child pipeline with ``on_concurrency_limit: reject`` at its limit fails the step with
  ``PipelineConcurrencyLimit``); the workflow then runs it as a child ``PipelineWorkflow``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.agent_run import EventNotifier, child_run_id
from activities.agent_run.steps import preview
from activities.errors import classify_database_errors
from activities.heartbeat import heartbeating
from core.contracts.pipelines import (
    CONCURRENCY_LIMIT,
    INPUT_INVALID,
    OUTPUT_TOO_LARGE,
    PIPELINE_NOT_FOUND,
    RUN_QUOTA_EXCEEDED,
    TOOL_FAILED,
    TOOL_INVALID,
    AgentStepInput,
    AgentStepRun,
    ClaimSlotInput,
    FinishRunInput,
    PipelineRunStatus,
    PipelineStepStatus,
    ProjectionWrite,
    SubRun,
    SubRunInput,
    ToolStepInput,
    ToolStepOutput,
    WebhookDeliveries,
)
from core.db.models import PipelineRun
from core.db.projection import RunProjection
from core.errors import ToolError
from core.events import RunEventLog
from core.ids import pipeline_run_workflow_id, run_workflow_id
from core.pipelines.events import RUN_STARTED, RUN_WAITING_APPROVAL, WEBHOOK_EVENTS, step_event
from core.pipelines.expressions import MAX_VALUE_BYTES, json_size
from core.pipelines.store import ConcurrencyLimitError, PipelineRunStore, StepWrite, rejecting_limit
from core.pipelines.validation import validate_input
from core.quotas import QuotaExceededError
from core.tools.base import ToolContext, ToolResolver
from core.tools.schema import argument_errors
from core.webhooks.events import event_id_for


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class PipelineActivities:
    """The pipelines worker's activities, over the projection, the event log, the tool resolver and the runs table."""

    def __init__(
        self,
        store: PipelineRunStore,
        runs: RunProjection,
        tools: ToolResolver,
        *,
        events: RunEventLog,
        agents_task_queue: str,
        quota_check: Callable[[str], Awaitable[None]],
        notify: EventNotifier | None = None,
        webhooks_task_queue: str = "",
        agent_max_steps: int = 12,
        heartbeat_timeout_s: float = 15.0,
    ):
        self._store = store
        self._runs = runs
        self._tools = tools
        self._events = events
        self._notify = notify
        self._webhooks_task_queue = webhooks_task_queue
        self._agents_task_queue = agents_task_queue
        self._quota_check = quota_check
        self._agent_max_steps = agent_max_steps
        self._heartbeat_timeout_s = heartbeat_timeout_s

    @activity.defn(name="pipeline.project")
    @classify_database_errors
    async def project(self, inp: ProjectionWrite) -> WebhookDeliveries | None:
        """Write the run's live status and the steps that changed (two statements, each idempotent); announce them."""
        await self._store.set_live(inp.tenant_id, inp.run_id, status=inp.status, workflow_run_id=inp.workflow_run_id)
        steps = [
            StepWrite(
                step_id=s.step_id,
                type=s.type,
                status=s.status,
                attempts=s.attempts,
                started_at=_time(s.started_at),
                ended_at=_time(s.ended_at),
                output=s.output,
                error=s.error,
            )
            for s in inp.steps
        ]
        await self._store.write_steps(inp.tenant_id, inp.run_id, steps)
        if inp.workflow_run_id:  # the workflow's first write
            await self._events.publish(inp.tenant_id, inp.run_id, RUN_STARTED, {"status": PipelineRunStatus.RUNNING})
        deliveries: list[str] = []
        for step in inp.steps:
            event = step_event(step)
            if event is not None:
                await self._events.publish(inp.tenant_id, inp.run_id, *event)
            if step.status == PipelineStepStatus.WAITING_APPROVAL:
                data = {"status": PipelineRunStatus.WAITING_APPROVAL, "step_id": step.step_id}
                deliveries += await self._announce(inp.tenant_id, inp.run_id, RUN_WAITING_APPROVAL, data, step.step_id)
        return self._deliveries(deliveries)

    @activity.defn(name="pipeline.finish")
    @classify_database_errors
    async def finish(self, inp: FinishRunInput) -> WebhookDeliveries | None:
        """Record the run's outcome (once); announce it, its stream's last event."""
        await self._store.finish(
            inp.tenant_id,
            inp.run_id,
            status=inp.status,
            output=inp.output,
            error=inp.error,
            usage=(inp.input_tokens, inp.output_tokens, inp.cost_usd),
        )
        usage = {"input_tokens": inp.input_tokens, "output_tokens": inp.output_tokens, "cost_usd": inp.cost_usd}
        data = {"status": inp.status, "output": inp.output, "error": inp.error, "usage": usage}
        return self._deliveries(await self._announce(inp.tenant_id, inp.run_id, f"pipeline_run.{inp.status}", data))

    async def _announce(
        self, tenant_id: str, run_id: str, event_type: str, data: dict[str, Any], key: str = ""
    ) -> list[str]:
        """Publish a run event; queue its webhook deliveries (webhook events only; output previewed)."""
        await self._events.publish(tenant_id, run_id, event_type, data)
        if self._notify is None or event_type not in WEBHOOK_EVENTS:
            return []
        summary = {"run_id": run_id} | data | ({"output": preview(data["output"])} if "output" in data else {})
        return await self._notify(tenant_id, event_id_for(run_id, event_type, key), event_type, summary)

    def _deliveries(self, ids: list[str]) -> WebhookDeliveries | None:
        return WebhookDeliveries(delivery_ids=ids, webhooks_task_queue=self._webhooks_task_queue) if ids else None

    @activity.defn(name="pipeline.claim_slot")
    @classify_database_errors
    async def claim_slot(self, inp: ClaimSlotInput) -> None:
        """Move the queued run to ``running`` once a slot is free and it is first in line; else fail (retried)."""
        workflow_run_id = activity.info().workflow_run_id or ""
        if not await self._store.claim_slot(inp.tenant_id, inp.run_id, inp.pipeline_id, inp.limit, workflow_run_id):
            raise ApplicationError(
                f"pipeline {inp.pipeline_id} has {inp.limit} live runs: waiting for a slot",
                type=CONCURRENCY_LIMIT,
                category=ApplicationErrorCategory.BENIGN,
            )

    @activity.defn(name="pipeline.tool")
    @classify_database_errors
    async def tool(self, inp: ToolStepInput) -> ToolStepOutput:
        """One attempt of a tool step; the side effect happens at most once per (workflow, step)."""
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, pipeline_run_id=inp.run_id)
        info = activity.info()
        key = f"{info.workflow_id}:{inp.step_id}"
        tool = await self._tools.get(inp.tenant_id, inp.tool)
        if tool is None:
            raise _failure(f"unknown tool {inp.tool!r}", TOOL_INVALID, non_retryable=True)
        if tool.side_effects:  # a call without effects may simply run again: nothing to record
            seen, stored = await self._runs.recorded_effect(key)
            if seen:
                return ToolStepOutput(output=stored, attempts=info.attempt)
        problems = argument_errors(tool.schema, inp.args)
        if problems:
            raise _failure(f"invalid arguments for {inp.tool}: {'; '.join(problems)}", TOOL_INVALID, non_retryable=True)
        context = ToolContext(tenant_id=inp.tenant_id, run_id=inp.run_id, idempotency_key=key)
        try:
            async with heartbeating():
                data: Any = await tool.call(inp.args, context)
        except ToolError as exc:
            raise _failure(str(exc), TOOL_FAILED) from None
        output = data.get("value") if isinstance(data, dict) and set(data) == {"value"} else data
        output = json.loads(json.dumps(output, default=str))
        if json_size(output) > MAX_VALUE_BYTES:
            raise _failure(
                f"the output of {inp.tool} is larger than {MAX_VALUE_BYTES} bytes", OUTPUT_TOO_LARGE, non_retryable=True
            )
        if tool.side_effects:
            await self._runs.record_effect(inp.tenant_id, key, output)
        return ToolStepOutput(output=output, attempts=info.attempt)

    @activity.defn(name="pipeline.agent_run")
    @classify_database_errors
    async def agent_run(self, inp: AgentStepInput) -> AgentStepRun:
        """Create (once) the agent run of an ``agent`` step, a child of the pipeline run."""
        key = f"{activity.info().workflow_id}:{inp.step_id}"
        if activity.info().attempt == 1:  # a later attempt may find its own run already counted
            try:
                await self._quota_check(inp.tenant_id)
            except QuotaExceededError as exc:
                return AgentStepRun(error=f"the tenant's run quota is exhausted: {exc}")
        created = await self._runs.create_child_run(
            inp.tenant_id, inp.run_id, inp.agent_id, inp.input, child_run_id(key)
        )
        if created is None:
            return AgentStepRun(error=f"no agent {inp.agent_id!r} in this workspace")
        run_id, version, thread_id = created
        return AgentStepRun(
            run_id=run_id,
            agent_id=inp.agent_id,
            agent_version=version,
            thread_id=thread_id,
            workflow_id=run_workflow_id(inp.tenant_id, run_id),
            task_queue=self._agents_task_queue,
            max_steps=self._agent_max_steps,
            heartbeat_timeout_s=self._heartbeat_timeout_s,
        )

    @activity.defn(name="pipeline.sub_run")
    @classify_database_errors
    async def sub_run(self, inp: SubRunInput) -> SubRun:
        """Create (once) the child run of a ``pipeline`` step: the live pipeline's current version."""
        run_id = sub_run_id(f"{activity.info().workflow_id}:{inp.step_id}")
        found = await self._store.live_version(inp.tenant_id, inp.pipeline_id)
        if found is None:
            return SubRun(error={"type": PIPELINE_NOT_FOUND, "message": f"no live pipeline {inp.pipeline_id!r}"})
        version, definition = found
        if activity.info().attempt == 1:  # a later attempt may find its own run already counted
            try:
                await self._quota_check(inp.tenant_id)
            except QuotaExceededError as exc:
                message = f"the tenant's run quota is exhausted: {exc}"
                return SubRun(error={"type": RUN_QUOTA_EXCEEDED, "message": message})
        refused = validate_input(definition.get("inputs"), inp.input)
        if refused:
            detail = "; ".join(f"{e.field}: {e.message}" for e in refused[:5])
            message = f"the input does not match the inputs schema of pipeline {inp.pipeline_id}: {detail}"
            errors = [{"field": e.field, "message": e.message} for e in refused]
            return SubRun(error={"type": INPUT_INVALID, "message": message[:1000], "errors": errors})
        try:
            run, _ = await self._store.insert(
                PipelineRun(
                    id=run_id,
                    tenant_id=inp.tenant_id,
                    pipeline_id=inp.pipeline_id,
                    version=version,
                    status=PipelineRunStatus.QUEUED,
                    input=inp.input,
                    workflow_id=pipeline_run_workflow_id(inp.tenant_id, run_id),
                    parent_run_id=inp.run_id,
                    parent_step_id=inp.step_id,
                ),
                limit=rejecting_limit(definition),
            )
        except ConcurrencyLimitError as exc:  # the child pipeline says on_concurrency_limit: reject
            return SubRun(error={"type": CONCURRENCY_LIMIT, "message": str(exc)})
        if run.version != version:  # an earlier attempt inserted it before the pipeline changed
            found = await self._store.live_version(inp.tenant_id, inp.pipeline_id, run.version)
            if found is None:
                return SubRun(error={"type": PIPELINE_NOT_FOUND, "message": f"no live pipeline {inp.pipeline_id!r}"})
            version, definition = found
        return SubRun(
            run_id=run.id,
            pipeline_id=run.pipeline_id,
            version=version,
            definition=definition,
            workflow_id=run.workflow_id,
        )

    def all(self) -> list[Any]:
        """Every activity callable, for the worker."""
        return [self.claim_slot, self.project, self.finish, self.tool, self.agent_run, self.sub_run]


def sub_run_id(key: str) -> str:
    """A stable pipeline-run id for the child run a step asks for (retries create nothing new)."""
    return "prn_" + hashlib.sha256(key.encode()).hexdigest()[:24]


def _failure(message: str, kind: str, *, non_retryable: bool = False) -> ApplicationError:
    """An attempt's failure; its details carry the attempt number (the step's ``attempts``)."""
    return ApplicationError(message, {"attempt": activity.info().attempt}, type=kind, non_retryable=non_retryable)
