"""The tool step: ``tool`` runs a call at most once and records its effect; ``child`` creates a ``run_agent`` run."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict

import structlog
from temporalio import activity

from activities.agent_run.base import AgentRunBase
from activities.agent_run.steps import PREVIEW_CHARS, step_seq
from activities.errors import classify_database_errors
from activities.heartbeat import heartbeating
from core.contracts.agent_run import INLINE_LIMIT_BYTES, ChildRun, ChildRunInput, ToolStepInput, ToolStepResult
from core.contracts.llm import ChatMessage
from core.db.models import utcnow
from core.db.projection import Effect, StepRecord
from core.ids import run_workflow_id
from core.telemetry import metrics
from core.threads import Append
from core.tools.base import ToolContext
from core.tools.invoke import invalid_arguments, invoke, unknown_tool


class ToolStepActivities(AgentRunBase):
    """The ``tool`` and ``child`` activities."""

    @activity.defn(name="agent_run.tool")
    @classify_database_errors
    async def tool(self, inp: ToolStepInput) -> ToolStepResult:
        """Run one tool call at most once per (workflow, step); append call and result to the thread.

        A failure the model can act on (bad arguments, unknown tool, rejection)
        becomes an error result for the model rather than a failed activity.
        """
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, run_id=inp.run_id)
        info = activity.info()
        effect_key = f"{info.workflow_id}:{inp.step_id}"
        step = StepRecord(
            step_id=inp.step_id,
            seq=step_seq(inp.step_id),
            kind="tool",
            name=inp.call.name,
            status="running",
            attempts=info.attempt,
            input=inp.call.arguments,
            started_at=utcnow(),
        )
        # One statement before the call (assistant message, step, effect check) and one after it
        # (effect record, result message, step): each commits alone, all or nothing.
        assistant = None
        if inp.assistant is not None and inp.thread_id:
            key = inp.assistant_key or f"{info.workflow_id}:{inp.step_id}:assistant"
            assistant = Append(inp.tenant_id, inp.thread_id, inp.run_id, key, inp.assistant)
        seen, stored = await self._projection.write_step(
            inp.tenant_id, inp.run_id, step, message=assistant, read_effect=effect_key
        )
        if assistant is not None:
            await self._threads.invalidate(inp.tenant_id, inp.thread_id)
        await self._announce(inp.tenant_id, inp.run_id, step)
        if inp.outcome is not None:
            result, full = inp.outcome, inp.outcome.content
        elif seen:
            result = ToolStepResult(**stored)
            full = result.content
        else:
            async with heartbeating():
                full, result = await self._execute(inp, effect_key)
        step.status = "failed" if result.is_error else "completed"
        step.output = result.data if not result.is_error else None
        step.error = {"message": result.content} if result.is_error else None
        step.ended_at = utcnow()
        answer = None
        if inp.thread_id:
            message = ChatMessage(role="tool", content=full, tool_call_id=inp.call.id, name=inp.call.name)
            answer = Append(inp.tenant_id, inp.thread_id, inp.run_id, f"{effect_key}:result", message)
        effect = None if seen else Effect(effect_key, asdict(result))
        try:
            await self._projection.write_step(inp.tenant_id, inp.run_id, step, message=answer, effect=effect)
        except Exception:
            if effect is not None:  # the call happened: its record must outlive whatever failed with it
                await self._projection.record_effect(inp.tenant_id, effect.key, effect.result)
            raise
        if inp.thread_id:
            await self._threads.invalidate(inp.tenant_id, inp.thread_id)
        await self._announce(inp.tenant_id, inp.run_id, step)
        return result

    async def _execute(self, inp: ToolStepInput, effect_key: str) -> tuple[str, ToolStepResult]:
        """Full text for the thread, and the (bounded) result for the workflow."""
        if inp.rejection is not None:
            text = f"error: the call was rejected: {inp.rejection}"
            return text, ToolStepResult(content=text, is_error=True)
        tool = await self._tools.get(inp.tenant_id, inp.call.name) if inp.permitted else None
        if tool is None:
            text = unknown_tool(inp.call.name)
            return text, ToolStepResult(content=text, is_error=True)
        problem = invalid_arguments(tool.schema, inp.call.arguments)
        if problem is not None:
            return problem, ToolStepResult(content=problem, is_error=True)
        clock = time.perf_counter()
        context = ToolContext(
            tenant_id=inp.tenant_id,
            run_id=inp.run_id,
            idempotency_key=effect_key,
            subject=await self._subject(inp.tenant_id, inp.run_id),
        )
        outcome = await invoke(tool, inp.call.arguments, context)
        metrics.ACTIVITY_LATENCY.labels("agent_run.tool", "error" if outcome.is_error else "ok").observe(
            time.perf_counter() - clock
        )
        full = outcome.text
        if outcome.is_error:
            return full, ToolStepResult(content=full, is_error=True)
        inline = len(full.encode()) <= INLINE_LIMIT_BYTES
        return full, ToolStepResult(
            content=full if inline else full[:PREVIEW_CHARS] + f"… [{len(full)} characters in the thread]",
            data=outcome.data if inline else {"preview": full[:PREVIEW_CHARS], "size": len(full)},
        )

    @activity.defn(name="agent_run.child")
    @classify_database_errors
    async def child(self, inp: ChildRunInput) -> ChildRun:
        """Create (once) the run of the agent a ``run_agent`` call names, in the same tenant."""
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, run_id=inp.parent_run_id)
        key = f"{activity.info().workflow_id}:{inp.step_id}"
        created = await self._projection.create_child_run(
            inp.tenant_id, inp.parent_run_id, inp.agent_id, inp.input, child_run_id(key)
        )
        if created is None:
            return ChildRun(error=f"no agent {inp.agent_id!r} in this workspace")
        run_id, version, thread_id = created
        return ChildRun(
            run_id=run_id,
            agent_id=inp.agent_id,
            agent_version=version,
            thread_id=thread_id,
            workflow_id=run_workflow_id(inp.tenant_id, run_id),
        )


def child_run_id(key: str) -> str:
    """A stable run id for the child run a step asks for (retries create nothing new)."""
    return "run_" + hashlib.sha256(key.encode()).hexdigest()[:24]
