"""``/v1/voice/sessions``: talk to an agent — sessions, turns with a WAV body, their recordings, the end.

A session (``VoiceSessionWorkflow`` on the voice queue) pins the agent's current version (or the
version its running experiment assigns the subject) and talks on one thread with one subject,
as text runs do. ``POST …/turns`` stores the WAV (resampled to 16 kHz mono PCM16) and submits
it to the session (the ``submit_utterance`` update); the answer is the recorded turn.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.common import Priority, SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.service import RPCError, RPCStatusCode

from api.audit import audit
from api.deps import SessionDep, StateDep
from api.pagination import Limit, NewestFirst
from api.permissions import VoiceRead, VoiceWrite
from api.problem_types import ProblemType, problems
from api.problems import ProblemError
from api.routes.runs import current_agent, temporal_link
from api.schemas import Page
from api.state import AppState
from api.voice_schemas import (
    WAV_MEDIA_TYPES,
    LatencyPublic,
    VoiceSessionCreate,
    VoiceSessionPublic,
    VoiceTurnPublic,
)
from core.contracts.voice import (
    SESSION_CLOSED,
    AudioSide,
    EndReason,
    EndSession,
    SessionStatus,
    TurnResult,
    TurnStatus,
    Utterance,
    VoiceSessionInput,
)
from core.db.models import VoiceSession, VoiceTurn
from core.db.repos import Keyset
from core.ids import AGENT_ID, RUN_KIND, TENANT_ID, new_id, voice_session_workflow_id
from core.optimizer.experiment_store import ExperimentStore, version_of
from core.speech.audio import AudioTooLongError, InvalidAudioError, UnsupportedAudioError, decode_wav, encode_wav
from core.telemetry import metrics
from core.voice.audio_store import PgAudioStore, Recording
from core.voice.store import LiveSessionLimitError, VoiceStore
from workflows.voice import VoiceSessionWorkflow

router = APIRouter(tags=["voice"])
SESSIONS = NewestFirst("voice-sessions")
TURNS_SHOWN = 200
RUN_KIND_VOICE = "voice_session"
WAV_BODY = {
    "required": True,
    "description": "What the user said: a WAV file (PCM 8/16/24/32-bit or float; any rate, mono or stereo),"
    " resampled to 16 kHz mono.",
    "content": {media: {"schema": {"type": "string", "format": "binary"}} for media in WAV_MEDIA_TYPES[:2]},
}
WAV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The recording (16 kHz mono PCM16).",
        "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _audio_url(session_id: str, turn_id: str, side: AudioSide) -> str:
    return f"/v1/voice/sessions/{session_id}/turns/{turn_id}/audio?side={side.value}"


def turn_public(session_id: str, turn: VoiceTurn | TurnResult, *, user_audio: bool = True) -> VoiceTurnPublic:
    """The public view of a recorded turn (a row, or the update's answer)."""
    if isinstance(turn, TurnResult):
        latency = LatencyPublic(**vars(turn.latency))
        turn_id, reply_audio, created_at = turn.turn_id, turn.reply_audio_id, None
    else:
        latency = LatencyPublic(
            vad=turn.vad_ms,
            stt=turn.stt_ms,
            agent=turn.agent_ms,
            tts=turn.tts_ms,
            total=turn.total_ms,
            endpoint=turn.endpoint_ms,
            agent_first_token=turn.agent_first_token_ms,
            tts_first_audio=turn.tts_first_audio_ms,
            first_audio=turn.first_audio_ms,
        )
        turn_id, reply_audio, created_at = turn.id, turn.reply_audio_id, turn.created_at
        user_audio = turn.user_audio_id is not None
    return VoiceTurnPublic(
        turn_id=turn_id,
        seq=turn.seq,
        status=TurnStatus(turn.status),
        transcript=turn.transcript,
        reply_text=turn.reply_text,
        reply_audio_url=_audio_url(session_id, turn_id, AudioSide.REPLY) if reply_audio else None,
        user_audio_url=_audio_url(session_id, turn_id, AudioSide.USER) if user_audio else None,
        run_id=turn.run_id,
        latency_ms=latency,
        interrupted=turn.status == "interrupted",
        error=turn.error,
        created_at=created_at,
    )


def session_public(state: AppState, session: VoiceSession, turns: list[VoiceTurn] | None = None) -> VoiceSessionPublic:
    """The public view of a session (with its last turns when given)."""
    return VoiceSessionPublic(
        id=session.id,
        status=SessionStatus(session.status),
        agent_id=session.agent_id,
        agent_version=session.agent_version,
        thread_id=session.thread_id,
        subject=session.subject,
        idle_timeout_s=session.idle_timeout_s,
        turn_count=session.turns,
        end_reason=session.end_reason,
        turns=[turn_public(session.id, t) for t in turns] if turns is not None else None,
        error=session.error,
        created_at=session.created_at,
        updated_at=session.updated_at,
        ended_at=session.ended_at,
        temporal=temporal_link(state, session.workflow_id, None),
    )


def _invalid(field: str, message: str, status: int = 422) -> ProblemError:
    slug = ProblemType.VALIDATION_ERROR if status == 422 else None
    return ProblemError(status, f"{field}: {message}", slug=slug, errors=[{"field": field, "message": message}])


async def _found(state: AppState, tenant_id: str, session_id: str) -> VoiceSession:
    session = await VoiceStore(state.engine).get(tenant_id, session_id)
    if session is None:
        raise ProblemError(404, f"voice session {session_id} not found", slug=ProblemType.NOT_FOUND)
    return session


def _live(session: VoiceSession) -> None:
    if session.status != SessionStatus.ACTIVE:
        raise ProblemError(
            409, f"voice session {session.id} has {session.status} ({session.end_reason})", slug=ProblemType.CONFLICT
        )


def _temporal_down(detail: str) -> ProblemError:
    return ProblemError(503, detail, slug=ProblemType.TEMPORAL_UNAVAILABLE, headers={"Retry-After": "2"})


async def _start(state: AppState, session: VoiceSession) -> None:
    settings = state.settings
    inp = VoiceSessionInput(
        tenant_id=session.tenant_id,
        session_id=session.id,
        agent_id=session.agent_id,
        agent_version=session.agent_version,
        thread_id=session.thread_id,
        subject=session.subject,
        idle_timeout_s=session.idle_timeout_s,
        max_turns_per_execution=settings.voice_turns_per_execution,
        heartbeat_timeout_s=settings.activity_heartbeat_timeout_s,
        agent_max_steps=settings.agent_max_steps,
        agents_task_queue=settings.agents_task_queue,
        experiment_id=session.experiment_id,
        experiment_arm=session.experiment_arm,
    )
    await state.temporal.start_workflow(
        VoiceSessionWorkflow.run,
        inp,
        id=session.workflow_id,
        task_queue=settings.voice_task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(TENANT_ID, session.tenant_id),
                SearchAttributePair(AGENT_ID, session.agent_id),
                SearchAttributePair(RUN_KIND, RUN_KIND_VOICE),
            ]
        ),
        priority=Priority(fairness_key=session.tenant_id),
    )


