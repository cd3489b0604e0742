"""Contracts of ``VoiceSessionWorkflow``, ``VoiceRetentionWorkflow`` and their activities.

Audio never enters workflow history: the API stores an utterance in ``voice_audio`` and the
workflow passes its id; the reply's audio is written by the ``voice.synthesize`` activity and
referenced the same way. Texts (a transcript, a reply) are small and travel as values.
New fields always get defaults so that recorded histories keep decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

VOICE_SESSION_WORKFLOW = "VoiceSessionWorkflow"
VOICE_RETENTION_WORKFLOW = "VoiceRetentionWorkflow"

VOICE_TURN_FAILED = "VoiceTurnFailed"
"""A stage of a turn failed for good (after its retries): the turn is recorded ``failed``."""
AUDIO_NOT_FOUND = "VoiceAudioNotFound"
"""The utterance's audio is gone (erased, or past retention) before it was transcribed."""
SESSION_CLOSED = "VoiceSessionClosed"
"""An update reached a session that ended or is ending: the API answers 409."""


class SessionStatus(StrEnum):
    """Status of a voice session; the value is what ``voice_session.status`` stores and the API shows."""

    ACTIVE = "active"
    ENDED = "ended"
    FAILED = "failed"

    FINAL: ClassVar[frozenset[SessionStatus]]


SessionStatus.FINAL = frozenset({SessionStatus.ENDED, SessionStatus.FAILED})


class EndReason(StrEnum):
    """Why a session ended."""

    ENDED = "ended"
    """``POST /v1/voice/sessions/{id}/end`` (the ``end`` signal)."""
    IDLE = "idle"
    """No utterance for the session's idle timeout."""
    CANCELLED = "cancelled"
    """The workflow was cancelled in Temporal."""
    FAILED = "failed"
    START_FAILED = "start_failed"
    """Temporal did not take the session's workflow at its start."""


class TurnStatus(StrEnum):
    """Outcome of one turn."""

    COMPLETED = "completed"
    SILENT = "silent"
    """No speech in the utterance: an empty transcript and no agent call."""
    INTERRUPTED = "interrupted"
    FAILED = "failed"


class AudioSide(StrEnum):
    """Whose audio a recording holds."""

    USER = "user"
    REPLY = "reply"


@dataclass
class StageLatency:
    """Milliseconds spent per stage of a turn (0 for a stage that did not run)."""

    vad: float = 0.0
    stt: float = 0.0
    agent: float = 0.0
    tts: float = 0.0
    total: float = 0.0
    endpoint: float = 0.0
    """Streamed turns: from the end of speech to the moment the endpointer called it (the silence it waited)."""
    agent_first_token: float = 0.0
    """Streamed turns: from the transcript to the agent's first words."""
    tts_first_audio: float = 0.0
    """Streamed turns: speaking the reply's first sentence."""
    first_audio: float = 0.0
    """Streamed turns: from the end of speech to the first reply audio sent (what the user waits)."""


@dataclass
class TranscriptLine:
    """One turn as the ``transcript`` query reports it."""

    seq: int
    turn_id: str
    transcript: str
    reply_text: str
    status: str


@dataclass
class VoiceCarry:
    """State handed to the next run of the session's workflow after continue-as-new."""

    turns: int = 0
    """Turns taken so far (the next turn's ``seq`` is this plus one)."""
    recent: list[TranscriptLine] = field(default_factory=list)
    """The last turns, for the ``transcript`` query (the full record is in ``voice_turn``)."""


@dataclass(kw_only=True)
class VoiceSessionInput:
    """Start argument of ``VoiceSessionWorkflow``: the session and its pinned agent version."""

    tenant_id: str
    session_id: str
    agent_id: str
    agent_version: int
    thread_id: str
    subject: str | None = None
    idle_timeout_s: float = 300.0
    max_turns_per_execution: int = 50
    heartbeat_timeout_s: float = 15.0
    agent_max_steps: int = 12
    agents_task_queue: str = "agents"
    experiment_id: str | None = None
    experiment_arm: str | None = None
    playback_wait_s: float = 300.0
    """How long a streamed turn waits for its reply to be played before it is recorded anyway."""
    carry: VoiceCarry | None = None


@dataclass(kw_only=True)
class Utterance:
    """Argument of the ``submit_utterance`` update: a stored recording of what the user said."""

    turn_id: str
    audio_id: str
    """``voice_audio`` id of the utterance (16 kHz mono PCM16 WAV)."""
    received_ms: float = 0.0
    """Milliseconds the caller spent receiving and storing the audio before the update (counted in ``total``)."""
    transcript: str | None = None
    """What the user said when the caller already transcribed it (a stream): the turn skips ``transcribe``."""
    stt_ms: float = 0.0
    """The caller's speech-to-text time for ``transcript``."""
    audio_s: float = 0.0
    """Length of the stored utterance, when the caller transcribed it."""
    run_id: str | None = None
    """The id of the agent run answering the turn, when the caller picks it (a stream follows its events)."""
    streamed: bool = False
    """The caller speaks the reply (sentence by sentence as it is written): the turn does not synthesize it
    and waits, up to ``playback_wait_s``, for the ``played`` signal (or ``interrupt``) before it is recorded."""


