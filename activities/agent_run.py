"""Activities of ``AgentRunWorkflow``: begin, turns, model steps, tool steps, approvals, finish.

Each activity writes its part of the run's read projection and appends to the
conversation thread with keyed, idempotent writes, so a retry or a replay after
a worker crash updates the same rows instead of adding new ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import classify_database_errors
from activities.heartbeat import heartbeating
from core import errors
from core.agents import AgentConfig
from core.blobs import BlobStore
from core.contracts.agent_run import (
    INLINE_LIMIT_BYTES,
    ApprovalInput,
    BeginRunInput,
    BegunRun,
    ChildRun,
    ChildRunInput,
    CloseRunInput,
    FinishRunInput,
    FinishRunResult,
    LlmStepInput,
    LlmStepResult,
    StartTurnInput,
    ToolStepInput,
    ToolStepResult,
)
from core.contracts.llm import ChatMessage, LlmRequest, ModelConfig
from core.contracts.memory import MemoryExtractInput
from core.db.models import utcnow
from core.db.projection import OPEN_STEP_STATUSES, RunIdentity, RunProjection, StepRecord
from core.egress import EgressDenied
from core.errors import ToolError
from core.events import RUN_CLOSED, RunEventLog, TokenBuffer
from core.ids import run_workflow_id
from core.llm.base import LlmProvider, ProviderError, ProviderRegistry
from core.memory.context import ExtractiveSummarizer, Summarizer, ThreadContext, memory_block
from core.memory.extraction import ModelSummarizer, extract_facts
from core.memory.service import MemoryService, memory_id_for
from core.memory.store import NewMemory
from core.telemetry import metrics
from core.threads import ThreadStore
from core.tools.base import ToolContext, ToolResolver
from core.tools.schema import argument_errors

log = structlog.get_logger(__name__)
PREVIEW_CHARS = 2000
RECALL_REUSE_S = 60.0
"""A turn's later model steps reuse its recall (same question) for this long, rather than search again."""
MAX_TOOL_OUTPUT_BYTES = 8 * 1024 * 1024


def _step_seq(step_id: str) -> int:
    return int(step_id.lstrip("s").split("-", 1)[0])


class SecretResolver(Protocol):
    """Resolves a tenant secret by name (the only place its plaintext exists, in memory)."""

    async def reveal(self, tenant_id: str, name: str) -> str | None:
        """The secret's value, or ``None``."""
        ...


class EventNotifier(Protocol):
    """Queues webhook deliveries for a run event; returns the deliveries to start."""

    async def __call__(self, tenant_id: str, event_id: str, event_type: str, data: dict[str, Any]) -> list[str]: ...


class EgressCheck(Protocol):
    """Refuses (``EgressDenied``) a URL the tenant may not reach."""

    async def __call__(self, tenant_id: str, url: str) -> None: ...


