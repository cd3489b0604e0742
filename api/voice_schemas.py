"""Bodies of voice sessions (``/v1/voice/sessions``) and their turns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.memory_schemas import SUBJECT_PATTERN
from api.schemas import TemporalLink
from core.contracts.voice import SessionStatus, TurnStatus
from core.validation import CleanModel

WAV_MEDIA_TYPES = ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave")
"""Content types ``POST …/turns`` takes (all name a WAV file)."""


class VoiceSessionCreate(CleanModel):
    """``POST /v1/voice/sessions``: talk to the agent's current version (pinned for the whole session).

    ``subject`` names the end user (long-term memory is scoped to it, as for runs); ``thread_id``
    continues a conversation thread (default: a new one); ``idle_timeout_s`` ends the session when no
    turn arrives for that long (default ``AIMPACT_VOICE_IDLE_TIMEOUT_S``, at most
    ``AIMPACT_VOICE_MAX_IDLE_TIMEOUT_S``).
    """

    agent_id: str = Field(min_length=1, max_length=40)
    subject: str | None = Field(default=None, min_length=1, max_length=200, pattern=SUBJECT_PATTERN)
    thread_id: str | None = Field(default=None, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_\-]+$")
    idle_timeout_s: float | None = Field(default=None, ge=1, le=7 * 86_400)


class LatencyPublic(BaseModel):
    """Milliseconds per stage of a turn (0 for a stage that did not run) and in all."""

    vad: float = Field(description="Voice activity detection: where the speech is.")
    stt: float = Field(description="Speech to text.")
    agent: float = Field(description="The agent's run, from its start to its answer.")
    tts: float = Field(description="Text to speech.")
    total: float = Field(description="From the audio's arrival to the turn's recorded answer.")
    endpoint: float = Field(
        default=0.0, description="Streams: from the end of speech until the endpointer called it (the silence waited)."
    )
    agent_first_token: float = Field(
        default=0.0, description="Streams: from the transcript to the agent's first words."
    )
    tts_first_audio: float = Field(default=0.0, description="Streams: speaking the reply's first sentence.")
    first_audio: float = Field(
        default=0.0, description="Streams: from the end of speech to the first reply audio sent (what the user waits)."
    )


class VoiceTurnPublic(BaseModel):
    """One turn: what the user said, the agent's reply, both recordings and the latency per stage."""

    turn_id: str
    seq: int
    status: TurnStatus = Field(
        description="`completed`; `silent` (no speech: no agent call); `interrupted`; `failed` (`error` says why)."
    )
    transcript: str
    reply_text: str
    reply_audio_url: str | None = Field(description="GET it for the spoken reply (`audio/wav`); null without one.")
    user_audio_url: str | None = Field(description="GET it for what the user said (`audio/wav`).")
    run_id: str | None = Field(description="The agent run that answered (see `/v1/runs/{id}`); null when silent.")
    latency_ms: LatencyPublic
    interrupted: bool
    error: dict[str, Any] | None
    created_at: datetime | None


class VoiceSessionPublic(BaseModel):
    """A voice session; read by id, with its turns."""

    id: str
    status: SessionStatus
    agent_id: str
    agent_version: int = Field(description="The agent version every turn of the session runs.")
    thread_id: str
    subject: str | None
    idle_timeout_s: float
    turn_count: int
    end_reason: str | None = Field(description="`ended`, `idle`, `cancelled`, `failed` or `start_failed` once over.")
    turns: list[VoiceTurnPublic] | None = Field(description="The last 200 turns, in order; null in lists.")
    error: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    temporal: TemporalLink
