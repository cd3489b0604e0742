"""Activities of ``VoiceSessionWorkflow`` and ``VoiceRetentionWorkflow``.

A turn: ``transcribe`` (voice activity detection, then speech to text on the speech found),
``agent_run`` (the run row answering the transcript; the workflow runs it as a child
``AgentRunWorkflow``), ``synthesize`` (the reply spoken and stored), ``record_turn``. Each is
idempotent by the session's workflow id and the turn's ``seq``: ``transcribe`` writes nothing,
``agent_run`` and ``synthesize`` derive their run and recording ids from them (a retry finds
what an earlier attempt wrote, and ``synthesize`` then skips the engine), ``record_turn``
upserts the ``(session, seq)`` row and counts metrics only when it created it. The engine calls
heartbeat, so a worker that dies mid-turn is noticed within the heartbeat timeout.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import classify_database_errors
from activities.heartbeat import heartbeating
from core.contracts.voice import (
    AUDIO_NOT_FOUND,
    AgentTurnInput,
    AgentTurnRun,
    AudioSide,
    KeepHeardInput,
    RecordSessionInput,
    RecordTurnInput,
    RetentionInput,
    RetentionResult,
    Synthesized,
    SynthesizeInput,
    Transcribed,
    TranscribeInput,
    TurnStatus,
)
from core.quotas import QuotaExceededError
from core.speech.audio import decode_wav, encode_wav
from core.telemetry import metrics
from core.threads import ThreadStore
from core.voice.audio_store import AudioStore, Recording, derived_audio_id
from core.voice.runs import insert_turn_run, turn_run_id
from core.voice.speech import SpeechEngines
from core.voice.store import VoiceStore

log = structlog.get_logger(__name__)
QuotaCheck = Callable[[str], Awaitable[None]]


class VoiceActivities:
    """The voice worker's activities over the database, the recordings and the process's speech engines."""

    def __init__(
        self,
        *,
        store: VoiceStore,
        audio: AudioStore,
        engines: SpeechEngines,
        threads: ThreadStore,
        quota_check: QuotaCheck,
        retention_s: float,
    ):
        self._store = store
        self._threads = threads
        self._audio = audio
        self._engines = engines
        self._quota_check = quota_check
        self._retention_s = retention_s

    def all(self) -> list[Any]:
        """Every activity callable, for the worker."""
        return [
            self.transcribe,
            self.agent_run,
            self.synthesize,
            self.record_turn,
            self.keep_heard,
            self.record_session,
            self.purge_audio,
        ]

    @activity.defn(name="voice.transcribe")
    async def transcribe(self, inp: TranscribeInput) -> Transcribed:
        """What the user said: the speech voice activity detection finds, transcribed (nothing without speech)."""
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, voice_session_id=inp.session_id)
        recording = await self._audio.get(inp.tenant_id, inp.audio_id, retention_s=self._retention_s)
        if recording is None:
            raise ApplicationError(
                f"the recording of turn {inp.seq} is gone (erased or past retention)",
                type=AUDIO_NOT_FOUND,
                non_retryable=True,
            )
        audio = decode_wav(recording.wav)
        async with heartbeating():
            found = await self._engines.transcribe(audio, time.perf_counter)
        return Transcribed(
            text=found.text,
            speech=found.speech,
            audio_s=audio.duration_s,
            vad_ms=found.vad_ms,
            stt_ms=found.stt_ms,
        )

    @activity.defn(name="voice.agent_run")
    @classify_database_errors
    async def agent_run(self, inp: AgentTurnInput) -> AgentTurnRun:
        """Create (once) the run of the session's agent version that answers the transcript, on its thread."""
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, voice_session_id=inp.session_id)
        info = activity.info()
        if info.attempt == 1:  # a later attempt may find its own run already counted
            try:
                await self._quota_check(inp.tenant_id)
            except QuotaExceededError as exc:
                return AgentTurnRun(error={"type": "QuotaExceeded", "message": f"the run quota is exhausted: {exc}"})
        run_id = inp.run_id or turn_run_id(info.workflow_id or "", inp.seq)
        workflow_id = await insert_turn_run(self._store.engine, inp, run_id)
        return AgentTurnRun(run_id=run_id, workflow_id=workflow_id)

    @activity.defn(name="voice.synthesize")
    @classify_database_errors
    async def synthesize(self, inp: SynthesizeInput) -> Synthesized:
        """The reply spoken and stored (once per turn: a retry finds the stored recording)."""
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, voice_session_id=inp.session_id)
        audio_id = derived_audio_id(f"{activity.info().workflow_id}:{inp.seq}:{AudioSide.REPLY}")
        stored = await self._audio.get(inp.tenant_id, audio_id, retention_s=self._retention_s)
        if stored is not None:
            return Synthesized(audio_id=audio_id, audio_s=stored.duration_s)
        async with heartbeating():
            audio, tts_ms = await self._engines.synthesize(inp.text, time.perf_counter)
        await self._audio.put(
            Recording(
                id=audio_id,
                tenant_id=inp.tenant_id,
                session_id=inp.session_id,
                side=AudioSide.REPLY.value,
                wav=encode_wav(audio),
                duration_s=audio.duration_s,
            )
        )
        return Synthesized(audio_id=audio_id, audio_s=audio.duration_s, tts_ms=tts_ms)

    @activity.defn(name="voice.record_turn")
    @classify_database_errors
    async def record_turn(self, inp: RecordTurnInput) -> None:
        """Write the turn's row; the first write also counts it in the metrics."""
        if not await self._store.record_turn(inp):
            return
        result = inp.result
        metrics.VOICE_TURNS.labels(result.status).inc()
        for stage, ms in asdict(result.latency).items():
            if stage != "total" and ms > 0:
                metrics.VOICE_STAGE_LATENCY.labels(stage).observe(ms / 1000)
        if result.status != TurnStatus.FAILED:
            metrics.VOICE_STAGE_LATENCY.labels("total").observe(result.latency.total / 1000)
        metrics.VOICE_AUDIO.labels(AudioSide.USER.value).observe(inp.user_audio_s)
        if result.reply_audio_id:
            metrics.VOICE_AUDIO.labels(AudioSide.REPLY.value).observe(inp.reply_audio_s)

    @activity.defn(name="voice.keep_heard")
    @classify_database_errors
    async def keep_heard(self, inp: KeepHeardInput) -> None:
        """The interrupted turn's answer in the thread becomes the part of it the user heard."""
        await self._threads.replace_reply(inp.tenant_id, inp.thread_id, inp.run_id, inp.heard_text)

    @activity.defn(name="voice.record_session")
    @classify_database_errors
    async def record_session(self, inp: RecordSessionInput) -> None:
        """Write the session's end (a session already over keeps its first end)."""
        ended = await self._store.end(
            inp.tenant_id, inp.session_id, status=inp.status, reason=inp.reason, turns=inp.turns, error=inp.error
        )
        if ended:
            metrics.VOICE_SESSIONS_ENDED.labels(inp.reason).inc()
            log.info("voice session ended", voice_session_id=inp.session_id, reason=inp.reason, turns=inp.turns)

    @activity.defn(name="voice.purge_audio")
    @classify_database_errors
    async def purge_audio(self, inp: RetentionInput) -> RetentionResult:
        """Delete every recording past retention, ``batch`` at a time (heartbeating between batches)."""
        deleted = 0
        while True:
            removed = await self._audio.purge(retention_s=inp.retention_s, limit=inp.batch)
            deleted += removed
            activity.heartbeat(deleted)
            if removed < inp.batch:
                return RetentionResult(deleted=deleted)