@dataclass(kw_only=True)
class Interrupt:
    """Argument of the ``interrupt`` signal: stop the turn in flight (barge-in).

    ``heard_text`` is the part of the reply the user heard before the interruption, when the
    caller played it (a streaming client); the turn records it as its reply.
    """

    heard_text: str | None = None
    turn_id: str | None = None
    """The turn to stop (a streaming caller names it; a stale interrupt of an earlier turn does nothing)."""
    reply_audio_id: str | None = None
    """The reply audio the caller played before the interruption, stored by the caller."""
    reply_audio_s: float = 0.0


@dataclass(kw_only=True)
class Played:
    """Argument of the ``played`` signal: a streamed turn's reply was spoken to the end."""

    turn_id: str
    reply_audio_id: str | None = None
    """The reply audio as played, stored by the caller (``None`` when none was played: the client left)."""
    reply_audio_s: float = 0.0
    latency: StageLatency = field(default_factory=StageLatency)
    """The caller's stages: ``endpoint``, ``agent_first_token``, ``tts``, ``tts_first_audio``, ``first_audio``."""


@dataclass(kw_only=True)
class KeepHeardInput:
    """An interrupted turn's reply in the thread becomes what the user heard of it."""

    tenant_id: str
    thread_id: str
    run_id: str
    heard_text: str


@dataclass(kw_only=True)
class EndSession:
    """Argument of the ``end`` signal."""

    reason: str = EndReason.ENDED.value


@dataclass(kw_only=True)
class TranscriptQuery:
    """Argument of the ``transcript`` query."""

    last: int = 20


@dataclass
class TranscriptView:
    """Answer of the ``transcript`` query."""

    session_id: str
    status: str
    turns: int
    lines: list[TranscriptLine] = field(default_factory=list)
    turn_in_flight: bool = False


@dataclass(kw_only=True)
class TurnResult:
    """Answer of the ``submit_utterance`` update: the turn as it is recorded."""

    turn_id: str
    seq: int
    status: str
    transcript: str = ""
    reply_text: str = ""
    reply_audio_id: str | None = None
    run_id: str | None = None
    latency: StageLatency = field(default_factory=StageLatency)
    error: dict[str, str] | None = None


@dataclass(kw_only=True)
class TranscribeInput:
    """The utterance to transcribe: voice activity detection, then speech to text on the speech found."""

    tenant_id: str
    session_id: str
    seq: int
    audio_id: str


@dataclass(kw_only=True)
class Transcribed:
    """What the user said, and what it took."""

    text: str
    speech: bool
    """Whether voice activity detection found speech (no speech: no speech-to-text call)."""
    audio_s: float = 0.0
    vad_ms: float = 0.0
    stt_ms: float = 0.0


@dataclass(kw_only=True)
class AgentTurnInput:
    """Creates (once per session and turn) the agent run that answers a transcript."""

    tenant_id: str
    session_id: str
    seq: int
    agent_id: str
    agent_version: int
    thread_id: str
    text: str
    subject: str | None = None
    experiment_id: str | None = None
    experiment_arm: str | None = None
    run_id: str | None = None
    """The run's id when the caller of the turn picked it (else derived from the session and ``seq``)."""


@dataclass(kw_only=True)
class AgentTurnRun:
    """The run to start as a child ``AgentRunWorkflow``, or why it cannot start."""

    run_id: str = ""
    workflow_id: str = ""
    error: dict[str, str] | None = None


@dataclass(kw_only=True)
class SynthesizeInput:
    """The reply to speak; its audio is stored once per session and turn."""

    tenant_id: str
    session_id: str
    seq: int
    text: str


@dataclass(kw_only=True)
class Synthesized:
    """The stored reply audio and what it took."""

    audio_id: str
    audio_s: float = 0.0
    tts_ms: float = 0.0


@dataclass(kw_only=True)
class RecordTurnInput:
    """A turn's row in ``voice_turn`` (written once per session and ``seq``; a retry rewrites it)."""

    tenant_id: str
    session_id: str
    result: TurnResult
    user_audio_id: str
    user_audio_s: float = 0.0
    reply_audio_s: float = 0.0


@dataclass(kw_only=True)
class RecordSessionInput:
    """The session's end: status, reason and turn count."""

    tenant_id: str
    session_id: str
    status: str
    reason: str
    turns: int
    error: dict[str, Any] | None = None


@dataclass
class VoiceSessionResult:
    """Result of a finished ``VoiceSessionWorkflow``."""

    session_id: str
    turns: int
    reason: str


@dataclass(kw_only=True)
class RetentionInput:
    """Start argument of ``VoiceRetentionWorkflow``: recordings older than ``retention_s`` are deleted."""

    retention_s: float
    batch: int = 500


@dataclass
class RetentionResult:
    """Recordings deleted by one pass."""

    deleted: int = 0
