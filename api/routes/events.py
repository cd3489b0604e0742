"""``GET /v1/runs/{id}/events``: a run's events as Server-Sent Events, resumable.

A stream follows the run across its turns and ends with the run: at ``run.closed``,
the last event the workflow (or the reconciler) publishes. A run that ends without
it (its workflow started before runs announced their close, or the announcement
failed) ends when Temporal shows its workflow closed, asked shortly after a turn's
final event and at growing intervals while the stream idles. A run whose status is final
and whose workflow is closed gets its stored events and the stream ends.

A stream checks access with a short-lived database session and releases it before
the first byte: an open stream holds no database connection and no Redis connection
of its own (the process's ``RunEventHub`` reads every followed run with one ``XREAD``).
Streams are limited per tenant and per process (``AIMPACT_STREAMS_PER_TENANT``,
``AIMPACT_STREAMS_PER_PROCESS``); an idle stream gets a keep-alive comment every
``AIMPACT_STREAM_KEEPALIVE_S`` seconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send
from temporalio.client import Client, RPCError, RPCStatusCode, WorkflowExecutionStatus

from api.deps import StateDep
from api.permissions import RunsRead
from api.problem_types import ProblemType, problem
from api.problems import ProblemError
from api.state import AppState
from api.streams import StreamLease, StreamLimitError
from core.contracts.agent_run import RunStatus
from core.db.reads import RunReads
from core.events import FINAL_EVENTS, RUN_CLOSED, RunEvent, RunEventLog

log = structlog.get_logger(__name__)
router = APIRouter(tags=["runs"])
STREAM_RETRY_AFTER_S = 5
"""``Retry-After`` of a stream refused by the stream limits."""
CLOSE_CHECK_S = 60.0
"""An idle stream first asks Temporal whether its run's workflow closed after this long."""
CLOSE_GRACE_S = 2.0
"""After a turn's final event, how long a stream waits for ``run.closed`` before it asks Temporal."""
MAX_CLOSE_CHECK_S = 600.0
"""The interval between those checks doubles up to this."""
DESCRIBE_TIMEOUT = timedelta(seconds=5)
_EVENT_ID = r"^(0|[0-9]{1,20}-[0-9]{1,20})$"
_RETRY = "retry: 1000\n\n"
LastEventId = Annotated[str | None, Header(pattern=_EVENT_ID)]
After = Annotated[str | None, Query(pattern=_EVENT_ID, description="Resume after this event id.")]


