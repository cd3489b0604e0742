"""Per-run event log on Redis Streams: workers append, API replicas read and stream.

One stream per run (``aimpact:ev:{tenant_id}:{run_id}``), capped in length and
expiring after the retention period, so SSE clients can resume with
``Last-Event-ID`` from any API replica, even after an API restart.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

FINAL_EVENTS = frozenset({"run.completed", "run.failed", "run.cancelled"})
MAX_EVENTS_PER_RUN = 10_000
READ_COUNT = 1000
"""Most events one read returns."""
RETENTION_S = 7 * 24 * 3600


@dataclass(frozen=True)
class RunEvent:
    """One event: its stream id (the SSE event id), type and JSON data."""

    id: str
    type: str
    data: dict[str, Any]


def stream_key(tenant_id: str, run_id: str) -> str:
    """The Redis key of a run's event stream."""
    return f"aimpact:ev:{tenant_id}:{run_id}"


class RunEventLog:
    """Append and read run events."""

    def __init__(self, redis: Redis, *, retention_s: int = RETENTION_S):
        self._redis = redis
        self._retention_s = retention_s

    async def publish(self, tenant_id: str, run_id: str, type_: str, data: dict[str, Any]) -> str:
        """Append an event; return its id."""
        key = stream_key(tenant_id, run_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"type": type_, "data": json.dumps(data, default=str)}, maxlen=MAX_EVENTS_PER_RUN)
            pipe.expire(key, self._retention_s)
            event_id, _ = await pipe.execute()
        return event_id.decode() if isinstance(event_id, bytes) else str(event_id)

    async def read(
        self, tenant_id: str, run_id: str, *, after: str = "0", block_ms: int | None = None
    ) -> list[RunEvent]:
        """Events after ``after`` (an event id, ``"0"`` for all); block up to ``block_ms`` for new ones.

        A blocking read holds a pooled connection for up to ``block_ms``: the client's
        socket timeout must exceed it. SSE streams read through ``RunEventHub`` instead.
        """
        if block_ms is None:
            return await self.range(tenant_id, run_id, after=after)
        answer: Any = await self._redis.xread({stream_key(tenant_id, run_id): after}, count=READ_COUNT, block=block_ms)
        return [decode_event(event_id, fields) for event_id, fields in (answer[0][1] if answer else [])]

    async def range(self, tenant_id: str, run_id: str, *, after: str = "0", upto: str = "+") -> list[RunEvent]:
        """Up to ``READ_COUNT`` events after ``after`` and up to ``upto`` (inclusive), oldest first."""
        low = f"({after}" if after != "0" else "-"
        rows: Any = await self._redis.xrange(stream_key(tenant_id, run_id), min=low, max=upto, count=READ_COUNT)
        return [decode_event(event_id, fields) for event_id, fields in rows or []]


def decode_event(event_id: Any, fields: Any) -> RunEvent:
    """A ``RunEvent`` from one stream entry as redis-py returns it."""
    ident = event_id.decode() if isinstance(event_id, bytes) else str(event_id)
    return RunEvent(id=ident, type=fields[b"type"].decode(), data=json.loads(fields[b"data"]))


def event_order(event_id: str) -> tuple[int, int]:
    """Sort key of a stream id (``"0"`` sorts first)."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


class TokenBuffer:
    """Batches streamed model text into ``token.delta`` events (every 64 characters or 50 ms)."""

    def __init__(self, events: RunEventLog, tenant_id: str, run_id: str, step_id: str):
        self._events = events
        self._key = (tenant_id, run_id)
        self._step_id = step_id
        self._parts: list[str] = []
        self._size = 0
        self._last = time.monotonic()

    async def add(self, text: str) -> None:
        """Take one delta; publish when the batch is big or old enough."""
        self._parts.append(text)
        self._size += len(text)
        if self._size >= 64 or time.monotonic() - self._last >= 0.05:
            await self.flush()

    async def flush(self) -> None:
        """Publish what is buffered."""
        if not self._parts:
            return
        text, self._parts, self._size, self._last = "".join(self._parts), [], 0, time.monotonic()
        await self._events.publish(*self._key, "token.delta", {"step_id": self._step_id, "text": text})
