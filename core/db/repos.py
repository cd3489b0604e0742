"""Tenant-scoped repositories: every query is filtered by the caller's tenant."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.agents import AgentConfig
from core.db.models import Agent, AgentVersion, ApiKey, Run, RunFeedback, RunStep, utcnow
from core.ids import new_id

Keyset = tuple[datetime, str]
"""``(created_at, id)`` of the last row of a page: the next page starts after it."""


@dataclass(frozen=True)
class Author:
    """Who made a version or gave feedback: ``user`` (a person or API key), ``optimizer``, ``recommendation``."""

    kind: str
    id: str


SYSTEM = Author(kind="user", id="")
"""The author of versions the platform writes itself (first-boot seed)."""


def newest_first(query: Any, created_at: Any, row_id: Any, after: Keyset | None) -> Any:
    """``query`` sorted by ``(created_at, row_id)`` descending, starting after the keyset ``after``."""
    query = query.order_by(created_at.desc(), row_id.desc())
    if after is None:
        return query
    moment, last_id = after
    return query.where(or_(created_at < moment, and_(created_at == moment, row_id < last_id)))


class _TenantScoped:
    def __init__(self, session: AsyncSession, tenant_id: str):
        if not tenant_id:
            raise ValueError("a tenant-scoped repository needs a tenant id")
        self.session = session
        self.tenant_id = tenant_id


class AgentRepository(_TenantScoped):
    """Agents and their versions of one tenant."""

    async def create(self, config: AgentConfig, created_by: Author = SYSTEM) -> tuple[Agent, AgentVersion]:
        """Create an agent at version 1."""
        agent = Agent(id=new_id("agt"), tenant_id=self.tenant_id, name=config.name, version=1)
        version = AgentVersion(
            tenant_id=self.tenant_id,
            agent_id=agent.id,
            version=1,
            config=config.model_dump(mode="json"),
            created_by_kind=created_by.kind,
            created_by_id=created_by.id,
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

    async def get_any(self, agent_id: str, *, lock: bool = False) -> Agent | None:
        """The agent ``agent_id`` of this tenant, archived or not (``lock``: FOR UPDATE)."""
        query = select(Agent).where(Agent.id == agent_id, Agent.tenant_id == self.tenant_id)
        result = await self.session.exec(query.with_for_update() if lock else query)
        return result.first()

    async def add_version(
        self, agent: Agent, config: AgentConfig, created_by: Author, *, promote: bool
    ) -> AgentVersion:
        """A new immutable version after the latest (the agent row must be locked); current if ``promote``."""
        latest = await self.session.exec(
            select(func.max(AgentVersion.version)).where(
                AgentVersion.agent_id == agent.id, AgentVersion.tenant_id == self.tenant_id
            )
        )
        version = AgentVersion(
            tenant_id=self.tenant_id,
            agent_id=agent.id,
            version=(latest.one() or 0) + 1,
            config=config.model_dump(mode="json"),
            created_by_kind=created_by.kind,
            created_by_id=created_by.id,
        )
        self.session.add(version)
        if promote:
            self.promote(agent, version)
        return version

    def promote(self, agent: Agent, version: AgentVersion) -> None:
        """Make ``version`` the one new runs use (the agent takes its name); the caller commits."""
        agent.version, agent.name, agent.updated_at = version.version, version.config["name"], utcnow()
        self.session.add(agent)

    async def versions(self, agent_id: str, *, limit: int, before: int | None = None) -> Sequence[Any]:
        """Versions newest first, each with its feedback count and mean (``n``, ``mean``)."""
        scores = (
            select(
                RunFeedback.agent_version,
                func.count().label("n"),
                func.avg(RunFeedback.score).label("mean"),
            )
            .where(RunFeedback.tenant_id == self.tenant_id, RunFeedback.agent_id == agent_id)
            .group_by(col(RunFeedback.agent_version))
            .subquery()
        )
        query = (
            select(AgentVersion, scores.c.n, scores.c.mean)
            .outerjoin(scores, scores.c.agent_version == AgentVersion.version)
            .where(AgentVersion.agent_id == agent_id, AgentVersion.tenant_id == self.tenant_id)
            .order_by(col(AgentVersion.version).desc())
        )
        if before is not None:
            query = query.where(AgentVersion.version < before)
        rows: Sequence[Any] = (await self.session.exec(query.limit(limit))).all()
        return rows

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

    async def list(self, *, limit: int, after: Keyset | None = None) -> Sequence[Agent]:
        """At most ``limit`` live agents, newest first, after the keyset ``after``."""
        query = select(Agent).where(Agent.tenant_id == self.tenant_id, col(Agent.deleted_at).is_(None))
        query = newest_first(query, col(Agent.created_at), col(Agent.id), after)
        rows: Sequence[Agent] = (await self.session.exec(query.limit(limit))).all()
        return rows


_LOCK_FEEDBACK = 0x4642_0001
"""Advisory lock class of a run's feedback count (the other key is a hash of the run id)."""


