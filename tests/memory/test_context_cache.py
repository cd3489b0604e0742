"""Hot thread context in Redis: served from the cache; appends extend it, compactions reload it."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.contracts.llm import ChatMessage
from core.memory.context import ExtractiveSummarizer, ThreadContext
from core.threads import ThreadStore, cache_key
from tests.conftest import TenantCtx
from workers.embedded.stack import StackProcess


async def test_cache_is_used_and_extended_by_an_append(
    tenant: TenantCtx, engine: AsyncEngine, stack: StackProcess
) -> None:
    redis = Redis.from_url(stack.redis_url)
    thread_id = f"thr_{uuid.uuid4().hex[:12]}"
    threads, context = ThreadStore(engine, redis), ThreadContext(engine, redis)
    try:
        await threads.append(
            tenant_id=tenant.id,
            thread_id=thread_id,
            run_id=None,
            key=f"{thread_id}:1",
            message=ChatMessage(role="user", content="first"),
        )
        first = await context.assemble(tenant.id, thread_id, budget_tokens=1000, summarizer=ExtractiveSummarizer())
        assert [m.content for m in first.messages] == ["first"]
        assert await redis.exists(cache_key(tenant.id, thread_id)) == 1

        # a change behind the cache's back is not seen: the cache answers
        async with engine.begin() as conn:
            await conn.execute(
                text("update thread_message set content = 'edited' where thread_id = :t"), {"t": thread_id}
            )
        cached = await context.assemble(tenant.id, thread_id, budget_tokens=1000, summarizer=ExtractiveSummarizer())
        assert [m.content for m in cached.messages] == ["first"]

        # an append bumps the thread's version: the next read fetches only what was appended since
        await threads.append(
            tenant_id=tenant.id,
            thread_id=thread_id,
            run_id=None,
            key=f"{thread_id}:2",
            message=ChatMessage(role="assistant", content="second"),
        )
        fresh = await context.assemble(tenant.id, thread_id, budget_tokens=1000, summarizer=ExtractiveSummarizer())
        assert [m.content for m in fresh.messages] == ["first", "second"]
    finally:
        await redis.aclose()


async def test_an_oversized_message_is_truncated_in_the_prompt_only(tenant: TenantCtx, engine: AsyncEngine) -> None:
    thread_id = f"thr_{uuid.uuid4().hex[:12]}"
    threads, context = ThreadStore(engine), ThreadContext(engine)
    big = "y" * (3 * 1024 * 1024)
    for index, message in enumerate(
        [ChatMessage(role="user", content="fetch it"), ChatMessage(role="tool", content=big, name="fetch")]
    ):
        await threads.append(
            tenant_id=tenant.id, thread_id=thread_id, run_id=None, key=f"{thread_id}:{index}", message=message
        )
    assembled = await context.assemble(tenant.id, thread_id, budget_tokens=16_000, summarizer=ExtractiveSummarizer())
    assert assembled.compaction is None  # the latest turn is kept whole: nothing to compact
    tool = assembled.messages[-1]
    assert len(tool.content) < 40_000
    assert "more characters; the full text is kept in the thread" in tool.content
    assert assembled.tokens <= 16_000
    rows = await threads.rows(tenant.id, thread_id, limit=10)
    assert len(rows[1].content) == len(big)


async def test_a_compaction_recorded_since_the_cache_was_written_reloads_it(
    tenant: TenantCtx, engine: AsyncEngine, stack: StackProcess
) -> None:
    redis = Redis.from_url(stack.redis_url)
    thread_id = f"thr_{uuid.uuid4().hex[:12]}"
    threads, context = ThreadStore(engine, redis), ThreadContext(engine, redis)
    try:
        for index in range(1, 12):
            await threads.append(
                tenant_id=tenant.id,
                thread_id=thread_id,
                run_id=None,
                key=f"{thread_id}:{index}",
                message=ChatMessage(role="user" if index % 2 else "assistant", content=f"message {index} " * 20),
            )
        whole = await context.assemble(tenant.id, thread_id, budget_tokens=10_000, summarizer=ExtractiveSummarizer())
        assert len(whole.messages) == 11
        compacted = await context.assemble(tenant.id, thread_id, budget_tokens=256, summarizer=ExtractiveSummarizer())
        assert compacted.compaction is not None
        again = await context.assemble(tenant.id, thread_id, budget_tokens=256, summarizer=ExtractiveSummarizer())
        assert again.compaction is None  # nothing new to compact: the recorded summary is reloaded and reused
        assert again.messages[0].content == compacted.messages[0].content
        assert len(again.messages) == len(compacted.messages)
    finally:
        await redis.aclose()