async def _close_gone_sessions(state: AppState, tenant_id: str) -> int:
    """Mark ``failed`` the tenant's live sessions whose workflow is gone from Temporal (terminated, failed,
    removed): they would hold a live slot for ever. How many were closed (0 when Temporal cannot tell)."""
    store = VoiceStore(state.engine)
    live = await store.page(tenant_id, limit=state.settings.voice_sessions_per_tenant, status=SessionStatus.ACTIVE)
    closed = 0
    for session in live:
        try:
            described = await state.temporal.get_workflow_handle(session.workflow_id).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                return closed
            status = None
        except RuntimeError:  # no connection: nothing can be told
            return closed
        else:
            status = described.status
            if status == WorkflowExecutionStatus.RUNNING:
                continue
        reason = f"the session's workflow is {status.name.lower() if status else 'gone'} in Temporal"
        error = {"type": "WorkflowClosed", "message": reason}
        ended = await store.end(
            tenant_id, session.id, status=SessionStatus.FAILED, reason=EndReason.FAILED, error=error
        )
        closed += int(ended)
    return closed


@router.post("/v1/voice/sessions", status_code=201, response_model=VoiceSessionPublic, responses=problems(409, 503))
async def start_session(
    body: VoiceSessionCreate, state: StateDep, session: SessionDep, principal: VoiceWrite
) -> VoiceSessionPublic:
    """Start a voice session with the agent's current version (pinned for every turn).

    422 naming ``agent_id`` when the workspace has no such agent, or ``idle_timeout_s`` above
    ``AIMPACT_VOICE_MAX_IDLE_TIMEOUT_S``; 409 for an archived agent; 429 when the workspace already
    holds ``AIMPACT_VOICE_SESSIONS_PER_TENANT`` live sessions; 503 when Temporal cannot take the start.
    """
    tenant = principal.tenant_id
    settings = state.settings
    idle = body.idle_timeout_s or settings.voice_idle_timeout_s
    if idle > settings.voice_max_idle_timeout_s:
        raise _invalid(
            "idle_timeout_s", f"at most {settings.voice_max_idle_timeout_s:g} (AIMPACT_VOICE_MAX_IDLE_TIMEOUT_S)"
        )
    agent = await current_agent(state, tenant, body.agent_id)
    if agent is None:
        raise _invalid("agent_id", f"no agent {body.agent_id} in this workspace")
    if agent.archived:
        raise ProblemError(409, f"agent {agent.id} is archived: it starts no sessions", slug=ProblemType.AGENT_ARCHIVED)
    session_id = new_id("vs")
    thread_id = body.thread_id or new_id("thr")
    version, experiment_id, arm = agent.version, None, None
    if agent.experiment is not None:
        arm = await ExperimentStore(session, tenant).assign(agent.experiment.id, body.subject or thread_id)
        await session.commit()
        if arm is not None:
            experiment_id, version = agent.experiment.id, version_of(agent.experiment, arm)
    store = VoiceStore(state.engine)
    row = VoiceSession(
        id=session_id,
        tenant_id=tenant,
        agent_id=agent.id,
        agent_version=version,
        thread_id=thread_id,
        subject=body.subject,
        status=SessionStatus.ACTIVE.value,
        idle_timeout_s=idle,
        experiment_id=experiment_id,
        experiment_arm=arm,
        workflow_id=voice_session_workflow_id(tenant, session_id),
    )
    try:
        try:
            created = await store.start(row, live_limit=settings.voice_sessions_per_tenant)
        except LiveSessionLimitError:
            if not await _close_gone_sessions(state, tenant):
                raise
            created = await store.start(row, live_limit=settings.voice_sessions_per_tenant)
    except LiveSessionLimitError as exc:
        raise ProblemError(429, str(exc), slug=ProblemType.QUOTA_EXCEEDED, headers={"Retry-After": "5"}) from None
    try:
        await _start(state, created)
    except (RPCError, RuntimeError) as exc:  # RuntimeError: no connection
        await store.end(tenant, session_id, status=SessionStatus.FAILED.value, reason=EndReason.START_FAILED.value)
        raise _temporal_down("the voice session could not be started: Temporal did not answer; retry") from exc
    metrics.VOICE_SESSIONS_STARTED.inc()
    audit(session, principal, action="voice_session.started", target_type="voice_session", target_id=session_id)
    await session.commit()
    return session_public(state, created, [])


