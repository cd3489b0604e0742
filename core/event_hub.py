"""One Redis reader per process that follows many run event streams at once.

An SSE stream that ran its own blocking ``XREAD`` would hold a Redis connection for
its whole life: a thousand streams would need a thousand connections. Instead a
``RunEventHub`` runs a single task that blocks on *all* followed streams with one
``XREAD`` on its own connection and fans the events out to its subscriptions.

A subscription that joins a stream the hub already follows reads the events it
missed (up to the hub's cursor) with a short ``XRANGE``, as does one whose buffer
overflowed because its client reads slowly; after that it only takes what the hub
delivers. When a new stream joins while the reader is blocked, the hub appends to
its private wake-up stream (one of the keys it blocks on) so that the next ``XREAD``
includes the newcomer at once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.typing import KeyT, StreamIdT

from core.events import READ_COUNT, RunEvent, RunEventLog, decode_event, event_order, stream_key

log = structlog.get_logger(__name__)

BLOCK_MS = 10_000
"""How long one ``XREAD`` of the hub blocks when nothing arrives."""
READER_SOCKET_TIMEOUT_S = BLOCK_MS / 1000 + 10
"""Socket timeout of the hub's reader connection: longer than it blocks."""
PER_STREAM_COUNT = 500
"""Most events one ``XREAD`` returns per stream."""
MAX_BUFFERED = 2000
"""Events a subscription buffers for a slow client before it re-reads from Redis instead."""
_WAKE_TTL_S = 600


class Subscription:
    """Events of one run stream after a given id, for one consumer."""

    def __init__(self, hub: RunEventHub, tenant_id: str, run_id: str, after: str):
        self._hub = hub
        self.tenant_id = tenant_id
        self.run_id = run_id
        self.key = stream_key(tenant_id, run_id)
        self._last = after
        self._gap: str | None = None  # events in (_last, _gap] are to be read from Redis
        self._buffer: deque[RunEvent] = deque()
        self._ready = asyncio.Event()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop following the stream."""
        self._hub._unsubscribe(self)

    async def next(self, timeout_s: float) -> list[RunEvent]:
        """The events after those already returned, oldest first; ``[]`` if none came within ``timeout_s``."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            if self._gap is not None:
                upto = self._gap
                try:
                    batch = await self._hub.events.range(self.tenant_id, self.run_id, after=self._last, upto=upto)
                except Exception as exc:  # Redis unreachable: keep the gap, the stream gets a keep-alive
                    log.warning("event catch-up read failed", key=self.key, error=repr(exc))
                    await asyncio.sleep(max(0.0, min(1.0, deadline - asyncio.get_running_loop().time())))
                    return []
                more = len(batch) == READ_COUNT and event_order(batch[-1].id) < event_order(upto)
                if self._gap == upto and not more:
                    self._gap = None  # (a gap that grew during the read stays)
            elif self._buffer:
                batch = list(self._buffer)
                self._buffer.clear()
            else:
                self._ready.clear()
                try:
                    async with asyncio.timeout_at(deadline):
                        await self._ready.wait()
                except TimeoutError:
                    return []
                continue
            fresh = [event for event in batch if event_order(event.id) > event_order(self._last)]
            if fresh:
                self._last = fresh[-1].id
                return fresh

    def _mark_gap(self, upto: str) -> None:
        if self._gap is None or event_order(upto) > event_order(self._gap):
            self._gap = upto
        self._ready.set()

    def _deliver(self, events: list[RunEvent]) -> None:
        if len(self._buffer) + len(events) > MAX_BUFFERED:
            self._buffer.clear()
            self._mark_gap(events[-1].id)
            return
        self._buffer.extend(events)
        self._ready.set()


