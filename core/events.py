"""Per-run event log on Redis Streams: workers append, API replicas read and stream.

One stream per run (``aimpact:ev:{tenant_id}:{run_id}``), capped in length and
expiring after the retention period, so SSE clients can resume with
``Last-Event-ID`` from any API replica, even after an API restart.

A multi-turn run tells its turns apart in the stream itself: ``run.started`` opens
a turn (``turn`` in its data), a final event ends one, ``turn.accepted`` and
``turn.retried`` (published by the API once the workflow took a message or a
retry) open the next before the workflow gets to it, and ``run.closed`` is the
last event of the run. :func:`fold_turns` reads where the turns stand from them,
so every API process agrees without sharing memory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

FINAL_EVENTS = frozenset({"run.completed", "run.failed", "run.cancelled"})
"""A turn's outcome (``turn`` in the data); a multi-turn run goes on after it."""
RUN_CLOSED = "run.closed"
"""The run's workflow has ended (``{status, turn}``): no event follows it."""
TURN_STARTED = "run.started"
"""The workflow starts a turn, or starts it again (after an interruption or a retry)."""
TURN_ACCEPTED = "turn.accepted"
"""The API handed a message to the run: ``{turn, message_id, policy, after_event_id}``."""
TURN_RETRIED = "turn.retried"
"""The API handed a retry of the failed turn to the run: ``{turn, after_event_id}``."""
MAX_EVENTS_PER_RUN = 10_000
READ_COUNT = 1000
"""Most events one read returns."""
_FIRST_PAGE = 100
"""Events of the first backward read for a run's turn state (a turn rarely has more)."""
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

    async def newest(
        self, tenant_id: str, run_id: str, *, before: str = "+", count: int = READ_COUNT
    ) -> list[RunEvent]:
        """Up to ``count`` events before ``before`` (exclusive; ``"+"``: the newest), newest first."""
        high = f"({before}" if before != "+" else "+"
        rows: Any = await self._redis.xrevrange(stream_key(tenant_id, run_id), max=high, min="-", count=count)
        return [decode_event(event_id, fields) for event_id, fields in rows or []]

    async def last_id(self, tenant_id: str, run_id: str) -> str:
        """The id of the run's newest event (``"0"`` when it has none): follow the stream after it."""
        newest = await self.newest(tenant_id, run_id, count=1)
        return newest[0].id if newest else "0"

    async def turns(self, tenant_id: str, run_id: str) -> TurnState:
        """Where the run's turns stand: the events from its newest ``run.started`` on, folded.

        Reads back from the newest event, a page at a time, until a ``run.started`` (or the
        stream's start): a turn's events are few next to the stream's cap.
        """
        window: list[RunEvent] = []
        page = _FIRST_PAGE
        while batch := await self.newest(tenant_id, run_id, before=window[-1].id if window else "+", count=page):
            window.extend(batch)
            if any(event.type == TURN_STARTED for event in batch) or len(batch) < page:
                break
            page = READ_COUNT
        window.reverse()
        starts = [i for i, event in enumerate(window) if event.type == TURN_STARTED]
        return fold_turns(window[starts[-1] :] if starts else window)


@dataclass(frozen=True)
class TurnState:
    """Where a run's turns stand after the event ``last_id``."""

    last_id: str
    """The newest event folded (``"0"``: none): events after it are news."""
    turn: int
    """The turn in flight, or the latest one."""
    open: bool | None
    """Whether ``turn`` is in flight; ``None`` when the events name no turn (the DB status tells)."""
    closed: bool = False
    """The run has ended (``run.closed``)."""


def turn_of(event: RunEvent) -> int:
    """The turn an event names (events published before turns were numbered: turn 1)."""
    turn = event.data.get("turn")
    return turn if isinstance(turn, int) and turn > 0 else 1


def ends_turn(event: RunEvent, turn: int) -> bool:
    """Whether ``event`` ends turn ``turn``: a final event of it (or of a later turn), or the run's close."""
    return event.type == RUN_CLOSED or (event.type in FINAL_EVENTS and turn_of(event) >= turn)


def fold_turns(events: Iterable[RunEvent]) -> TurnState:
    """The turn state after ``events`` (oldest first).

    ``run.started`` opens its turn and a final event of that turn (or a later one) ends
    it. An API event (``turn.accepted``, ``turn.retried``) opens its turn unless the
    workflow got there first: a turn start or a final event of that turn (or a later one)
    published after the event's ``after_event_id`` means the workflow already took the
    message or the retry, and its own events say where the turn stands.
    """
    last_id, turn, open_, closed = "0", 1, None, False
    seen: list[tuple[str, int]] = []  # (id, turn) of each turn start and final event
    for event in events:
        last_id, number = event.id, turn_of(event)
        if event.type == RUN_CLOSED:
            open_, closed = False, True
        elif event.type == TURN_STARTED:
            turn, open_ = max(turn, number), True
        elif event.type in FINAL_EVENTS and number >= turn:
            turn, open_ = number, False
        elif event.type in (TURN_ACCEPTED, TURN_RETRIED) and number >= turn and not closed:
            anchor = event_order(str(event.data.get("after_event_id") or "0"))
            if not any(event_order(ident) > anchor and later >= number for ident, later in seen):
                turn, open_ = number, True
        if event.type == TURN_STARTED or event.type in FINAL_EVENTS:
            seen.append((event.id, number))
    return TurnState(last_id=last_id, turn=turn, open=open_, closed=closed)


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
