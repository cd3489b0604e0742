"""Right to be forgotten: remove everything stored about one subject of a tenant.

Deleted: the subject's memories, the messages and compactions of every thread the
subject took part in, the steps, side-effect results and webhook payloads of the
subject's runs, their event streams and cached context in Redis, and the turns and recordings
of the subject's voice sessions (``core.voice.erasure``). Run rows stay for usage accounting,
with input, output, error and subject cleared; voice session rows stay without their subject.
Temporal histories are not rewritten: workflow ids and search attributes hold no personal
text, but activity results in a run's history (model answers, tool results such as
``memory_search`` hits) do, encrypted by the payload codec outside dev, until the
namespace retention removes them. Runs and voice sessions still in flight may write again after an erasure.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db.models import Memory, Run, RunStep, StepEffect, ThreadCompaction, ThreadMessage, WebhookDelivery
from core.events import stream_key
from core.ids import run_workflow_id
from core.threads import bump_version, cache_key
from core.voice.audio_store import PgAudioStore
from core.voice.erasure import erase_voice

_memory = Memory.__table__  # type: ignore[attr-defined]
_message = ThreadMessage.__table__  # type: ignore[attr-defined]
_compaction = ThreadCompaction.__table__  # type: ignore[attr-defined]
_run = Run.__table__  # type: ignore[attr-defined]
_step = RunStep.__table__  # type: ignore[attr-defined]
_effect = StepEffect.__table__  # type: ignore[attr-defined]
_delivery = WebhookDelivery.__table__  # type: ignore[attr-defined]


@dataclass
class ErasureCounts:
    """Rows (and Redis keys) removed or cleared by an erasure."""

    memories: int = 0
    thread_messages: int = 0
    compactions: int = 0
    runs_redacted: int = 0
    run_steps: int = 0
    tool_effects: int = 0
    webhook_deliveries: int = 0
    voice_sessions_redacted: int = 0
    voice_turns: int = 0
    voice_recordings: int = 0
    cache_keys: int = 0


async def erase_subject(engine: AsyncEngine, redis: Redis | None, tenant_id: str, subject: str) -> ErasureCounts:
    """Erase ``subject`` of ``tenant_id`` in one database transaction, then its Redis keys."""
    counts = ErasureCounts()
    async with engine.begin() as conn:
        runs = (
            await conn.execute(
                select(_run.c.id, _run.c.thread_id).where(_run.c.tenant_id == tenant_id, _run.c.subject == subject)
            )
        ).all()
        run_ids = [r.id for r in runs]
        voice = await erase_voice(conn, PgAudioStore(engine), tenant_id, subject)
        counts.voice_sessions_redacted, counts.voice_turns = voice.sessions, voice.turns
        counts.voice_recordings = voice.recordings
        threads = {r.thread_id for r in runs} | voice.threads
        threads |= set(
            (
                await conn.scalars(
                    select(_message.c.thread_id).where(_message.c.tenant_id == tenant_id, _message.c.subject == subject)
                )
            ).all()
        )
        counts.memories = (
            await conn.execute(delete(_memory).where(_memory.c.tenant_id == tenant_id, _memory.c.subject == subject))
        ).rowcount
        counts.thread_messages = (
            await conn.execute(
                delete(_message).where(
                    _message.c.tenant_id == tenant_id,
                    or_(_message.c.thread_id.in_(threads), _message.c.subject == subject),
                )
            )
        ).rowcount
        counts.compactions = (
            await conn.execute(
                delete(_compaction).where(
                    _compaction.c.tenant_id == tenant_id,
                    or_(_compaction.c.thread_id.in_(threads), _compaction.c.subject == subject),
                )
            )
        ).rowcount
        if run_ids:
            counts.run_steps = (
                await conn.execute(delete(_step).where(_step.c.tenant_id == tenant_id, _step.c.run_id.in_(run_ids)))
            ).rowcount
            prefixes = [f"{run_workflow_id(tenant_id, r)}:" for r in run_ids]
            counts.tool_effects = (
                await conn.execute(
                    delete(_effect).where(
                        _effect.c.tenant_id == tenant_id, or_(*(_effect.c.key.startswith(p) for p in prefixes))
                    )
                )
            ).rowcount
            counts.webhook_deliveries = (
                await conn.execute(
                    delete(_delivery).where(
                        _delivery.c.tenant_id == tenant_id,
                        or_(*(_delivery.c.event_id.startswith(f"{r}:") for r in run_ids)),
                    )
                )
            ).rowcount
            counts.runs_redacted = (
                await conn.execute(
                    update(_run)
                    .where(_run.c.tenant_id == tenant_id, _run.c.id.in_(run_ids))
                    .values(input="", output=None, error=None, subject=None, metadata={"erased": True})
                )
            ).rowcount
    if redis is not None:
        for thread_id in threads:  # a newer version also voids a read that was in flight during the erasure
            await bump_version(redis, tenant_id, thread_id)
        keys = [cache_key(tenant_id, t) for t in threads] + [stream_key(tenant_id, r) for r in run_ids]
        if keys:
            counts.cache_keys = int(await redis.delete(*keys))
    return counts
