"""``GET /v1/runs/{id}/events``: a run's events as Server-Sent Events, resumable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from api.deps import Principal, SessionDep, StateDep, require
from api.problems import ProblemError
from core.db.repos import RunRepository
from core.events import FINAL_EVENTS, RunEvent, RunEventLog

router = APIRouter(tags=["runs"])
KEEPALIVE_MS = 15_000
_EVENT_ID = r"^(0|\d{1,20}-\d{1,20})$"


def sse_frame(event: RunEvent) -> str:
    """One SSE frame."""
    return f"id: {event.id}\nevent: {event.type}\ndata: {json.dumps(event.data, separators=(',', ':'))}\n\n"


async def _stream(
    request: Request, events: RunEventLog, tenant_id: str, run_id: str, after: str, already_final: bool
) -> AsyncIterator[str]:
    yield "retry: 1000\n\n"
    while True:
        block = None if already_final else KEEPALIVE_MS
        batch = await events.read(tenant_id, run_id, after=after, block_ms=block)
        for event in batch:
            yield sse_frame(event)
            after = event.id
            if event.type in FINAL_EVENTS:
                return
        if already_final or await request.is_disconnected():
            return
        if not batch:
            yield ": keep-alive\n\n"


@router.get(
    "/v1/runs/{run_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def run_events(
    run_id: str,
    request: Request,
    state: StateDep,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("runs:read"))],
    last_event_id: Annotated[str | None, Header(pattern=_EVENT_ID)] = None,
    after: Annotated[str | None, Query(pattern=_EVENT_ID, description="Resume after this event id.")] = None,
) -> StreamingResponse:
    """Step starts/finishes and the final status of a run; resume with ``Last-Event-ID``."""
    run = await RunRepository(session, principal.tenant_id).get(run_id)
    if run is None:
        raise ProblemError(404, f"run {run_id} not found", slug="not-found")
    final = run.status in {"completed", "failed", "cancelled"}
    stream = _stream(request, state.events, principal.tenant_id, run_id, last_event_id or after or "0", final)
    return StreamingResponse(
        stream, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
