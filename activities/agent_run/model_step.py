"""The model step: ``llm`` assembles the request (thread context, recalled memories), streams and records it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import timedelta

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.agent_run.base import AgentRunBase
from activities.agent_run.steps import PREVIEW_CHARS, step_seq
from activities.errors import classify_database_errors
from activities.heartbeat import heartbeating
from core import errors
from core.agents import AgentConfig
from core.contracts.agent_run import INLINE_LIMIT_BYTES, LlmStepInput, LlmStepResult
from core.contracts.llm import ChatMessage, LlmRequest
from core.db.models import utcnow
from core.db.projection import StepRecord
from core.events import TokenBuffer
from core.llm.base import LlmProvider, ProviderError
from core.llm.prompt import agent_request
from core.memory.context import ExtractiveSummarizer, Summarizer, memory_block
from core.memory.extraction import ModelSummarizer
from core.telemetry import metrics

log = structlog.get_logger(__name__)
RECALL_REUSE_S = 60.0
"""A turn's later model steps reuse its recall (same question) for this long, rather than search again."""


class ModelStepActivities(AgentRunBase):
    """The ``llm`` activity and the request it sends."""

    @activity.defn(name="agent_run.llm")
    @classify_database_errors
    async def llm(self, inp: LlmStepInput) -> LlmStepResult:
        """Call the agent's model once on the thread so far; stream deltas; record the step."""
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, run_id=inp.run_id)
        info = activity.info()
        step = StepRecord(
            step_id=inp.step_id,
            seq=step_seq(inp.step_id),
            kind="llm",
            name=f"{inp.model.provider}:{inp.model.name}",
            status="running",
            attempts=info.attempt,
            input={"tools": [t.name for t in inp.tools]},
            started_at=utcnow(),
        )
        await self._record(inp.tenant_id, inp.run_id, step)
        async with self._ending(inp, step):
            provider = self._models.provider(inp.model.provider)
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

    async def _request(self, inp: LlmStepInput, provider: LlmProvider) -> tuple[LlmRequest, list[str]]:
        """The model request (thread context, recalled memories, instructions) and the recalled memory ids."""
        config = await self._models.config(inp.tenant_id, inp.agent_id, inp.agent_version) if inp.agent_id else None
        api_key = await self._models.api_key(inp.tenant_id, inp.model)
        recalled: list[str] = []
        block = None
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
        else:
            messages = list(inp.messages)
        instructions = config.instructions if config is not None else ""
        request = agent_request(
            inp.model, messages, inp.tools, instructions=instructions, memories=block, api_key=api_key
        )
        return request, recalled

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


def _delay(seconds: float | None) -> timedelta | None:
    return timedelta(seconds=seconds) if seconds else None