class FeedbackLimitReached(Exception):  # noqa: N818 - a limit, reported as 409
    """The run already has as much feedback as one run may collect."""

    def __init__(self, limit: int):
        super().__init__(f"a run collects at most {limit} feedback entries")
        self.limit = limit


class FeedbackRepository(_TenantScoped):
    """Feedback on the runs of one tenant."""

    async def add(
        self,
        run: Run,
        *,
        score: float,
        label: str | None,
        comment: str | None,
        author: Author,
        limit: int | None = None,
    ) -> RunFeedback:
        """Record feedback on ``run`` for the version that produced it; the caller commits.

        With ``limit``, the run's feedback is counted under a lock held until the caller's
        transaction ends, so concurrent additions cannot pass the limit together.

        Raises:
            FeedbackLimitReached: ``run`` already has ``limit`` feedback entries.
        """
        if limit is not None:
            await self.session.exec(select(func.pg_advisory_xact_lock(_LOCK_FEEDBACK, func.hashtext(run.id))))
            if await self.count_of_run(run.id) >= limit:
                raise FeedbackLimitReached(limit)
        row = RunFeedback(
            id=new_id("fbk"),
            tenant_id=self.tenant_id,
            run_id=run.id,
            agent_id=run.agent_id,
            agent_version=run.agent_version,
            score=score,
            label=label,
            comment=comment,
            created_by_kind=author.kind,
            created_by_id=author.id,
        )
        self.session.add(row)
        return row

    async def count_of_run(self, run_id: str) -> int:
        """How many feedback entries ``run_id`` has."""
        query = select(func.count()).where(
            col(RunFeedback.tenant_id) == self.tenant_id, col(RunFeedback.run_id) == run_id
        )
        return int((await self.session.exec(query)).one())

    async def of_run(self, run_id: str, *, limit: int, after: Keyset | None = None) -> Sequence[RunFeedback]:
        """Feedback on one run, newest first."""
        query = select(RunFeedback).where(RunFeedback.tenant_id == self.tenant_id, RunFeedback.run_id == run_id)
        query = newest_first(query, col(RunFeedback.created_at), col(RunFeedback.id), after)
        rows: Sequence[RunFeedback] = (await self.session.exec(query.limit(limit))).all()
        return rows


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
        self, *, limit: int, after: Keyset | None = None, agent_id: str | None = None, status: str | None = None
    ) -> Sequence[Run]:
        """At most ``limit`` runs, newest first, after the keyset ``after``, optionally filtered."""
        query = select(Run).where(Run.tenant_id == self.tenant_id)
        if agent_id:
            query = query.where(Run.agent_id == agent_id)
        if status:
            query = query.where(Run.status == status)
        query = newest_first(query, col(Run.created_at), col(Run.id), after)
        rows: Sequence[Run] = (await self.session.exec(query.limit(limit))).all()
        return rows


async def find_api_key(session: AsyncSession, key_hash: str) -> ApiKey | None:
    """The unrevoked API key with this hash (the one lookup that precedes a tenant)."""
    result = await session.exec(select(ApiKey).where(ApiKey.key_hash == key_hash, col(ApiKey.revoked_at).is_(None)))
    return result.first()
