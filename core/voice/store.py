"""Voice sessions and their turns in PostgreSQL, tenant-scoped.

The API inserts a session ``active`` (at most ``live_limit`` active sessions per tenant: the
count and the insert run under a per-tenant advisory lock, so two starts never both take the
last slot); the voice worker writes each turn once per ``(session, seq)`` (a retried write
updates the same row) and the session's end. A session once ended keeps its first end.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.contracts.voice import RecordTurnInput, SessionStatus
from core.db.engine import statement
from core.db.models import VoiceSession, VoiceTurn, utcnow
from core.db.repos import Keyset

_session = VoiceSession.__table__  # type: ignore[attr-defined]
_turn = VoiceTurn.__table__  # type: ignore[attr-defined]
_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended('voice-sessions:' || :tenant_id, 0))")
_ACTIVE = SessionStatus.ACTIVE.value


class LiveSessionLimitError(Exception):
    """The tenant already has ``limit`` active voice sessions."""

    def __init__(self, limit: int):
        super().__init__(
            f"the workspace already has {limit} live voice session{'s' if limit != 1 else ''}"
            " (AIMPACT_VOICE_SESSIONS_PER_TENANT); end one first"
        )
        self.limit = limit


def _session_of(row: Any) -> VoiceSession:
    return VoiceSession(**row._asdict())


class VoiceStore:
    """Sessions and turns of every tenant; each method takes the tenant it reads or writes."""

    def __init__(self, engine: AsyncEngine):
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        """The database engine the store writes with."""
        return self._engine

    async def start(self, session: VoiceSession, *, live_limit: int) -> VoiceSession:
        """Insert ``session`` (``active``) unless its tenant already has ``live_limit`` active ones.

        Raises:
            LiveSessionLimitError: The tenant is at its limit.
        """
        values = {c.name: getattr(session, c.name) for c in _session.columns}
        async with self._engine.begin() as conn:
            await conn.execute(_LOCK, {"tenant_id": session.tenant_id})
            live = (
                await conn.execute(
                    select(func.count())
                    .select_from(_session)
                    .where(_session.c.tenant_id == session.tenant_id, _session.c.status == _ACTIVE)
                )
            ).scalar_one()
            if live >= live_limit:
                raise LiveSessionLimitError(live_limit)
            row = (await conn.execute(insert(_session).values(values).returning(*_session.columns))).one()
        return _session_of(row)

    async def get(self, tenant_id: str, session_id: str) -> VoiceSession | None:
        """The tenant's session ``session_id``."""
        query = select(_session).where(_session.c.tenant_id == tenant_id, _session.c.id == session_id)
        async with statement(self._engine) as conn:
            row = (await conn.execute(query)).first()
        return _session_of(row) if row is not None else None

    async def page(
        self,
        tenant_id: str,
        *,
        limit: int,
        after: Keyset | None = None,
        status: str | None = None,
        agent_id: str | None = None,
    ) -> list[VoiceSession]:
        """The tenant's sessions, newest first, after the keyset ``after``."""
        query = select(_session).where(_session.c.tenant_id == tenant_id)
        if status is not None:
            query = query.where(_session.c.status == status)
        if agent_id is not None:
            query = query.where(_session.c.agent_id == agent_id)
        if after is not None:
            moment, last = after
            query = query.where(
                (_session.c.created_at < moment) | ((_session.c.created_at == moment) & (_session.c.id < last))
            )
        query = query.order_by(_session.c.created_at.desc(), _session.c.id.desc()).limit(limit)
        async with statement(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [_session_of(r) for r in rows]

    async def turns(self, tenant_id: str, session_id: str, *, last: int) -> list[VoiceTurn]:
        """The session's last ``last`` turns, in order."""
        query = (
            select(_turn)
            .where(_turn.c.tenant_id == tenant_id, _turn.c.session_id == session_id)
            .order_by(_turn.c.seq.desc())
            .limit(last)
        )
        async with statement(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [VoiceTurn(**r._asdict()) for r in reversed(rows)]

    async def turn(self, tenant_id: str, session_id: str, turn_id: str) -> VoiceTurn | None:
        """One turn of the tenant's session."""
        query = select(_turn).where(
            _turn.c.tenant_id == tenant_id, _turn.c.session_id == session_id, _turn.c.id == turn_id
        )
        async with statement(self._engine) as conn:
            row = (await conn.execute(query)).first()
        return VoiceTurn(**row._asdict()) if row is not None else None

    async def record_turn(self, record: RecordTurnInput) -> bool:
        """Write the turn's row and count it on its session; whether this write created the row."""
        result = record.result
        values: dict[str, Any] = {
            "id": result.turn_id,
            "tenant_id": record.tenant_id,
            "session_id": record.session_id,
            "seq": result.seq,
            "status": result.status,
            "transcript": result.transcript,
            "reply_text": result.reply_text,
            "run_id": result.run_id,
            "user_audio_id": record.user_audio_id,
            "reply_audio_id": result.reply_audio_id,
            "user_audio_s": record.user_audio_s,
            "reply_audio_s": record.reply_audio_s,
            "interrupted": result.status == "interrupted",
            "error": result.error,
            **{f"{stage}_ms": ms for stage, ms in asdict(result.latency).items()},
        }
        statement_ = insert(_turn).values(values)
        upsert = statement_.on_conflict_do_update(
            index_elements=["session_id", "seq"],
            set_={k: statement_.excluded[k] for k in values if k not in ("id", "tenant_id", "session_id", "seq")}
            | {"updated_at": utcnow()},
        ).returning(text("(xmax = 0) AS inserted"))
        async with self._engine.begin() as conn:
            inserted = bool((await conn.execute(upsert)).scalar_one())
            await conn.execute(
                update(_session)
                .where(_session.c.tenant_id == record.tenant_id, _session.c.id == record.session_id)
                .values(turns=func.greatest(_session.c.turns, result.seq), updated_at=utcnow())
            )
        return inserted

    async def end(
        self,
        tenant_id: str,
        session_id: str,
        *,
        status: str,
        reason: str,
        turns: int | None = None,
        error: dict[str, Any] | None = None,
        conn: AsyncConnection | None = None,
    ) -> bool:
        """Mark the session over (a session already over keeps its first end); whether this call ended it."""
        values: dict[str, Any] = {"status": status, "end_reason": reason, "error": error, "ended_at": utcnow()}
        if turns is not None:
            values["turns"] = func.greatest(_session.c.turns, turns)
        values["updated_at"] = values["ended_at"]
        ending = (
            update(_session)
            .where(_session.c.tenant_id == tenant_id, _session.c.id == session_id, _session.c.status == _ACTIVE)
            .values(values)
        )
        async with statement(self._engine, conn) as tx:
            return bool((await tx.execute(ending)).rowcount)