class AgentRunActivities:
    """Activities with their dependencies injected by the worker."""

    def __init__(
        self,
        *,
        projection: RunProjection,
        events: RunEventLog,
        providers: ProviderRegistry,
        tools: ToolResolver,
        threads: ThreadStore,
        blobs: BlobStore,
        secrets: SecretResolver | None = None,
        notify: EventNotifier | None = None,
        egress: EgressCheck | None = None,
        context: ThreadContext | None = None,
        memory: MemoryService | None = None,
        webhooks_task_queue: str = "",
    ):
        self._projection = projection
        self._webhooks_task_queue = webhooks_task_queue
        self._events = events
        self._providers = providers
        self._tools = tools
        self._threads = threads
        self._blobs = blobs
        self._secrets = secrets
        self._notify = notify
        self._egress = egress
        self._context = context or ThreadContext(projection.engine)
        self._memory = memory
        self._configs: dict[tuple[str, str, int], AgentConfig] = {}
        self._identities: dict[str, RunIdentity | None] = {}
        self._recalls: dict[tuple[str, str, str], tuple[float, str | None, list[str]]] = {}

    async def _identity(self, tenant_id: str, run_id: str) -> RunIdentity | None:
        if run_id not in self._identities:  # a run's subject and agent version never change
            if len(self._identities) > 10_000:
                self._identities.clear()
            self._identities[run_id] = await self._projection.identity(tenant_id, run_id)
        return self._identities[run_id]

    async def _subject(self, tenant_id: str, run_id: str) -> str | None:
        identity = await self._identity(tenant_id, run_id)
        return identity.subject if identity is not None else None

    async def _record(self, tenant_id: str, run_id: str, step: StepRecord) -> None:
        """Write the step to the projection and announce it on the run's event stream."""
        await self._projection.record_step(tenant_id, run_id, step)
        await self._announce(tenant_id, run_id, step)

    async def _announce(self, tenant_id: str, run_id: str, step: StepRecord) -> None:
        """Publish the step's start or end on the run's event stream."""
        await announce_step(self._events, tenant_id, run_id, step)

    async def _config(self, tenant_id: str, agent_id: str, version: int) -> AgentConfig:
        key = (tenant_id, agent_id, version)
        if key not in self._configs:  # versions are immutable: cache them
            raw = await self._projection.agent_config(tenant_id, agent_id, version)
            if raw is None:
                raise ApplicationError(
                    f"agent {agent_id} v{version} not found", type=errors.AGENT_NOT_FOUND, non_retryable=True
                )
            self._configs[key] = AgentConfig.model_validate(raw)
        return self._configs[key]

    @activity.defn(name="agent_run.begin")
    @classify_database_errors
    async def begin(self, inp: BeginRunInput) -> BegunRun:
        """Mark the run running, append its input to the thread, return the loop configuration."""
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, run_id=inp.run_id)
        info = activity.info()
        async with self._projection.engine.begin() as conn:
            loaded = await self._projection.begin(
                inp.tenant_id, inp.run_id, inp.agent_id, inp.agent_version, info.workflow_run_id or "", conn=conn
            )
            if loaded is None:
                raise ApplicationError(
                    f"run {inp.run_id} or agent {inp.agent_id} v{inp.agent_version} not found",
                    type=errors.RUN_NOT_FOUND,
                    non_retryable=True,
                )
            config = AgentConfig.model_validate(loaded.config)
            await self._threads.append(
                tenant_id=inp.tenant_id,
                thread_id=loaded.thread_id,
                run_id=inp.run_id,
                key=f"{info.workflow_id}:input",
                message=ChatMessage(role="user", content=loaded.input),
                subject=loaded.subject,
                conn=conn,
            )
        await self._threads.invalidate(inp.tenant_id, loaded.thread_id)
        self._configs[(inp.tenant_id, inp.agent_id, inp.agent_version)] = config
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
                    seq=_step_seq(inp.interrupted_step_id),
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

    @activity.defn(name="agent_run.llm")
    @classify_database_errors
    async def llm(self, inp: LlmStepInput) -> LlmStepResult:
        """Call the agent's model once on the thread so far; stream deltas; record the step."""
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, run_id=inp.run_id)
        info = activity.info()
        step = StepRecord(
            step_id=inp.step_id,
            seq=_step_seq(inp.step_id),
            kind="llm",
            name=f"{inp.model.provider}:{inp.model.name}",
            status="running",
            attempts=info.attempt,
            input={"tools": [t.name for t in inp.tools]},
            started_at=utcnow(),
        )
        await self._record(inp.tenant_id, inp.run_id, step)
        async with self._ending(inp, step):
            provider = self._provider(inp.model.provider)
            async with heartbeating():
                request, recalled = await self._request(inp, provider)
            step.input = {"messages": len(request.messages), "tools": [t.name for t in inp.tools]}
            if recalled:
                step.input["memories"] = recalled
            clock = time.perf_counter()
            tokens = TokenBuffer(self._events, inp.tenant_id, inp.run_id, inp.step_id)
            try:
                async with heartbeating():
                    response = await provider.complete(request, on_delta=tokens.add)
                await tokens.flush()
            except ProviderError as exc:
                step.error = {"message": str(exc), "provider": exc.provider, "status": exc.status}
                metrics.ACTIVITY_LATENCY.labels("agent_run.llm", "error").observe(time.perf_counter() - clock)
                raise ApplicationError(
                    f"{exc.provider}: {exc}",
                    {"provider": exc.provider, "status": exc.status},
                    type=errors.PROVIDER_UNAVAILABLE if exc.retryable else errors.PROVIDER_REJECTED,
                    non_retryable=not exc.retryable,
                    next_retry_delay=_delay(exc.retry_after_s),
                ) from exc
        metrics.ACTIVITY_LATENCY.labels("agent_run.llm", "ok").observe(time.perf_counter() - clock)
        metrics.LLM_TOKENS.labels(inp.model.provider, "input").inc(response.usage.input_tokens)
        metrics.LLM_TOKENS.labels(inp.model.provider, "output").inc(response.usage.output_tokens)
        step.status, step.ended_at = "completed", utcnow()
        step.output = {
            "content": response.content[:PREVIEW_CHARS],
            "tool_calls": [asdict(c) for c in response.tool_calls],
            "finish_reason": response.finish_reason,
        }
        step.input_tokens, step.output_tokens = response.usage.input_tokens, response.usage.output_tokens
        step.cost_usd = response.usage.cost_usd
        await self._record(inp.tenant_id, inp.run_id, step)
        content_ref = None
        if len(response.content.encode()) > INLINE_LIMIT_BYTES:
            content_ref = await self._blobs.put(inp.tenant_id, response.content.encode())
            response.content = ""
        return LlmStepResult(response=response, content_ref=content_ref)

    @asynccontextmanager
    async def _ending(self, inp: LlmStepInput, step: StepRecord) -> AsyncIterator[None]:
        """Record the model step's end when the body raises: cancelled, or failed with the activity's error."""
        try:
            yield
        except asyncio.CancelledError:
            # The run was cancelled (or interrupted) during the step: the step ends here, cancelled.
            step.status, step.ended_at, step.error = "cancelled", utcnow(), {"message": "cancelled"}
            await self._record(inp.tenant_id, inp.run_id, step)
            raise
        except ApplicationError as exc:
            # A missing secret, a refused base_url, an unknown provider, a provider error: the step fails with it.
            step.status, step.ended_at = "failed", utcnow()
            step.error = {"type": exc.type or "ApplicationError", "message": exc.message} | (step.error or {})
            await self._record(inp.tenant_id, inp.run_id, step)
            raise

    def _provider(self, name: str) -> LlmProvider:
        try:
            return self._providers.get(name)
        except KeyError:
            raise ApplicationError(
                f"provider {name!r} is not configured on this worker",
                type=errors.PROVIDER_REJECTED,
                non_retryable=True,
            ) from None

    async def _request(self, inp: LlmStepInput, provider: LlmProvider) -> tuple[LlmRequest, list[str]]:
        """The model request (thread context, recalled memories, instructions) and the recalled memory ids."""
        config = await self._config(inp.tenant_id, inp.agent_id, inp.agent_version) if inp.agent_id else None
        api_key = await self._api_key(inp.tenant_id, inp.model)
        recalled: list[str] = []
        if inp.thread_id:
            subject = await self._subject(inp.tenant_id, inp.run_id)
            summarizer: Summarizer = (
                ExtractiveSummarizer()
                if provider.name == "local"
                else ModelSummarizer(provider, inp.model, api_key=api_key)
            )
            assembled = await self._context.assemble(
                inp.tenant_id,
                inp.thread_id,
                budget_tokens=config.memory.context_tokens if config else 16_000,
                summarizer=summarizer,
                run_id=inp.run_id,
                subject=subject,
            )
            messages = assembled.messages
            if assembled.compaction is not None:
                made = assembled.compaction
                await self._events.publish(
                    inp.tenant_id,
                    inp.run_id,
                    "context.compacted",
                    {
                        "step_id": inp.step_id,
                        "upto_seq": made.upto_seq,
                        "messages": made.messages,
                        "tokens_before": made.tokens_before,
                        "tokens_after": made.tokens_after,
                        "method": made.method,
                    },
                )
            if config is not None and config.memory.enabled and subject and self._memory is not None:
                block, recalled = await self._recall(inp.tenant_id, subject, messages, config)
                if block:
                    messages.insert(0, ChatMessage(role="system", content=block))
        else:
            messages = list(inp.messages)
        if config is not None and config.instructions:
            messages.insert(0, ChatMessage(role="system", content=config.instructions))
        return LlmRequest(model=inp.model, messages=messages, tools=inp.tools, api_key=api_key), recalled

    async def _recall(
        self, tenant_id: str, subject: str, messages: list[ChatMessage], config: AgentConfig
    ) -> tuple[str | None, list[str]]:
        """Memories relevant to the latest user message, as a prompt block; a failing embedder recalls none."""
        assert self._memory is not None
        query = next((m.content for m in reversed(messages) if m.role == "user" and m.content.strip()), "")
        if not query:
            return None, []
        key = (tenant_id, subject, query)
        cached = self._recalls.get(key)
        if cached is not None and time.monotonic() - cached[0] < RECALL_REUSE_S:
            return cached[1], cached[2]  # the turn's later model steps: same question, same memories
        try:
            hits = await self._memory.search(tenant_id, subject, query[:2000], k=config.memory.recall_k)
        except Exception:  # recall is best effort: the step goes on without memories
            log.warning("memory recall failed", exc_info=True)
            return None, []
        block, used = memory_block(hits, config.memory.recall_tokens)
        if len(self._recalls) > 4096:
            self._recalls.clear()
        self._recalls[key] = (time.monotonic(), block, used)
        return block, used

    async def _api_key(self, tenant_id: str, model: ModelConfig) -> str | None:
        """The model's API key from the tenant's secrets, after the egress check of its ``base_url``."""
        if model.base_url and self._egress is not None:
            try:
                await self._egress(tenant_id, model.base_url)
            except EgressDenied as exc:
                raise ApplicationError(
                    f"{model.provider}: base_url refused by the egress policy: {exc.reason}",
                    type=errors.PROVIDER_REJECTED,
                    non_retryable=True,
                ) from None
        api_key = None
        if model.api_key_secret and self._secrets is not None:
            api_key = await self._secrets.reveal(tenant_id, model.api_key_secret)
            if api_key is None:
                raise ApplicationError(
                    f"secret {model.api_key_secret!r} named by the agent does not exist",
                    type=errors.PROVIDER_REJECTED,
                    non_retryable=True,
                )
        return api_key

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
            seq=_step_seq(inp.step_id),
            kind="tool",
            name=inp.call.name,
            status="running",
            attempts=info.attempt,
            input=inp.call.arguments,
            started_at=utcnow(),
        )
        # One transaction before the call (assistant message, step, effect check), the effect record
        # right after it, and one transaction for the result (thread and step).
        async with self._projection.engine.begin() as conn:
            if inp.assistant is not None and inp.thread_id:
                await self._threads.append(
                    tenant_id=inp.tenant_id,
                    thread_id=inp.thread_id,
                    run_id=inp.run_id,
                    key=inp.assistant_key or f"{info.workflow_id}:{inp.step_id}:assistant",
                    message=inp.assistant,
                    conn=conn,
                )
            await self._projection.record_step(inp.tenant_id, inp.run_id, step, conn=conn)
            seen, stored = await self._projection.recorded_effect(effect_key, conn=conn)
        if inp.assistant is not None and inp.thread_id:
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
        if not seen:  # committed on its own at once: nothing after the call can undo the record of its effect
            await self._projection.record_effect(inp.tenant_id, effect_key, asdict(result))
        step.status = "failed" if result.is_error else "completed"
        step.output = result.data if not result.is_error else None
        step.error = {"message": result.content} if result.is_error else None
        step.ended_at = utcnow()
        async with self._projection.engine.begin() as conn:
            if inp.thread_id:
                await self._threads.append(
                    tenant_id=inp.tenant_id,
                    thread_id=inp.thread_id,
                    run_id=inp.run_id,
                    key=f"{effect_key}:result",
                    message=ChatMessage(role="tool", content=full, tool_call_id=inp.call.id, name=inp.call.name),
                    conn=conn,
                )
            await self._projection.record_step(inp.tenant_id, inp.run_id, step, conn=conn)
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
            text = f"error: unknown tool {inp.call.name!r}; use one of the tools offered"
            return text, ToolStepResult(content=text, is_error=True)
        problems = argument_errors(tool.schema, inp.call.arguments)
        if problems:
            text = f"error: invalid arguments for {inp.call.name}: {'; '.join(problems)}"
            return text, ToolStepResult(content=text, is_error=True)
        clock = time.perf_counter()
        context = ToolContext(
            tenant_id=inp.tenant_id,
            run_id=inp.run_id,
            idempotency_key=effect_key,
            subject=await self._subject(inp.tenant_id, inp.run_id),
        )
        try:
            data: Any = await tool.call(inp.call.arguments, context)
        except ToolError as exc:
            metrics.ACTIVITY_LATENCY.labels("agent_run.tool", "error").observe(time.perf_counter() - clock)
            text = f"error: {exc}"
            return text, ToolStepResult(content=text, is_error=True)
        metrics.ACTIVITY_LATENCY.labels("agent_run.tool", "ok").observe(time.perf_counter() - clock)
        value = data.get("value") if isinstance(data, dict) and "value" in data else data
        full = value if isinstance(value, str) else json.dumps(value, default=str)
        if len(full.encode()) > MAX_TOOL_OUTPUT_BYTES:
            full = full[:MAX_TOOL_OUTPUT_BYTES] + "\n[truncated]"
        inline = len(full.encode()) <= INLINE_LIMIT_BYTES
        return full, ToolStepResult(
            content=full if inline else full[:PREVIEW_CHARS] + f"… [{len(full)} characters in the thread]",
            data=data if inline else {"preview": full[:PREVIEW_CHARS], "size": len(full)},
        )

    async def _deliveries(
        self, tenant_id: str, run_id: str, event_type: str, key: str, data: dict[str, Any]
    ) -> list[str]:
        if self._notify is None:
            return []
        return await self._notify(tenant_id, f"{run_id}:{event_type}:{key}", event_type, {"run_id": run_id} | data)

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

    @activity.defn(name="agent_run.approval")
    @classify_database_errors
    async def approval(self, inp: ApprovalInput) -> FinishRunResult:
        """Record that a tool call awaits a human (status ``waiting_approval``), or the decision."""
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, run_id=inp.run_id)
        info = activity.info()
        waiting = inp.decision is None
        step = StepRecord(
            step_id=inp.step_id,
            seq=_step_seq(inp.step_id),
            kind="approval",
            name=inp.call.name,
            status="waiting" if waiting else ("completed" if inp.decision == "approve" else "rejected"),
            input={"tool_step_id": inp.tool_step_id, "arguments": inp.call.arguments, "deadline_s": inp.deadline_s},
            output=None
            if waiting
            else {
                "decision": inp.decision,
                "decided_by": inp.decided_by,
                "comment": inp.comment,
                "at": utcnow().isoformat(),
            },
            started_at=utcnow() if waiting else None,
            ended_at=None if waiting else utcnow(),
        )
        await self._record(inp.tenant_id, inp.run_id, step)
        if waiting:
            await self._projection.set_status(inp.tenant_id, inp.run_id, "waiting_approval")
        else:
            await self._projection.resume_after_approval(inp.tenant_id, inp.run_id)
        if info.attempt == 1:
            metrics.APPROVALS_WAITING.inc() if waiting else metrics.APPROVALS_WAITING.dec()
        if not waiting:
            return FinishRunResult()
        data = {"step_id": inp.step_id, "tool": inp.call.name, "arguments": inp.call.arguments}
        await self._events.publish(inp.tenant_id, inp.run_id, "approval.requested", data)
        return FinishRunResult(
            delivery_ids=await self._deliveries(inp.tenant_id, inp.run_id, "run.waiting_approval", inp.step_id, data),
            webhooks_task_queue=self._webhooks_task_queue,
        )

    @activity.defn(name="agent_run.finish")
    @classify_database_errors
    async def finish(self, inp: FinishRunInput) -> FinishRunResult:
        """Append the answer to the thread; write the status, output/error and usage; announce it."""
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, run_id=inp.run_id)
        output = inp.output
        if inp.output_ref:
            output = (await self._blobs.get(inp.tenant_id, inp.output_ref)).decode()
        appended = inp.answer is not None and bool(inp.thread_id)
        async with self._projection.engine.begin() as conn:
            if inp.answer is not None and inp.thread_id:
                answer = ChatMessage(role="assistant", content=output or "", tool_calls=inp.answer.tool_calls)
                await self._threads.append(
                    tenant_id=inp.tenant_id,
                    thread_id=inp.thread_id,
                    run_id=inp.run_id,
                    key=inp.answer_key or f"{activity.info().workflow_id}:answer:{inp.turn}",
                    message=answer,
                    conn=conn,
                )
            created_at = await self._projection.finish(
                inp.tenant_id,
                inp.run_id,
                status=inp.status,
                output=output,
                error=inp.error,
                input_tokens=inp.usage.input_tokens,
                output_tokens=inp.usage.output_tokens,
                cost_usd=inp.usage.cost_usd,
                conn=conn,
            )
            if inp.status in ("failed", "cancelled"):
                await self._end_open_steps(inp, conn)
        if appended:
            await self._threads.invalidate(inp.tenant_id, inp.thread_id)
        await self._events.publish(
            inp.tenant_id,
            inp.run_id,
            f"run.{inp.status}",
            {
                "status": inp.status,
                "output": _preview(output),
                "error": inp.error,
                "usage": asdict(inp.usage),
                "turn": inp.turn,
            },
        )
        deliveries: list[str] = []
        if inp.status in ("completed", "failed"):
            summary = {"status": inp.status, "output": _preview(output), "error": inp.error, "turn": inp.turn}
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
        for step in ended:
            await self._announce(inp.tenant_id, inp.run_id, step)
        metrics.APPROVALS_WAITING.dec(sum(1 for step in ended if step.kind == "approval"))

    async def _queue_extraction(self, inp: FinishRunInput) -> None:
        """Start the turn's memory extraction (agents with memory enabled, runs with a subject)."""
        identity = await self._identity(inp.tenant_id, inp.run_id)
        if self._memory is None or identity is None or not identity.subject:
            return
        config = await self._config(inp.tenant_id, identity.agent_id, identity.agent_version)
        if config.memory.enabled and config.memory.extract:
            await self._memory.start_extraction(MemoryExtractInput(inp.tenant_id, inp.run_id, inp.thread_id, inp.turn))

    @activity.defn(name="agent_run.extract_memories")
    @classify_database_errors
    async def extract_memories(self, inp: MemoryExtractInput) -> list[str]:
        """Remember the salient facts of one turn; returns the memory ids written.

        The run's subject is read afresh: a subject erased since the turn ended is not
        written again.
        """
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, run_id=inp.run_id)
        identity = await self._projection.identity(inp.tenant_id, inp.run_id)
        if self._memory is None or identity is None or not identity.subject:
            return []
        config = await self._config(inp.tenant_id, identity.agent_id, identity.agent_version)
        model = config.model.to_contract()
        turn = _latest_turn(await self._threads.run_messages(inp.tenant_id, inp.thread_id, inp.run_id))
        try:
            api_key = await self._api_key(inp.tenant_id, model)
            async with heartbeating():
                facts, method = await extract_facts(self._provider(model.provider), model, turn, api_key=api_key)
        except ProviderError as exc:
            raise ApplicationError(
                f"{exc.provider}: {exc}",
                type=errors.PROVIDER_UNAVAILABLE if exc.retryable else errors.PROVIDER_REJECTED,
                non_retryable=not exc.retryable,
            ) from exc
        memories = [
            NewMemory(
                id=memory_id_for(f"{inp.tenant_id}:{identity.subject}:{' '.join(fact.lower().split())}"),
                subject=identity.subject,
                text=fact,
                metadata={"source": "extraction", "method": method},
                source_run_id=inp.run_id,
                source_step_id=f"turn-{inp.turn}",
            )
            for fact in facts
        ]
        if not memories:
            return []
        ids, _ = await self._memory.remember(inp.tenant_id, memories)
        await self._events.publish(inp.tenant_id, inp.run_id, "memory.written", {"ids": ids, "method": method})
        return ids

    @activity.defn(name="agent_run.close")
    async def close(self, inp: CloseRunInput) -> None:
        """Publish ``run.closed``, the last event of the run: its event streams end there.

        A retry may publish it twice; readers stop at the first.
        """
        await self._events.publish(inp.tenant_id, inp.run_id, RUN_CLOSED, {"status": inp.status, "turn": inp.turn})


