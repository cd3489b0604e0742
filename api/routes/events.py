"""``GET /v1/runs/{id}/events``: a run's events as Server-Sent Events, resumable.

A stream checks access with a short-lived database session and releases it before
the first byte: an open stream holds no database connection and no Redis connection
of its own (the process's ``RunEventHub`` reads every followed run with one ``XREAD``).
Streams are limited per tenant and per process (``AIMPACT_STREAMS_PER_TENANT``,
``AIMPACT_STREAMS_PER_PROCESS``); an idle stream gets a keep-alive comment every
``AIMPACT_STREAM_KEEPALIVE_S`` seconds.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api.deps import Principal, StateDep, require
from api.problems import ProblemError
from api.routes.runs import FINAL_STATUSES, run_or_404
from api.streams import StreamLease, StreamLimitError
from core.event_hub import RunEventHub
from core.events import FINAL_EVENTS, RunEvent, RunEventLog

router = APIRouter(tags=["runs"])
STREAM_RETRY_AFTER_S = 5
"""``Retry-After`` of a stream refused by the stream limits."""
_EVENT_ID = r"^(0|\d{1,20}-\d{1,20})$"


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


async def _finished_run(events: RunEventLog, tenant_id: str, run_id: str, after: str) -> AsyncIterator[str]:
    """Every stored event after ``after`` of a run that has ended, up to its final event."""
    yield "retry: 1000\n\n"
    while batch := await events.range(tenant_id, run_id, after=after):
        for event in batch:
            yield sse_frame(event)
            if event.type in FINAL_EVENTS:
                return
        after = batch[-1].id


async def _live_run(
    hub: RunEventHub, tenant_id: str, run_id: str, after: str, keepalive_s: float
) -> AsyncIterator[str]:
    """Events after ``after`` as they come, keep-alives while none do; ends on the final event."""
    yield "retry: 1000\n\n"
    with hub.subscribe(tenant_id, run_id, after=after) as events:
        while True:
            batch = await events.next(keepalive_s)
            if not batch:
                yield ": keep-alive\n\n"
            for event in batch:
                yield sse_frame(event)
                if event.type in FINAL_EVENTS:
                    return


@router.get(
    "/v1/runs/{run_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
        429: {"description": "Too many open event streams (per tenant or on this server); see Retry-After."},
    },
)
async def run_events(
    run_id: str,
    state: StateDep,
    principal: Annotated[Principal, Depends(require("runs:read"))],
    last_event_id: Annotated[str | None, Header(pattern=_EVENT_ID)] = None,
    after: Annotated[str | None, Query(pattern=_EVENT_ID, description="Resume after this event id.")] = None,
) -> StreamingResponse:
    """Step starts/finishes and the final status of a run; resume with ``Last-Event-ID``."""
    async with state.sessions() as session:  # not SessionDep: that one would stay open for the stream's life
        final = (await run_or_404(session, principal.tenant_id, run_id)).status in FINAL_STATUSES
    try:
        lease = state.stream_limits.acquire(principal.tenant_id)
    except StreamLimitError as exc:
        raise ProblemError(
            429, str(exc), slug="too-many-streams", headers={"Retry-After": str(STREAM_RETRY_AFTER_S)}
        ) from None
    start = last_event_id or after or "0"
    stream = (
        _finished_run(state.events, principal.tenant_id, run_id, start)
        if final
        else _live_run(state.event_hub, principal.tenant_id, run_id, start, state.settings.stream_keepalive_s)
    )
    return EventStreamResponse(stream, lease=lease)
