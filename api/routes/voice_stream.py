"""``WS /v1/voice/sessions/{id}/stream``: talk to a voice session in real time (``api.voice_stream``).

Credentials come as ``?token=`` (a JWT or an API key) or as the first text message
``{"type": "auth", "token": …}`` within ``AIMPACT_VOICE_STREAM_AUTH_TIMEOUT_S``; the caller
needs ``voice:write``. One stream per session at a time (a Redis lease across API processes).
Refusals close the socket with a code after accepting it, so browsers can read the code:
4400 bad request, 4401 bad credentials, 4403 no permission, 4404 no such session (another
workspace's sessions included), 4409 another stream is open, 4410 the session has ended,
4429 too many streams, 1011 the speech engines could not start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator

import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from redis.asyncio import Redis
from starlette.websockets import WebSocketState

from api.deps import Principal, principal_from_token
from api.problems import ProblemError
from api.state import AppState
from api.streams import StreamLimitError
from api.voice_stream import Conversation, StreamClosedError
from core.contracts.voice import SessionStatus
from core.db.models import VoiceSession
from core.ids import new_id
from core.roles import Permission
from core.speech.base import SpeechError
from core.voice.store import VoiceStore

log = structlog.get_logger(__name__)
router = APIRouter(tags=["voice"])
LEASE_S = 30
"""A stream's lease on its session; renewed every third of it while the stream lives."""
_EVENT_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def _lease_key(session_id: str) -> str:
    return f"aimpact:voice-stream:{session_id}"


@contextlib.asynccontextmanager
async def stream_lease(redis: Redis, session_id: str, *, wait_s: float = 2.0) -> AsyncIterator[None]:
    """Hold the session's one stream slot (waiting up to ``wait_s`` for a closing stream to let go), renewed."""
    key, owner = _lease_key(session_id), new_id("wss")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while not await redis.set(key, owner, nx=True, ex=LEASE_S):
        if loop.time() >= deadline:
            raise StreamClosedError(4409, "another stream of this session is open")
        await asyncio.sleep(0.1)

    async def renew() -> None:
        while True:
            await asyncio.sleep(LEASE_S / 3)
            await redis.expire(key, LEASE_S)

    renewing = asyncio.create_task(renew())
    try:
        yield
    finally:
        renewing.cancel()
        held = await redis.get(key)
        if held is not None and (held.decode() if isinstance(held, bytes) else held) == owner:
            await redis.delete(key)


async def _credentials(ws: WebSocket, state: AppState) -> Principal:
    token = ws.query_params.get("token")
    if not token:
        try:
            first = await asyncio.wait_for(ws.receive_text(), timeout=state.settings.voice_stream_auth_timeout_s)
            message = json.loads(first)
            token = message.get("token") if isinstance(message, dict) and message.get("type") == "auth" else None
        except (TimeoutError, ValueError, KeyError, RuntimeError):
            token = None
        if not isinstance(token, str) or not token:
            raise StreamClosedError(4401, 'send ?token= or {"type": "auth", "token": ...} first')
    try:
        principal = await principal_from_token(state, token)
    except ProblemError as exc:
        raise StreamClosedError(4429 if exc.status == 429 else 4401, exc.detail) from None
    if Permission.VOICE_WRITE not in principal.permissions:
        raise StreamClosedError(4403, f"role {principal.role!r} lacks permission 'voice:write'")
    return principal


async def _session(state: AppState, principal: Principal, session_id: str) -> VoiceSession:
    session = await VoiceStore(state.engine).get(principal.tenant_id, session_id)
    if session is None:
        raise StreamClosedError(4404, f"voice session {session_id} not found")
    if session.status != SessionStatus.ACTIVE:
        raise StreamClosedError(4410, f"voice session {session_id} has {session.status}")
    return session


@router.websocket("/v1/voice/sessions/{session_id}/stream")
async def voice_stream(ws: WebSocket, session_id: str) -> None:
    """Stream audio to a voice session and hear its replies (protocol: ``api.voice_stream``, README)."""
    state: AppState = ws.app.state.aimpact
    await ws.accept()
    try:
        principal = await _credentials(ws, state)
        structlog.contextvars.bind_contextvars(tenant_id=principal.tenant_id, voice_session_id=session_id)
        session = await _session(state, principal, session_id)
        after = ws.query_params.get("last_event_id")
        if after is not None and not _EVENT_ID.match(after):
            raise StreamClosedError(4400, "last_event_id: an event id as the stream sent it (<ms>-<seq>)")
        try:
            lease = state.stream_limits.acquire(principal.tenant_id)
        except StreamLimitError as exc:
            raise StreamClosedError(4429, str(exc)) from None
        try:
            async with stream_lease(state.redis, session.id):
                engines = state.speech_engines()
                try:
                    await engines.warm()
                except SpeechError as exc:
                    raise StreamClosedError(1011, f"the speech engines could not start: {exc}") from None
                conversation = Conversation(ws, state, session, engines)
                if after is not None:
                    await conversation.replay(after)
                await conversation.run()
        finally:
            lease.release()
    except StreamClosedError as exc:
        log.info("voice stream refused", code=exc.code, reason=str(exc))
        await _close(ws, exc.code, str(exc))
        return
    await _close(ws, 1000, "")


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    """Close the socket unless the client already has."""
    if ws.client_state == WebSocketState.CONNECTED and ws.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.close(code=code, reason=reason[:120])