def step_event(status: str) -> str:
    """The event type of a step in ``status``: started, or ended completed, failed or cancelled."""
    if status in OPEN_STEP_STATUSES:
        return "step.started"
    return f"step.{status}" if status in ("failed", "cancelled") else "step.completed"


async def announce_step(events: RunEventLog, tenant_id: str, run_id: str, step: StepRecord) -> None:
    """Publish a step's start or end on its run's event stream."""
    event = step_event(step.status)
    data: dict[str, Any] = {"step_id": step.step_id, "kind": step.kind, "name": step.name, "status": step.status}
    if event != "step.started":
        data |= {"output": _preview(step.output), "error": step.error, "attempts": step.attempts}
    await events.publish(tenant_id, run_id, event, data)


def _latest_turn(messages: list[ChatMessage]) -> list[ChatMessage]:
    """The messages of the latest turn: from the user messages after the previous answer to the end."""
    end = len(messages)
    answers = [i for i, m in enumerate(messages) if m.role == "assistant" and not m.tool_calls]
    previous = answers[-2] if len(answers) >= 2 else -1
    return messages[previous + 1 : end]


def child_run_id(key: str) -> str:
    """A stable run id for the child run a step asks for (retries create nothing new)."""
    return "run_" + hashlib.sha256(key.encode()).hexdigest()[:24]


def _preview(value: Any) -> Any:
    if isinstance(value, str) and len(value) > PREVIEW_CHARS:
        return value[:PREVIEW_CHARS] + "…"
    return value


def _delay(seconds: float | None) -> timedelta | None:
    return timedelta(seconds=seconds) if seconds else None
