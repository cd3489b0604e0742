"""The run's lifecycle: ``begin``, ``start_turn``, ``finish`` (which queues memory extraction) and ``close``."""

from __future__ import annotations

import functools

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.agent_run.base import AgentRunBase
from activities.agent_run.steps import announce_close, announce_ended_steps, preview, step_seq, turn_end_data
from activities.errors import classify_database_errors
from core import errors
from core.agents import AgentConfig
from core.contracts.agent_run import (
    BeginRunInput,
    BegunRun,
    CloseRunInput,
    FinishRunInput,
    FinishRunResult,
    StartTurnInput,
)
from core.contracts.llm import ChatMessage
from core.contracts.memory import MemoryExtractInput
from core.db.models import utcnow
from core.db.projection import RunIdentity, StepRecord
from core.telemetry import metrics
from core.threads import Append

log = structlog.get_logger(__name__)


class LifecycleActivities(AgentRunBase):
    """Activities that open a run, start its turns, record their ends and close it."""

    @activity.defn(name="agent_run.begin")
    @classify_database_errors
    async def begin(self, inp: BeginRunInput) -> BegunRun:
        """Mark the run running, append its input to the thread, return the loop configuration."""
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, run_id=inp.run_id)
        info = activity.info()
        cached = self._models.cached_config(inp.tenant_id, inp.agent_id, inp.agent_version)
        loaded = await self._projection.begin_run(  # one statement: the run's status and its input in the thread
            inp.tenant_id,
            inp.run_id,
            inp.agent_id,
            inp.agent_version,
            info.workflow_run_id or "",
            input_key=f"{info.workflow_id}:input",
            with_config=cached is None,
        )
        if loaded is None:
            raise ApplicationError(
                f"run {inp.run_id} or agent {inp.agent_id} v{inp.agent_version} not found",
                type=errors.RUN_NOT_FOUND,
                non_retryable=True,
            )
        config = cached or AgentConfig.model_validate(loaded.config)
        await self._threads.invalidate(inp.tenant_id, loaded.thread_id)
        self._models.cache_config(inp.tenant_id, inp.agent_id, inp.agent_version, config)
        self._identities[inp.run_id] = RunIdentity(loaded.subject, inp.agent_id, inp.agent_version)
        await self._events.publish(inp.tenant_id, inp.run_id, "run.started", {"status": "running", "turn": 1})
        names = [spec.name for spec in config.tools]
        return BegunRun(
            model=config.model.to_contract(),
            tools=await self._tools.schemas(inp.tenant_id, names),
            bindings=[t.to_contract() for t in config.tools],
            double_texting=config.double_texting,
            thread_id=loaded.thread_id,
            parallel_tool_calls=config.parallel_tool_calls,
        )

    @activity.defn(name="agent_run.start_turn")
    @classify_database_errors
    async def start_turn(self, inp: StartTurnInput) -> None:
        """Append the turn's user messages to the thread and mark the run running."""
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, run_id=inp.run_id)
        info = activity.info()
        if inp.interrupted_step_id:
            await self._record(
                inp.tenant_id,
                inp.run_id,
                StepRecord(
                    step_id=inp.interrupted_step_id,
                    seq=step_seq(inp.interrupted_step_id),
                    kind="llm",
                    name="interrupted",
                    status="cancelled",
                    error={"message": "interrupted by a new message"},
                    ended_at=utcnow(),
                ),
            )
        if inp.messages:
            async with self._projection.engine.begin() as conn:  # the turn's messages in one transaction
                for message in inp.messages:
                    await self._threads.append(
                        tenant_id=inp.tenant_id,
                        thread_id=inp.thread_id,
                        run_id=inp.run_id,
                        key=f"{info.workflow_id}:msg:{message.id}",
                        message=ChatMessage(role="user", content=message.text),
                        conn=conn,
                    )
            await self._threads.invalidate(inp.tenant_id, inp.thread_id)
        await self._projection.set_status(inp.tenant_id, inp.run_id, "running")
        await self._events.publish(
            inp.tenant_id,
            inp.run_id,
            "run.started",
            {"status": "running", "turn": inp.turn, "messages": len(inp.messages)},
        )

    @activity.defn(name="agent_run.finish")
    @classify_database_errors
    async def finish(self, inp: FinishRunInput) -> FinishRunResult:
        """Append the answer to the thread; write the status, output/error and usage; announce it."""
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, run_id=inp.run_id)
        output = inp.output
        if inp.output_ref:
            output = (await self._blobs.get(inp.tenant_id, inp.output_ref)).decode()
        answer = None
        if inp.answer is not None and inp.thread_id:
            answer = Append(
                inp.tenant_id,
                inp.thread_id,
                inp.run_id,
                inp.answer_key or f"{activity.info().workflow_id}:answer:{inp.turn}",
                ChatMessage(role="assistant", content=output or "", tool_calls=inp.answer.tool_calls),
            )
        appended = answer is not None
        ending = functools.partial(
            self._projection.finish,
            inp.tenant_id,
            inp.run_id,
            status=inp.status,
            output=output,
            error=inp.error,
            input_tokens=inp.usage.input_tokens,
            output_tokens=inp.usage.output_tokens,
            cost_usd=inp.usage.cost_usd,
            message=answer,
        )
        if inp.status in ("failed", "cancelled"):  # with the steps the turn left open, in one transaction
            async with self._projection.engine.begin() as conn:
                created_at = await ending(conn=conn)
                await self._end_open_steps(inp, conn)
        else:  # one statement: the answer and the run's outcome
            created_at = await ending()
        if appended:
            await self._threads.invalidate(inp.tenant_id, inp.thread_id)
        await self._events.publish(
            inp.tenant_id,
            inp.run_id,
            f"run.{inp.status}",
            turn_end_data(inp.status, output, inp.error, inp.usage, inp.turn),
        )
        deliveries: list[str] = []
        if inp.status in ("completed", "failed", "cancelled"):
            summary = {"status": inp.status, "output": preview(output), "error": inp.error, "turn": inp.turn}
            deliveries = await self._deliveries(inp.tenant_id, inp.run_id, f"run.{inp.status}", str(inp.turn), summary)
        if inp.status == "completed" and inp.thread_id:
            await self._queue_extraction(inp)
        metrics.RUNS_FINISHED.labels(inp.status).inc()
        if created_at is not None:
            metrics.RUN_DURATION.observe(max(0.0, (utcnow() - created_at).total_seconds()))
        log.info("run finished", status=inp.status, turn=inp.turn)
        return FinishRunResult(delivery_ids=deliveries, webhooks_task_queue=self._webhooks_task_queue)

    async def _end_open_steps(self, inp: FinishRunInput, conn: AsyncConnection) -> None:
        """End the steps a failed or cancelled turn left open, announcing each before the run's end.

        A step whose activity could not record its end (it failed before, or was still
        running when the run was cancelled) ends with the run. The events go out inside the
        transaction: if one cannot be published nothing is committed and the retry repeats both.
        """
        ended = await self._projection.end_open_steps(
            inp.tenant_id, inp.run_id, run_status=inp.status, error=inp.error, conn=conn
        )
        await announce_ended_steps(self._events, inp.tenant_id, inp.run_id, ended)

    async def _queue_extraction(self, inp: FinishRunInput) -> None:
        """Start the turn's memory extraction (agents with memory enabled, runs with a subject)."""
        identity = await self._identity(inp.tenant_id, inp.run_id)
        if self._memory is None or identity is None or not identity.subject:
            return
        config = await self._models.config(inp.tenant_id, identity.agent_id, identity.agent_version)
        if config.memory.enabled and config.memory.extract:
            await self._memory.start_extraction(MemoryExtractInput(inp.tenant_id, inp.run_id, inp.thread_id, inp.turn))

    @activity.defn(name="agent_run.close")
    async def close(self, inp: CloseRunInput) -> None:
        """Publish ``run.closed``, the last event of the run: its event streams end there.

        A retry may publish it twice; readers stop at the first.
        """
        await announce_close(self._events, inp.tenant_id, inp.run_id, inp.status, inp.turn)
