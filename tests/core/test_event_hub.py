"""RunEventHub on the stack's Redis: one reader for many streams, nothing lost or repeated."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from core.event_hub import BLOCK_MS, MAX_BUFFERED, READER_SOCKET_TIMEOUT_S, RunEventHub, Subscription
from core.events import RunEvent, RunEventLog
from workers.embedded.stack import StackProcess


@dataclass
class Hub:
    """A started hub, its event log and the name of its reader connection."""

    hub: RunEventHub
    log: RunEventLog
    redis: Redis
    reader_name: str
    tenant: str


@pytest.fixture
async def hub(stack: StackProcess) -> AsyncIterator[Hub]:
    """A hub on the stack's Redis, with a fresh tenant id for its streams."""
    name = f"evhub-test-{uuid.uuid4().hex[:8]}"
    redis = Redis.from_url(stack.redis_url, socket_timeout=5)
    reader = Redis.from_url(stack.redis_url, socket_timeout=READER_SOCKET_TIMEOUT_S, client_name=name)
    log = RunEventLog(redis)
    started = RunEventHub(reader=reader, events=log, redis=redis)
    started.start()
    yield Hub(started, log, redis, name, f"t{uuid.uuid4().hex[:8]}")
    await started.stop()
    await reader.aclose()
    await redis.aclose()


async def collect(sub: Subscription, count: int, timeout_s: float = 10) -> list[RunEvent]:
    """The next ``count`` events of ``sub`` (fails if they do not come within ``timeout_s``)."""
    got: list[RunEvent] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"got {len(got)} of {count} events"
        got += await sub.next(remaining)
    assert len(got) == count
    return got


async def publish(h: Hub, run_id: str, count: int) -> list[str]:
    """Append ``count`` numbered events; their ids."""
    return [await h.log.publish(h.tenant, run_id, "step.started", {"n": n}) for n in range(count)]


async def test_many_streams_share_one_reader_connection(hub: Hub) -> None:
    subs = [hub.hub.subscribe(hub.tenant, f"run{n}") for n in range(300)]
    subs.append(hub.hub.subscribe(hub.tenant, "run0"))
    await asyncio.sleep(0.2)
    sent = {n: await hub.log.publish(hub.tenant, f"run{n}", "run.started", {"n": n}) for n in range(300)}
    for sub in subs:
        [event] = await collect(sub, 1)
        assert event.id == sent[int(sub.run_id[3:])]
    readers = [c for c in await hub.redis.client_list() if c.get("name") == hub.reader_name]
    assert len(readers) == 1
    for sub in subs:
        sub.close()
    assert hub.hub.subscriptions == 0


async def test_a_stream_that_joins_while_the_reader_blocks_is_read_at_once(hub: Hub) -> None:
    with hub.hub.subscribe(hub.tenant, "first"):
        await asyncio.sleep(0.5)  # the reader now blocks on "first" alone
        with hub.hub.subscribe(hub.tenant, "second") as late:
            await asyncio.sleep(0.1)
            began = time.monotonic()
            [sent] = await publish(hub, "second", 1)
            [event] = await collect(late, 1)
            assert event.id == sent
            assert time.monotonic() - began < BLOCK_MS / 1000 / 4


async def test_late_and_resuming_subscribers_get_every_event_once_in_order(hub: Hub) -> None:
    ids = await publish(hub, "run", 3)
    with hub.hub.subscribe(hub.tenant, "run") as first:
        assert [e.id for e in await collect(first, 3)] == ids
        ids += await publish(hub, "run", 2)
        assert [e.id for e in await collect(first, 2)] == ids[3:]
        with (
            hub.hub.subscribe(hub.tenant, "run") as late,
            hub.hub.subscribe(hub.tenant, "run", after=ids[1]) as resumed,
        ):
            ids += await publish(hub, "run", 1)
            assert [e.id for e in await collect(late, 6)] == ids
            assert [e.id for e in await collect(resumed, 4)] == ids[2:]
            assert [e.id for e in await collect(first, 1)] == ids[5:]
            assert await late.next(0.3) == []  # nothing twice: the wait just times out


async def test_a_slow_subscriber_misses_nothing(hub: Hub) -> None:
    with hub.hub.subscribe(hub.tenant, "busy") as slow:
        ids = await publish(hub, "busy", MAX_BUFFERED + 1500)  # overflows its buffer while it does not read
        got = await collect(slow, len(ids), timeout_s=30)
        assert [e.id for e in got] == ids
        assert [e.data["n"] for e in got] == list(range(len(ids)))


async def test_a_reader_that_times_out_before_the_block_ends_is_refused(stack: StackProcess) -> None:
    redis = Redis.from_url(stack.redis_url, socket_timeout=5)
    try:
        with pytest.raises(ValueError, match="socket timeout"):
            RunEventHub(reader=redis, events=RunEventLog(redis), redis=redis)
    finally:
        await redis.aclose()