def sse_responses(types: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI responses of an event stream whose event types are ``types``."""
    frames = f"Frames `id: <event id>`, `event: <type>` ({types}, …), `data: <JSON>`."
    return {
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string", "description": frames}}},
            "description": "Server-Sent Events",
        },
        429: problem(429) | {"description": "Too many open event streams (per tenant or on this server)."},
    }


def sse_frame(event: RunEvent) -> str:
    """One SSE frame."""
    return f"id: {event.id}\nevent: {event.type}\ndata: {json.dumps(event.data, separators=(',', ':'))}\n\n"


class EventStreamResponse(StreamingResponse):
    """An SSE response that holds a stream slot until it ends, however it ends."""

    def __init__(self, content: AsyncIterator[str], *, lease: StreamLease):
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._lease = lease

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._lease.release()


async def workflow_closed(temporal: Client, workflow_id: str) -> bool:
    """Whether Temporal shows the workflow closed (or absent); ``False`` when it cannot say."""
    try:
        described = await temporal.get_workflow_handle(workflow_id).describe(rpc_timeout=DESCRIBE_TIMEOUT)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return True
        log.warning("could not describe a run's workflow", workflow_id=workflow_id, error=str(exc))
        return False
    return described.status != WorkflowExecutionStatus.RUNNING


class _CloseCheck:
    """When to ask Temporal whether a followed run's workflow closed without announcing it."""

    def __init__(self) -> None:
        self._interval = CLOSE_CHECK_S
        self._due = time.monotonic() + self._interval

    def soon(self) -> None:
        """A turn ended (the run may close now): check after the grace period, then at the first interval."""
        self._interval, self._due = CLOSE_CHECK_S, time.monotonic() + CLOSE_GRACE_S

    def wait_s(self, keepalive_s: float) -> float:
        """How long the stream may wait for events before its next keep-alive or check."""
        return max(0.0, min(keepalive_s, self._due - time.monotonic()))

    def due(self) -> bool:
        """Whether a check is due now; if so the next one is an interval (doubling) away."""
        now = time.monotonic()
        if now < self._due:
            return False
        self._due = now + self._interval
        self._interval = min(self._interval * 2, MAX_CLOSE_CHECK_S)
        return True


@dataclass(frozen=True)
class StreamEnd:
    """Where a kind of run's event stream ends."""

    last: frozenset[str]
    """Types of the run's last event: the stream ends after it."""
    soon: frozenset[str] = frozenset()
    """Types after which the run may close without a ``last`` event (Temporal is asked soon)."""


RUN_STREAM_END = StreamEnd(last=frozenset({RUN_CLOSED}), soon=FINAL_EVENTS)


async def _stored(
    events: RunEventLog, tenant_id: str, run_id: str, after: str, end: StreamEnd
) -> AsyncIterator[RunEvent]:
    """The stored events after ``after``, up to the last event or the end of the stream."""
    while batch := await events.range(tenant_id, run_id, after=after):
        for event in batch:
            yield event
            if event.type in end.last:
                return
        after = batch[-1].id


async def _closed_run(
    events: RunEventLog, tenant_id: str, run_id: str, after: str, end: StreamEnd
) -> AsyncIterator[str]:
    """Every stored event after ``after`` of a run that has ended."""
    yield _RETRY
    async for event in _stored(events, tenant_id, run_id, after, end):
        yield sse_frame(event)


async def _live_run(
    state: AppState, tenant_id: str, run_id: str, workflow_id: str, after: str, end: StreamEnd
) -> AsyncIterator[str]:
    """Events after ``after`` as they come, keep-alives while none do; ends with the run."""
    yield _RETRY
    check = _CloseCheck()
    with state.event_hub.subscribe(tenant_id, run_id, after=after) as events:
        while True:
            batch = await events.next(check.wait_s(state.settings.stream_keepalive_s))
            if not batch:
                yield ": keep-alive\n\n"
            if check.due() and await workflow_closed(state.temporal, workflow_id):
                # what the hub has not delivered
                async for event in _stored(state.events, tenant_id, run_id, after, end):
                    yield sse_frame(event)
                return
            for event in batch:
                yield sse_frame(event)
                if event.type in end.last:
                    return
                if event.type in end.soon:
                    check.soon()
                after = event.id


@router.get(
    "/v1/runs/{run_id}/events",
    response_class=StreamingResponse,
    responses=sse_responses("`step.started`, `run.completed`, `run.closed`"),
)
async def run_events(
    run_id: str,
    state: StateDep,
    principal: RunsRead,
    last_event_id: LastEventId = None,
    after: After = None,
) -> StreamingResponse:
    """Step starts/finishes and each turn's outcome, up to ``run.closed``; resume with ``Last-Event-ID``."""
    found = await RunReads(state.reads, principal.tenant_id).status(run_id)
    if found is None:
        raise ProblemError(404, f"run {run_id} not found", slug=ProblemType.NOT_FOUND)
    status, workflow_id = found
    return await event_stream(
        state,
        principal.tenant_id,
        run_id,
        workflow_id,
        final=status in RunStatus.FINAL,
        start=last_event_id or after or "0",
        end=RUN_STREAM_END,
    )


async def event_stream(
    state: AppState, tenant_id: str, run_id: str, workflow_id: str, *, final: bool, start: str, end: StreamEnd
) -> EventStreamResponse:
    """The SSE response of a run's events after ``start``: its stored ones once the run is ``final`` and its
    workflow closed, else live ones up to ``end``; 429 beyond the stream limits."""
    ended = final and await workflow_closed(state.temporal, workflow_id)
    try:
        lease = state.stream_limits.acquire(tenant_id)
    except StreamLimitError as exc:
        raise ProblemError(
            429, str(exc), slug=ProblemType.TOO_MANY_STREAMS, headers={"Retry-After": str(STREAM_RETRY_AFTER_S)}
        ) from None
    stream = (
        _closed_run(state.events, tenant_id, run_id, start, end)
        if ended
        else _live_run(state, tenant_id, run_id, workflow_id, start, end)
    )
    return EventStreamResponse(stream, lease=lease)
