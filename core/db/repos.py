"""Tenant-scoped repositories: every query is filtered by the caller's tenant."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.agents import AgentConfig
from core.db.models import Agent, AgentVersion, ApiKey, Run, RunStep, utcnow
from core.ids import new_id


class CursorError(ValueError):
    """A pagination cursor that this server did not issue."""


def encode_cursor(created_at: datetime, row_id: str) -> str:
    """Opaque cursor pointing after ``(created_at, row_id)``."""
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{row_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of :func:`encode_cursor`; ``CursorError`` if malformed."""
    try:
        created, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(created), row_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise CursorError("malformed cursor") from exc


class _TenantScoped:
    def __init__(self, session: AsyncSession, tenant_id: str):
        if not tenant_id:
            raise ValueError("a tenant-scoped repository needs a tenant id")
        self.session = session
        self.tenant_id = tenant_id


class AgentRepository(_TenantScoped):
    """Agents and their versions of one tenant."""

    async def create(self, config: AgentConfig) -> tuple[Agent, AgentVersion]:
        """Create an agent at version 1."""
        agent = Agent(id=new_id("agt"), tenant_id=self.tenant_id, name=config.name, version=1)
        version = AgentVersion(
            tenant_id=self.tenant_id, agent_id=agent.id, version=1, config=config.model_dump(mode="json")
        )
        self.session.add(agent)
        await self.session.flush()
        self.session.add(version)
        await self.session.commit()
        return agent, version

    async def get(self, agent_id: str) -> Agent | None:
        """The live agent ``agent_id`` of this tenant."""
        result = await self.session.exec(
            select(Agent).where(
                Agent.id == agent_id, Agent.tenant_id == self.tenant_id, col(Agent.deleted_at).is_(None)
            )
        )
        return result.first()

    async def get_version(self, agent_id: str, version: int) -> AgentVersion | None:
        """One version of an agent of this tenant."""
        result = await self.session.exec(
            select(AgentVersion).where(
                AgentVersion.agent_id == agent_id,
                AgentVersion.version == version,
                AgentVersion.tenant_id == self.tenant_id,
            )
        )
        return result.first()

    async def list(self, *, limit: int, cursor: str | None) -> tuple[Sequence[Agent], str | None]:
        """A page of live agents, newest first."""
        query = select(Agent).where(Agent.tenant_id == self.tenant_id, col(Agent.deleted_at).is_(None))
        query = _after(query, Agent, cursor)
        rows = (await self.session.exec(query.limit(limit + 1))).all()
        return _page(rows, limit)


class RunRepository(_TenantScoped):
    """Runs of one tenant."""

    async def create(self, run: Run) -> tuple[Run, bool]:
        """Insert ``run``; with an idempotency key already used, return that run and ``False``."""
        run.tenant_id = self.tenant_id
        self.session.add(run)
        try:
            await self.session.commit()
            return run, True
        except IntegrityError:
            await self.session.rollback()
            if run.idempotency_key is None:
                raise
            existing = await self.by_idempotency_key(run.idempotency_key)
            if existing is None:
                raise
            return existing, False

    async def by_idempotency_key(self, key: str) -> Run | None:
        """The run started with ``Idempotency-Key: key``."""
        result = await self.session.exec(select(Run).where(Run.tenant_id == self.tenant_id, Run.idempotency_key == key))
        return result.first()

    async def get(self, run_id: str) -> Run | None:
        """The run ``run_id`` of this tenant."""
        result = await self.session.exec(select(Run).where(Run.id == run_id, Run.tenant_id == self.tenant_id))
        return result.first()

    async def steps(self, run_id: str) -> Sequence[RunStep]:
        """The steps of a run in order."""
        result = await self.session.exec(
            select(RunStep)
            .where(RunStep.run_id == run_id, RunStep.tenant_id == self.tenant_id)
            .order_by(col(RunStep.seq))
        )
        return result.all()

    async def mark_failed(self, run_id: str, error: dict[str, Any]) -> None:
        """Record that a run could not be started."""
        await self.session.exec(
            update(Run)
            .where(col(Run.id) == run_id, col(Run.tenant_id) == self.tenant_id)
            .values(status="failed", error=error, updated_at=utcnow())
        )
        await self.session.commit()

    async def list(
        self, *, limit: int, cursor: str | None, agent_id: str | None = None, status: str | None = None
    ) -> tuple[Sequence[Run], str | None]:
        """A page of runs, newest first, optionally filtered."""
        query = select(Run).where(Run.tenant_id == self.tenant_id)
        if agent_id:
            query = query.where(Run.agent_id == agent_id)
        if status:
            query = query.where(Run.status == status)
        query = _after(query, Run, cursor)
        rows = (await self.session.exec(query.limit(limit + 1))).all()
        return _page(rows, limit)


async def find_api_key(session: AsyncSession, key_hash: str) -> ApiKey | None:
    """The unrevoked API key with this hash (the one lookup that precedes a tenant)."""
    result = await session.exec(select(ApiKey).where(ApiKey.key_hash == key_hash, col(ApiKey.revoked_at).is_(None)))
    return result.first()


def _after(query: Any, model: Any, cursor: str | None) -> Any:
    query = query.order_by(col(model.created_at).desc(), col(model.id).desc())
    if cursor is None:
        return query
    created_at, row_id = decode_cursor(cursor)
    return query.where(or_(model.created_at < created_at, and_(model.created_at == created_at, model.id < row_id)))


def _page(rows: Sequence[Any], limit: int) -> tuple[Sequence[Any], str | None]:
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(last.created_at, last.id)
