"""A live conversation over ``WS /v1/voice/sessions/{id}/stream``: the speech front end of a voice session.

Audio never crosses Temporal: the API process that holds the socket finds the utterances
(server-side endpointing), transcribes them (partial transcripts while the user speaks: the
utterance so far is decoded in the background, and the last decode that covers the whole
utterance is its final transcript, so little is left to decode when speech ends) and speaks
the reply sentence by sentence as the agent writes it (the agent run's ``token.delta``
events). The turn itself stays durable in ``VoiceSessionWorkflow``: each utterance is one
``submit_utterance`` update carrying its transcript and the run id to follow; the turn runs
the agent and waits for the ``played`` signal (or ``interrupt``) before it is recorded.

Reply audio is sent in frames of ``voice_stream_audio_frame_ms``, paced in real time with a
lead of ``voice_stream_audio_lead_ms``. **Barge-in**: speech from the user while a turn is in
flight stops the audio at the next frame, and the turn is interrupted with the part of the
reply that was sent (``core.voice.replies.heard_text``), which is what its thread keeps. A
client that leaves mid-turn interrupts it the same way.

Every JSON event is appended to the session's event stream (Redis) before it is sent, with
its stream id as ``id``: a client that reconnects with ``?last_event_id=`` receives what it
missed first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog
from fastapi import WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from api.state import AppState
from core.contracts.voice import SESSION_CLOSED, AudioSide, EndSession, Interrupt, Played, StageLatency, Utterance
from core.db.models import VoiceSession
from core.events import FINAL_EVENTS, RunEvent
from core.ids import new_id
from core.speech.base import SAMPLE_RATE, SAMPLE_WIDTH, Audio
from core.speech.endpoint import SpeechEnded, SpeechStarted
from core.voice.audio_store import PgAudioStore, Recording
from core.voice.replies import SentenceSplitter, Spoken, heard_text
from core.voice.speech import SpeechEngines
from workflows.voice import VoiceSessionWorkflow

log = structlog.get_logger(__name__)
BYTES_PER_S = SAMPLE_RATE * SAMPLE_WIDTH
_END_OF_REPLY = None


class StreamClosedError(Exception):
    """The stream cannot go on (refused, or its session ended): close the socket with ``code``."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code