class RunEventHub:
    """Follows the run streams that subscriptions ask for, with one blocking reader.

    Args:
        reader: a client used only by the hub's reader task; its socket timeout must
            exceed ``BLOCK_MS`` (use ``READER_SOCKET_TIMEOUT_S``).
        events: the event log, for the short catch-up reads and the wake-ups.
        redis: the shared client behind ``events``.
    """

    def __init__(self, *, reader: Redis, events: RunEventLog, redis: Redis):
        timeout = reader.connection_pool.connection_kwargs.get("socket_timeout")
        if timeout is not None and timeout * 1000 <= BLOCK_MS:
            raise ValueError(f"the reader's socket timeout ({timeout}s) must exceed the block time ({BLOCK_MS} ms)")
        self.events = events
        self._reader = reader
        self._redis = redis
        self._subs: dict[str, set[Subscription]] = {}
        self._cursors: dict[str, str] = {}
        self._wake_key = f"aimpact:evhub:{uuid.uuid4().hex}"
        self._wake_cursor = "0"
        self._joined = asyncio.Event()
        self._blocking = False
        self._wake_sent = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def subscriptions(self) -> int:
        """Open subscriptions."""
        return sum(len(subs) for subs in self._subs.values())

    def start(self) -> None:
        """Start the reader task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="run-event-hub")

    async def stop(self) -> None:
        """Stop the reader task and any wake-up in flight."""
        tasks = [t for t in (self._task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    def subscribe(self, tenant_id: str, run_id: str, *, after: str = "0") -> Subscription:
        """Follow a run's events after ``after``; close the subscription when done."""
        sub = Subscription(self, tenant_id, run_id, after)
        subs = self._subs.get(sub.key)
        if subs is None:
            self._subs[sub.key] = {sub}
            self._cursors[sub.key] = after  # the reader delivers the backlog too
            self._joined.set()
            self._wake()
        else:
            subs.add(sub)
            cursor = self._cursors[sub.key]
            if event_order(cursor) > event_order(after):
                sub._mark_gap(cursor)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.key)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self._subs[sub.key]
            del self._cursors[sub.key]

    def _wake(self) -> None:
        """Make a blocked ``XREAD`` return so the next one includes a new stream."""
        if not self._blocking or self._wake_sent:
            return
        self._wake_sent = True
        task = asyncio.create_task(self._send_wake())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_wake(self) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xadd(self._wake_key, {"w": "1"}, maxlen=1)
                pipe.expire(self._wake_key, _WAKE_TTL_S)
                await pipe.execute()
        except Exception as exc:  # the newcomer then joins when the current read times out
            log.warning("event hub wake-up failed", error=repr(exc))

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            if not self._subs:
                self._joined.clear()
                await self._joined.wait()
            streams: dict[KeyT, StreamIdT] = {self._wake_key: self._wake_cursor}
            streams.update(self._cursors)
            self._blocking, self._wake_sent = True, False
            try:
                answer: Any = await self._reader.xread(streams, count=PER_STREAM_COUNT, block=BLOCK_MS)
            except Exception as exc:  # Redis down or a bad reply: keep every subscription, retry
                log.warning("event hub read failed", error=repr(exc), retry_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            finally:
                self._blocking = False
            backoff = 0.1
            for raw_key, rows in answer or []:
                self._dispatch(_ident(raw_key), rows, streams)

    def _dispatch(self, key: str, rows: Any, asked: dict[KeyT, StreamIdT]) -> None:
        if not rows:
            return
        if key == self._wake_key:
            self._wake_cursor = _ident(rows[-1][0])
            return
        if self._cursors.get(key) != asked.get(key):
            return  # the stream left (or left and came back) while the read was in flight
        self._cursors[key] = _ident(rows[-1][0])
        events: list[RunEvent] = []
        for event_id, fields in rows:
            try:
                events.append(decode_event(event_id, fields))
            except (KeyError, ValueError) as exc:  # one malformed entry must not stop every stream
                log.warning("undecodable run event skipped", key=key, event_id=_ident(event_id), error=repr(exc))
        for sub in self._subs[key] if events else ():
            sub._deliver(events)


def _ident(event_id: Any) -> str:
    return event_id.decode() if isinstance(event_id, bytes) else str(event_id)