@router.get("/v1/voice/sessions", response_model=Page[VoiceSessionPublic])
async def list_sessions(
    state: StateDep,
    principal: VoiceRead,
    after: Annotated[Keyset | None, Depends(SESSIONS.after)],
    limit: Limit = 50,
    status: SessionStatus | None = None,
    agent_id: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
) -> Page[VoiceSessionPublic]:
    """The workspace's voice sessions, newest first (without their turns)."""
    rows = await VoiceStore(state.engine).page(
        principal.tenant_id, limit=limit + 1, after=after, status=status.value if status else None, agent_id=agent_id
    )
    page, next_cursor = SESSIONS.page(rows, limit)
    return Page(items=[session_public(state, r) for r in page], next_cursor=next_cursor)


@router.get("/v1/voice/sessions/{session_id}", response_model=VoiceSessionPublic)
async def get_session(session_id: str, state: StateDep, principal: VoiceRead) -> VoiceSessionPublic:
    """One session: status and its last turns (transcript, reply, recordings, latency per stage)."""
    found = await _found(state, principal.tenant_id, session_id)
    turns = await VoiceStore(state.engine).turns(principal.tenant_id, session_id, last=TURNS_SHOWN)
    return session_public(state, found, turns)


@router.post(
    "/v1/voice/sessions/{session_id}/turns",
    status_code=201,
    response_model=VoiceTurnPublic,
    responses=problems(409, 413, 415, 503),
    openapi_extra={"requestBody": WAV_BODY},
)
async def take_turn(
    session_id: str,
    request: Request,
    state: StateDep,
    principal: VoiceWrite,
) -> VoiceTurnPublic:
    """Say something: a WAV body in, the turn out (transcript, reply, reply audio URL, latency per stage).

    Audio without speech (silence, or no samples at all) is a ``silent`` turn: an empty
    transcript and no agent call. 415 for a body not sent as ``audio/wav`` or a WAV encoding
    that cannot be converted; 422 (``body``) for a body that is not a WAV file; 413 beyond
    ``AIMPACT_VOICE_MAX_UTTERANCE_BYTES`` or ``AIMPACT_VOICE_MAX_UTTERANCE_S``; 409 once the
    session has ended; 503 when the turn takes longer than ``AIMPACT_VOICE_TURN_WAIT_S`` (it
    goes on: read it with ``GET /v1/voice/sessions/{id}``) or Temporal is out of reach.
    """
    received = time.perf_counter()
    tenant = principal.tenant_id
    settings = state.settings
    found = await _found(state, tenant, session_id)
    _live(found)
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in WAV_MEDIA_TYPES:
        raise _invalid("content-type", f"send the audio as audio/wav, not {media or 'nothing'}", 415)
    data = await request.body()  # at most AIMPACT_MAX_BODY_BYTES (the body limit answers 413 beyond)
    if len(data) > settings.voice_max_utterance_bytes:
        limit = settings.voice_max_utterance_bytes
        raise _invalid("body", f"larger than {limit} bytes (AIMPACT_VOICE_MAX_UTTERANCE_BYTES)", 413)
    try:
        audio = await asyncio.to_thread(decode_wav, data, max_duration_s=settings.voice_max_utterance_s)
    except UnsupportedAudioError as exc:
        raise _invalid("body", str(exc), 415) from None
    except AudioTooLongError as exc:
        raise _invalid("body", f"{exc} (AIMPACT_VOICE_MAX_UTTERANCE_S)", 413) from None
    except InvalidAudioError as exc:
        raise _invalid("body", str(exc)) from None
    turn_id, audio_id = new_id("vt"), new_id("aud")
    await PgAudioStore(state.engine).put(
        Recording(
            id=audio_id,
            tenant_id=tenant,
            session_id=session_id,
            side=AudioSide.USER.value,
            wav=encode_wav(audio),
            duration_s=audio.duration_s,
        )
    )
    utterance = Utterance(turn_id=turn_id, audio_id=audio_id, received_ms=(time.perf_counter() - received) * 1000)
    result = await _submit(state, found, utterance)
    return turn_public(session_id, result)