@dataclass
class _Turn:
    """One streamed turn: what was said, what of the reply was spoken and sent, and its latency."""

    turn_id: str
    run_id: str
    speech_ended_at: float
    """``time.perf_counter()`` when the user stopped speaking."""
    latency: StageLatency
    sentences: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    spoken: list[Spoken] = field(default_factory=list)
    sent: bytearray = field(default_factory=bytearray)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by barge-in: no more audio, no more sentences."""
    interrupted: bool = False
    finished: bool = False
    """The reply was spoken to the end (``played`` sent)."""

    def ms_since_speech(self) -> float:
        return (time.perf_counter() - self.speech_ended_at) * 1000


class Conversation:
    """One client's stream on one session: see the module docstring."""

    def __init__(self, ws: WebSocket, state: AppState, session: VoiceSession, engines: SpeechEngines):
        settings = state.settings
        self._ws = ws
        self._state = state
        self._session = session
        self._engines = engines
        self._segmenter = engines.segmenter(
            end_silence_ms=settings.voice_stream_speech_end_ms, max_utterance_ms=settings.voice_max_utterance_s * 1000
        )
        self._handle: WorkflowHandle[Any, Any] = state.temporal.get_workflow_handle(session.workflow_id)
        self._audio_store = PgAudioStore(state.engine)
        self._received = 0
        """Bytes of audio received: the stream's position."""
        self._partial: asyncio.Task[str] | None = None
        self._partial_bytes = 0
        """Bytes of the utterance the newest partial decode covers."""
        self._utterances = 0
        self._turn: _Turn | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._frame_bytes = int(BYTES_PER_S * settings.voice_stream_audio_frame_ms / 1000) // 2 * 2
        self.connected = True

    # -- events --------------------------------------------------------------------------------

    async def emit(self, type_: str, **data: Any) -> None:
        """Append the event to the session's stream, then send it (when the client is still there)."""
        event_id = await self._state.events.publish(self._session.tenant_id, self._session.id, type_, data)
        await self._send_json({"id": event_id, "type": type_, **data})

    async def replay(self, after: str) -> None:
        """Send the events after ``after`` (a client resuming with the last event id it saw)."""
        while True:
            events = await self._state.events.range(self._session.tenant_id, self._session.id, after=after)
            for event in events:
                await self._send_json({"id": event.id, "type": event.type, **event.data})
            if not events:
                return
            after = events[-1].id

    async def _send_json(self, message: dict[str, Any]) -> None:
        await self._send(json.dumps(message, default=str))

    async def _send(self, frame: str | bytes) -> bool:
        """Send a text or binary frame; whether the client is still there to take it."""
        if not (self.connected and self._ws.client_state == WebSocketState.CONNECTED):
            return False
        try:
            if isinstance(frame, bytes):
                await self._ws.send_bytes(frame)
            else:
                await self._ws.send_text(frame)
        except (RuntimeError, OSError, WebSocketDisconnect):  # the client went away between check and send
            self.connected = False
            return False
        return True

    # -- the client's messages -----------------------------------------------------------------

    async def run(self) -> None:
        """Take the client's frames until it leaves or ends the session; then finish the turn in flight."""
        await self.emit("ready", session_id=self._session.id, sample_rate=SAMPLE_RATE)
        try:
            while True:
                message = await self._ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("bytes") is not None:
                    await self._audio(message["bytes"])
                elif message.get("text") is not None and not await self._control(message["text"]):
                    break
        finally:
            self.connected = False
            await self._barge_in("disconnected")
            await self._drain()

    async def _drain(self) -> None:
        """Wait (bounded) for the turns in flight: their signals reach the workflow, their events the stream."""
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=self._state.settings.voice_turn_wait_s)
        if self._partial is not None:
            self._partial.cancel()

    async def _control(self, text: str) -> bool:
        """A JSON control message; whether the stream goes on."""
        try:
            message = json.loads(text)
            kind = message["type"] if isinstance(message, dict) else None
        except (ValueError, KeyError):
            kind = None
        if kind == "end":
            await self._handle.signal(VoiceSessionWorkflow.end, EndSession())
            await self.emit("ended", reason="ended")
            return False
        if kind == "interrupt":
            await self._barge_in("client")
        elif kind == "ping":
            await self._send_json({"type": "pong"})
        else:
            await self.emit(
                "error",
                code="invalid_message",
                message='text frames are JSON control messages: {"type": "end" | "interrupt" | "ping"}',
            )
        return True

    async def _audio(self, data: bytes) -> None:
        if len(data) % SAMPLE_WIDTH:
            await self.emit("error", code="odd_frame", message="audio frames are PCM16: an even number of bytes")
            return
        if len(data) > self._state.settings.voice_stream_max_frame_bytes:
            limit = self._state.settings.voice_stream_max_frame_bytes
            await self.emit("error", code="frame_too_large", message=f"audio frames are at most {limit} bytes")
            return
        self._received += len(data)
        for event in self._segmenter.push(data):
            if isinstance(event, SpeechStarted):
                await self.emit("speech_started", at_ms=round(event.at_ms, 1))
                await self._barge_in("speech")
            else:
                self._utterance_ended(event)
        self._maybe_partial()

    # -- transcripts ---------------------------------------------------------------------------

    def _maybe_partial(self) -> None:
        """Decode the utterance so far in the background, every ``voice_stream_partial_ms`` of new audio."""
        if not self._segmenter.in_speech or (self._partial is not None and not self._partial.done()):
            return
        so_far = self._segmenter.utterance_so_far()
        every = BYTES_PER_S * self._state.settings.voice_stream_partial_ms / 1000
        if len(so_far.pcm) - self._partial_bytes < every:
            return
        self._partial_bytes = len(so_far.pcm)
        self._partial = asyncio.create_task(self._decode_partial(so_far, self._utterances))

    async def _decode_partial(self, audio: Audio, utterance: int) -> str:
        text, _ = await self._engines.transcribe_speech(audio, time.perf_counter)
        if utterance == self._utterances and text:  # still the same utterance: show it
            await self.emit("transcript", text=text, final=False)
        return text

    async def _final_text(self, audio: Audio, partial: asyncio.Task[str] | None, covered: int) -> str:
        """The utterance's words: the partial decode that covers all of it, else a decode of it now."""
        if partial is not None and covered >= len(audio.pcm):
            try:
                return await partial
            except Exception:
                log.warning("partial transcription failed", voice_session_id=self._session.id)
        text, _ = await self._engines.transcribe_speech(audio, time.perf_counter)
        return text

    # -- turns ---------------------------------------------------------------------------------

    def _utterance_ended(self, ended: SpeechEnded) -> None:
        waited_ms = self._received / BYTES_PER_S * 1000 - ended.end_ms
        turn = _Turn(
            turn_id=new_id("vt"),
            run_id=new_id("run"),
            speech_ended_at=time.perf_counter() - waited_ms / 1000,
            latency=StageLatency(endpoint=waited_ms),
        )
        partial, covered = self._partial, self._partial_bytes
        self._utterances += 1
        self._partial, self._partial_bytes = None, 0
        previous = [t for t in self._tasks if not t.done()]
        self._tasks = [*previous, asyncio.create_task(self._take_turn(turn, ended.audio, partial, covered, previous))]

    async def _take_turn(
        self,
        turn: _Turn,
        audio: Audio,
        partial: asyncio.Task[str] | None,
        covered: int,
        previous: list[asyncio.Task[None]],
    ) -> None:
        if previous:
            await asyncio.wait(previous)
        text = await self._final_text(audio, partial, covered)
        turn.latency.stt = turn.ms_since_speech() - turn.latency.endpoint
        await self.emit("transcript", turn_id=turn.turn_id, text=text, final=True)
        if not text.strip():
            return  # noise the detector took for speech: no turn
        self._turn = turn
        try:
            await self._converse(turn, audio, text)
        except StreamClosedError as exc:
            await self.emit("ended", reason=str(exc))
            if self.connected:
                self.connected = False
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                    await self._ws.close(code=exc.code, reason=str(exc)[:120])
        except Exception as exc:
            log.warning("streamed turn failed", voice_session_id=self._session.id, error=repr(exc))
            await self.emit("error", code="turn_failed", turn_id=turn.turn_id, message=f"the turn failed: {exc}")
        finally:
            if self._turn is turn:
                self._turn = None

    async def _converse(self, turn: _Turn, audio: Audio, text: str) -> None:
        """Submit the turn, speak the agent's reply as it is written, tell the workflow how it went."""
        audio_id = await self._store(audio, AudioSide.USER)
        utterance = Utterance(
            turn_id=turn.turn_id,
            audio_id=audio_id,
            transcript=text,
            stt_ms=turn.latency.stt,
            audio_s=audio.duration_s,
            run_id=turn.run_id,
            streamed=True,
        )
        try:
            update = await self._handle.start_update(
                VoiceSessionWorkflow.submit_utterance,
                utterance,
                id=turn.turn_id,
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type == SESSION_CLOSED:
                raise StreamClosedError(4410, "the voice session has ended") from None
            raise
        written_at = time.perf_counter()
        result = asyncio.ensure_future(update.result())
        speaker = asyncio.create_task(self._speak(turn))
        await self._follow(turn, result, written_at)
        await turn.sentences.put(_END_OF_REPLY)
        await speaker
        if not turn.interrupted:
            turn.finished = True
            await self.emit("reply_done", turn_id=turn.turn_id)
            audio_id_out = await self._store_reply(turn)
            await self._handle.signal(
                VoiceSessionWorkflow.played,
                Played(
                    turn_id=turn.turn_id,
                    reply_audio_id=audio_id_out,
                    reply_audio_s=len(turn.sent) / BYTES_PER_S,
                    latency=turn.latency,
                ),
            )
        recorded = await asyncio.wait_for(result, timeout=self._state.settings.voice_turn_wait_s)
        await self.emit(
            "metrics",
            turn_id=turn.turn_id,
            status=recorded.status,
            latency_ms={k: round(v, 1) for k, v in asdict(recorded.latency).items()},
        )

    async def _follow(self, turn: _Turn, result: asyncio.Future[Any], written_at: float) -> None:
        """Cut the agent's words into sentences for the speaker until its run ends (or the turn is interrupted)."""
        splitter, said = SentenceSplitter(), False
        with self._state.event_hub.subscribe(self._session.tenant_id, turn.run_id) as events:
            while not turn.stop.is_set():
                batch = await events.next(timeout_s=0.25)
                for event in batch:
                    if event.type == "token.delta":
                        if not said:
                            said = True
                            turn.latency.agent_first_token = (time.perf_counter() - written_at) * 1000
                        await self._queue(turn, splitter.push(str(event.data.get("text", ""))))
                    elif event.type in FINAL_EVENTS:
                        await self._queue(turn, splitter.flush() or _output(event, said))
                        return
                if not batch and result.done():  # the turn ended without a run to follow (it failed to start)
                    return

    async def _queue(self, turn: _Turn, sentences: list[str]) -> None:
        for sentence in sentences:
            await turn.sentences.put(sentence)

    async def _speak(self, turn: _Turn) -> None:
        """Synthesize each sentence and send it paced in real time; stop at barge-in."""
        index = 0
        clock = _Playback(self._state.settings.voice_stream_audio_lead_ms / 1000)
        while (sentence := await turn.sentences.get()) is not _END_OF_REPLY:
            if turn.stop.is_set() or not self.connected:
                continue
            spoken, tts_ms = await self._engines.synthesize(sentence, time.perf_counter)
            turn.latency.tts += tts_ms
            if index == 0:
                turn.latency.tts_first_audio = tts_ms
            if turn.stop.is_set():
                continue
            turn.spoken.append(Spoken(sentence, len(spoken.pcm)))
            await self.emit("reply", turn_id=turn.turn_id, text=sentence, index=index)
            index += 1
            for offset in range(0, len(spoken.pcm), self._frame_bytes):
                if turn.stop.is_set():
                    break
                chunk = spoken.pcm[offset : offset + self._frame_bytes]
                if not turn.latency.first_audio:
                    turn.latency.first_audio = turn.ms_since_speech()
                if not await self._send(chunk):
                    break
                turn.sent += chunk
                await clock.pace(len(chunk) / BYTES_PER_S, turn.stop)

    async def _barge_in(self, reason: str) -> None:
        """Stop the turn in flight: no more audio; it is recorded with the part of its reply that was sent."""
        turn = self._turn
        if turn is None or turn.interrupted or turn.finished:
            return
        turn.interrupted = True
        turn.stop.set()
        heard = heard_text(turn.spoken, len(turn.sent))
        await self.emit("interrupted", turn_id=turn.turn_id, heard_text=heard, reason=reason)
        reply_audio_id = await self._store_reply(turn)
        request = Interrupt(
            heard_text=heard,
            turn_id=turn.turn_id,
            reply_audio_id=reply_audio_id,
            reply_audio_s=len(turn.sent) / BYTES_PER_S,
        )
        await _quietly(self._handle.signal(VoiceSessionWorkflow.interrupt, request), self._session.id)

    async def _store_reply(self, turn: _Turn) -> str | None:
        """Store the reply audio as it was sent; its id (``None`` when none was sent)."""
        return await self._store(Audio(bytes(turn.sent)), AudioSide.REPLY) if turn.sent else None

    async def _store(self, audio: Audio, side: AudioSide) -> str:
        """Store one side's audio of a turn; its recording id."""
        audio_id = new_id("aud")
        session = self._session
        recording = Recording.of(audio, id=audio_id, tenant_id=session.tenant_id, session_id=session.id, side=side)
        await self._audio_store.put(recording)
        return audio_id


class _Playback:
    """Paces sent audio in real time, ``lead_s`` ahead of what the client has played."""

    def __init__(self, lead_s: float):
        self._lead_s = lead_s
        self._ends_at = 0.0

    async def pace(self, seconds: float, stop: asyncio.Event) -> None:
        """Count ``seconds`` more audio sent; wait (or until ``stop``) while the client is over its lead."""
        now = time.perf_counter()
        self._ends_at = max(self._ends_at, now) + seconds
        ahead = self._ends_at - now - self._lead_s
        if ahead > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=ahead)


def _output(event: RunEvent, said: bool) -> list[str]:
    """A completed run's answer, when none of it arrived as deltas (else nothing more to say)."""
    if said or event.type != "run.completed":
        return []
    output = event.data.get("output")
    return [output.strip()] if isinstance(output, str) and output.strip() else []


async def _quietly(call: Awaitable[Any], session_id: str) -> None:
    """Send a signal; a session already gone is not an error of the stream."""
    try:
        await call
    except (RPCError, RuntimeError) as exc:
        log.info("voice signal not delivered", voice_session_id=session_id, error=repr(exc))
