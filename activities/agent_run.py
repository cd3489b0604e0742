"""Activities of ``AgentRunWorkflow``: load, model step, tool step, finish.

Each activity writes its part of the run's read projection, keyed so that a
retry or a replay after a worker crash updates the same rows instead of adding
new ones.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from core import errors
from core.agents import AgentConfig
from core.contracts.agent_run import (
    BeginRunInput,
    BegunRun,
    FinishRunInput,
    LlmStepInput,
    LlmStepResult,
    ToolStepInput,
    ToolStepResult,
)
from core.contracts.llm import ChatMessage, LlmRequest
from core.db.models import utcnow
from core.db.projection import RunProjection, StepRecord
from core.errors import ToolError
from core.events import RunEventLog
from core.llm.base import ProviderError, ProviderRegistry
from core.telemetry import metrics
from core.tools.base import ToolContext, ToolRegistry

log = structlog.get_logger(__name__)


def _step_seq(step_id: str) -> int:
    return int(step_id.lstrip("s").split("-", 1)[0])


class AgentRunActivities:
    """Activities with their dependencies injected by the worker."""

    def __init__(
        self, *, projection: RunProjection, events: RunEventLog, providers: ProviderRegistry, tools: ToolRegistry
    ):
        self._projection = projection
        self._events = events
        self._providers = providers
        self._tools = tools

    async def _record(self, tenant_id: str, run_id: str, step: StepRecord) -> None:
        """Write the step to the projection and announce it on the run's event stream."""
        await self._projection.record_step(tenant_id, run_id, step)
        event = "step.started" if step.status == "running" else "step.completed"
        data: dict[str, Any] = {"step_id": step.step_id, "kind": step.kind, "name": step.name, "status": step.status}
        if step.status != "running":
            data |= {"output": step.output, "error": step.error, "attempts": step.attempts}
        await self._events.publish(tenant_id, run_id, event, data)

    @activity.defn(name="agent_run.begin")
    async def begin(self, inp: BeginRunInput) -> BegunRun:
        """Mark the run running; return the model, tools and opening messages."""
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, run_id=inp.run_id)
        loaded = await self._projection.begin(
            inp.tenant_id, inp.run_id, inp.agent_id, inp.agent_version, activity.info().workflow_run_id or ""
        )
        if loaded is None:
            raise ApplicationError(
                f"run {inp.run_id} or agent {inp.agent_id} v{inp.agent_version} not found",
                type=errors.RUN_NOT_FOUND,
                non_retryable=True,
            )
        await self._events.publish(inp.tenant_id, inp.run_id, "run.started", {"status": "running"})
        config = AgentConfig.model_validate(loaded.config)
        messages = [ChatMessage(role="user", content=loaded.input)]
        if config.instructions:
            messages.insert(0, ChatMessage(role="system", content=config.instructions))
        tools = []
        for spec in config.tools:
            tool = self._tools.get(spec.name)
            if tool is not None:
                tools.append(tool.schema)
        return BegunRun(
            model=config.model.to_contract(),
            messages=messages,
            tools=tools,
            bindings=[t.to_contract() for t in config.tools],
        )

    @activity.defn(name="agent_run.llm")
    async def llm(self, inp: LlmStepInput) -> LlmStepResult:
        """Call the agent's model once and record the step."""
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, run_id=inp.run_id)
        info = activity.info()
        started = utcnow()
        step = StepRecord(
            step_id=inp.step_id,
            seq=_step_seq(inp.step_id),
            kind="llm",
            name=f"{inp.model.provider}:{inp.model.name}",
            status="running",
            attempts=info.attempt,
            input={"messages": len(inp.messages), "tools": [t.name for t in inp.tools]},
            started_at=started,
        )
        await self._record(inp.tenant_id, inp.run_id, step)
        clock = time.perf_counter()
        try:
            provider = self._providers.get(inp.model.provider)
        except KeyError:
            raise ApplicationError(
                f"provider {inp.model.provider!r} is not configured",
                type=errors.PROVIDER_REJECTED,
                non_retryable=True,
            ) from None
        try:
            async with heartbeating():
                response = await provider.complete(LlmRequest(model=inp.model, messages=inp.messages, tools=inp.tools))
        except ProviderError as exc:
            step.status, step.error, step.ended_at = "failed", {"message": str(exc), "provider": exc.provider}, utcnow()
            await self._record(inp.tenant_id, inp.run_id, step)
            metrics.ACTIVITY_LATENCY.labels("agent_run.llm", "error").observe(time.perf_counter() - clock)
            raise ApplicationError(
                str(exc),
                {"provider": exc.provider, "status": exc.status},
                type=errors.PROVIDER_UNAVAILABLE if exc.retryable else errors.PROVIDER_REJECTED,
                non_retryable=not exc.retryable,
            ) from exc
        metrics.ACTIVITY_LATENCY.labels("agent_run.llm", "ok").observe(time.perf_counter() - clock)
        metrics.LLM_TOKENS.labels(inp.model.provider, "input").inc(response.usage.input_tokens)
        metrics.LLM_TOKENS.labels(inp.model.provider, "output").inc(response.usage.output_tokens)
        step.status, step.ended_at = "completed", utcnow()
        step.output = {
            "content": response.content,
            "tool_calls": [asdict(c) for c in response.tool_calls],
            "finish_reason": response.finish_reason,
        }
        step.input_tokens, step.output_tokens = response.usage.input_tokens, response.usage.output_tokens
        step.cost_usd = response.usage.cost_usd
        await self._record(inp.tenant_id, inp.run_id, step)
        return LlmStepResult(response=response)

    @activity.defn(name="agent_run.tool")
    async def tool(self, inp: ToolStepInput) -> ToolStepResult:
        """Run one tool call at most once per (workflow, step) and record the step.

        A tool failure the model can act on (bad arguments, unknown tool) is
        returned as an error result rather than failing the activity.
        """
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, run_id=inp.run_id)
        info = activity.info()
        effect_key = f"{info.workflow_id}:{inp.step_id}"
        step = StepRecord(
            step_id=inp.step_id,
            seq=_step_seq(inp.step_id),
            kind="tool",
            name=inp.call.name,
            status="running",
            attempts=info.attempt,
            input=inp.call.arguments,
            started_at=utcnow(),
        )
        await self._record(inp.tenant_id, inp.run_id, step)
        seen, stored = await self._projection.recorded_effect(effect_key)
        if seen:
            result = ToolStepResult(**stored)
        else:
            async with heartbeating():
                result = await self._execute(inp, effect_key)
            await self._projection.record_effect(inp.tenant_id, effect_key, asdict(result))
        step.status = "failed" if result.is_error else "completed"
        step.output = result.data if not result.is_error else None
        step.error = {"message": result.content} if result.is_error else None
        step.ended_at = utcnow()
        await self._record(inp.tenant_id, inp.run_id, step)
        return result

    async def _execute(self, inp: ToolStepInput, effect_key: str) -> ToolStepResult:
        tool = self._tools.get(inp.call.name) if inp.permitted else None
        if tool is None:
            return ToolStepResult(content=f"unknown tool {inp.call.name!r}", is_error=True)
        clock = time.perf_counter()
        context = ToolContext(tenant_id=inp.tenant_id, run_id=inp.run_id, idempotency_key=effect_key)
        try:
            data: Any = await tool.call(inp.call.arguments, context)
        except ToolError as exc:
            metrics.ACTIVITY_LATENCY.labels("agent_run.tool", "error").observe(time.perf_counter() - clock)
            return ToolStepResult(content=f"error: {exc}", is_error=True)
        metrics.ACTIVITY_LATENCY.labels("agent_run.tool", "ok").observe(time.perf_counter() - clock)
        content = data.get("value") if isinstance(data, dict) and "value" in data else data
        return ToolStepResult(content=content if isinstance(content, str) else json.dumps(content), data=data)

    @activity.defn(name="agent_run.finish")
    async def finish(self, inp: FinishRunInput) -> None:
        """Write the run's final status, output/error and usage."""
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, run_id=inp.run_id)
        await self._projection.finish(
            inp.tenant_id,
            inp.run_id,
            status=inp.status,
            output=inp.output,
            error=inp.error,
            input_tokens=inp.usage.input_tokens,
            output_tokens=inp.usage.output_tokens,
            cost_usd=inp.usage.cost_usd,
        )
        await self._events.publish(
            inp.tenant_id,
            inp.run_id,
            f"run.{inp.status}",
            {"status": inp.status, "output": inp.output, "error": inp.error, "usage": asdict(inp.usage)},
        )
        metrics.RUNS_FINISHED.labels(inp.status).inc()
        log.info("run finished", status=inp.status)
