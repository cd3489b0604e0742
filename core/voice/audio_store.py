"""Recordings of voice turns, kept out of workflow history: an interface and its PostgreSQL store.

A recording is a 16 kHz mono PCM16 WAV file. The API stores what the user said before the
session's workflow hears of it; the ``voice.synthesize`` activity stores the reply under an id
derived from the session's workflow and the turn, so a retried activity writes nothing new.
Recordings older than the retention (``AIMPACT_VOICE_AUDIO_RETENTION_S``) are never served
(one found on read is deleted there) and are deleted by ``VoiceRetentionWorkflow``'s passes;
erasing a subject deletes the recordings of its sessions (``core.memory.erasure``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.contracts.voice import AudioSide
from core.db.engine import statement
from core.db.models import VoiceAudio, utcnow
from core.speech.audio import encode_wav
from core.speech.base import Audio

_audio = VoiceAudio.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, kw_only=True)
class Recording:
    """One stored recording."""

    id: str
    tenant_id: str
    session_id: str
    side: str
    wav: bytes
    duration_s: float
    created_at: datetime | None = None

    @classmethod
    def of(cls, audio: Audio, *, id: str, tenant_id: str, session_id: str, side: AudioSide) -> Recording:
        """``audio`` as the recording ``id`` of one side of a session's turn."""
        return cls(
            id=id,
            tenant_id=tenant_id,
            session_id=session_id,
            side=side.value,
            wav=encode_wav(audio),
            duration_s=audio.duration_s,
        )


def derived_audio_id(key: str) -> str:
    """A stable recording id for ``key`` (workflow id + turn + side): a retried write finds its own row."""
    return "aud_" + hashlib.sha256(key.encode()).hexdigest()[:24]


def expiry(retention_s: float) -> datetime | None:
    """Recordings created before this moment are past retention (``None``: retention 0 keeps them)."""
    return utcnow() - timedelta(seconds=retention_s) if retention_s > 0 else None


class AudioStore(Protocol):
    """Where recordings live; a deployment may put another store (object storage) behind this."""

    async def put(self, recording: Recording) -> None:
        """Store ``recording``; a second put of the same id keeps the first."""
        ...

    async def get(self, tenant_id: str, audio_id: str, *, retention_s: float) -> Recording | None:
        """The tenant's recording, unless absent or past retention (then it is deleted)."""
        ...

    async def purge(self, *, retention_s: float, limit: int) -> int:
        """Delete up to ``limit`` recordings past retention; how many were deleted."""
        ...

    async def erase_sessions(
        self, tenant_id: str, session_ids: list[str], *, conn: AsyncConnection | None = None
    ) -> int:
        """Delete every recording of the sessions (in ``conn``'s transaction when given); how many."""
        ...


class PgAudioStore:
    """Recordings in the ``voice_audio`` table."""

    def __init__(self, engine: AsyncEngine):
        self._engine = engine

    async def put(self, recording: Recording) -> None:
        """Insert the recording unless its id is stored already."""
        values = {
            "id": recording.id,
            "tenant_id": recording.tenant_id,
            "session_id": recording.session_id,
            "side": recording.side,
            "data": recording.wav,
            "size": len(recording.wav),
            "duration_s": recording.duration_s,
        }
        async with statement(self._engine) as conn:
            await conn.execute(insert(_audio).values(values).on_conflict_do_nothing(index_elements=["id"]))

    async def get(self, tenant_id: str, audio_id: str, *, retention_s: float) -> Recording | None:
        """The recording; one past retention is deleted here and reported absent."""
        query = select(_audio).where(_audio.c.tenant_id == tenant_id, _audio.c.id == audio_id)
        async with statement(self._engine) as conn:
            row = (await conn.execute(query)).first()
            if row is None:
                return None
            cutoff = expiry(retention_s)
            if cutoff is not None and row.created_at < cutoff:
                await conn.execute(delete(_audio).where(_audio.c.id == audio_id))
                return None
        return Recording(
            id=row.id,
            tenant_id=row.tenant_id,
            session_id=row.session_id,
            side=row.side,
            wav=bytes(row.data),
            duration_s=row.duration_s,
            created_at=row.created_at,
        )

    async def purge(self, *, retention_s: float, limit: int) -> int:
        """Delete the oldest ``limit`` recordings past retention."""
        cutoff = expiry(retention_s)
        if cutoff is None:
            return 0
        oldest = select(_audio.c.id).where(_audio.c.created_at < cutoff).order_by(_audio.c.created_at).limit(limit)
        async with statement(self._engine) as conn:
            return int((await conn.execute(delete(_audio).where(_audio.c.id.in_(oldest.scalar_subquery())))).rowcount)

    async def erase_sessions(
        self, tenant_id: str, session_ids: list[str], *, conn: AsyncConnection | None = None
    ) -> int:
        """Delete the sessions' recordings."""
        if not session_ids:
            return 0
        erase = delete(_audio).where(_audio.c.tenant_id == tenant_id, _audio.c.session_id.in_(session_ids))
        async with statement(self._engine, conn) as tx:
            return int((await tx.execute(erase)).rowcount)
