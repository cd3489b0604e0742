"""A subject's voice data, erased with the rest of what is stored about it (``core.memory.erasure``).

The subject's sessions lose their turns (transcripts, replies, latencies) and recordings (both
sides); the session rows stay, redacted (no subject), so counts and limits still add up. Their
threads are returned to the caller, which deletes their messages with the subject's other threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db.models import VoiceSession, VoiceTurn, utcnow
from core.voice.audio_store import AudioStore

_session = VoiceSession.__table__  # type: ignore[attr-defined]
_turn = VoiceTurn.__table__  # type: ignore[attr-defined]


@dataclass
class VoiceErasure:
    """What erasing a subject's voice data removed, and the threads its sessions talked on."""

    sessions: int = 0
    turns: int = 0
    recordings: int = 0
    threads: set[str] = field(default_factory=set)


async def erase_voice(conn: AsyncConnection, audio: AudioStore, tenant_id: str, subject: str) -> VoiceErasure:
    """Erase the voice turns and recordings of ``subject``'s sessions in ``conn``'s transaction."""
    rows = (
        await conn.execute(
            select(_session.c.id, _session.c.thread_id).where(
                _session.c.tenant_id == tenant_id, _session.c.subject == subject
            )
        )
    ).all()
    erased = VoiceErasure(threads={r.thread_id for r in rows})
    ids = [r.id for r in rows]
    if not ids:
        return erased
    erased.turns = (
        await conn.execute(delete(_turn).where(_turn.c.tenant_id == tenant_id, _turn.c.session_id.in_(ids)))
    ).rowcount
    erased.recordings = await audio.erase_sessions(tenant_id, ids, conn=conn)
    erased.sessions = (
        await conn.execute(
            update(_session)
            .where(_session.c.tenant_id == tenant_id, _session.c.id.in_(ids))
            .values(subject=None, updated_at=utcnow())
        )
    ).rowcount
    return erased