async def _submit(state: AppState, session: VoiceSession, utterance: Utterance) -> TurnResult:
    """The turn's result from the session's workflow: 409 once it has ended, 503 when it takes too long."""
    handle = state.temporal.get_workflow_handle_for(VoiceSessionWorkflow.run, session.workflow_id)
    try:
        return await asyncio.wait_for(
            handle.execute_update(VoiceSessionWorkflow.submit_utterance, utterance, id=utterance.turn_id),
            timeout=state.settings.voice_turn_wait_s,
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        closed = isinstance(cause, ApplicationError) and cause.type == SESSION_CLOSED
        if closed or isinstance(cause, CancelledError):  # refused as ended, or cancelled with its session
            raise ProblemError(409, f"voice session {session.id} has ended", slug=ProblemType.CONFLICT) from None
        raise _temporal_down(f"the turn failed in the session's workflow: {cause}") from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise ProblemError(409, f"voice session {session.id} has ended", slug=ProblemType.CONFLICT) from None
        raise _temporal_down("the turn could not be submitted: Temporal did not answer; retry") from exc
    except RuntimeError as exc:  # no connection
        raise _temporal_down("the turn could not be submitted: Temporal did not answer; retry") from exc
    except TimeoutError:
        raise _temporal_down(
            f"turn {utterance.turn_id} takes longer than {state.settings.voice_turn_wait_s:g} s;"
            f" it goes on: read it with GET /v1/voice/sessions/{session.id}"
        ) from None


@router.get(
    "/v1/voice/sessions/{session_id}/turns/{turn_id}/audio",
    response_class=Response,
    responses=WAV_RESPONSE,
)
async def turn_audio(
    session_id: str,
    turn_id: str,
    state: StateDep,
    principal: VoiceRead,
    side: Literal["user", "reply"] = "reply",
) -> Response:
    """A turn's recording as ``audio/wav``: the reply (default) or what the user said (``side=user``).

    404 for a turn without that recording, or one erased or past ``AIMPACT_VOICE_AUDIO_RETENTION_S``.
    """
    tenant = principal.tenant_id
    turn = await VoiceStore(state.engine).turn(tenant, session_id, turn_id)
    audio_id = (turn.user_audio_id if side == AudioSide.USER.value else turn.reply_audio_id) if turn else None
    recording = None
    if audio_id is not None:
        recording = await PgAudioStore(state.engine).get(
            tenant, audio_id, retention_s=state.settings.voice_audio_retention_s
        )
    if recording is None:
        raise ProblemError(404, f"no {side} recording of turn {turn_id}", slug=ProblemType.NOT_FOUND)
    return Response(content=recording.wav, media_type="audio/wav")


@router.post(
    "/v1/voice/sessions/{session_id}/end",
    status_code=202,
    response_model=VoiceSessionPublic,
    responses=problems(409, 503),
)
async def end_session(
    session_id: str, state: StateDep, session: SessionDep, principal: VoiceWrite
) -> VoiceSessionPublic:
    """End the session: a turn in flight finishes, new ones answer 409; 409 once it has ended."""
    found = await _found(state, principal.tenant_id, session_id)
    _live(found)
    try:
        await state.temporal.get_workflow_handle_for(VoiceSessionWorkflow.run, found.workflow_id).signal(
            VoiceSessionWorkflow.end, EndSession()
        )
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise _temporal_down("the session could not be ended: Temporal did not answer; retry") from exc
        # the workflow is gone (terminated in Temporal): the session is over
        await VoiceStore(state.engine).end(
            found.tenant_id, found.id, status=SessionStatus.ENDED.value, reason=EndReason.ENDED.value
        )
    except RuntimeError as exc:
        raise _temporal_down("the session could not be ended: Temporal did not answer; retry") from exc
    audit(session, principal, action="voice_session.ended", target_type="voice_session", target_id=session_id)
    await session.commit()
    return session_public(state, await _found(state, principal.tenant_id, session_id))
