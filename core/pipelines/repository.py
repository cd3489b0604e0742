"""Pipelines of one tenant in the database: definitions as immutable versions, and the catalog a definition may name.

``PipelineRepository`` is tenant-scoped like the repositories of ``core.db.repos``: every
query is filtered by the tenant given at construction. ``load_catalog`` reads, for the names
a definition mentions, which exist for the tenant (live agents, built-in and tenant tools,
live pipelines), so that ``core.pipelines.validation.validate`` stays pure and is called
off the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.db.models import Agent, Pipeline, PipelineVersion, TenantTool, utcnow
from core.db.repos import Author, Keyset, newest_first
from core.ids import new_id
from core.pipelines.validation import StaticCatalog
from core.tools.builtin import BUILTIN_TOOL_NAMES

_REFERENCE_KEYS = {"agent_id": "agents", "tool": "tools", "pipeline_id": "pipelines"}


class PipelineRepository:
    """Pipelines and their versions of one tenant."""

    def __init__(self, session: AsyncSession, tenant_id: str):
        if not tenant_id:
            raise ValueError("a tenant-scoped repository needs a tenant id")
        self.session = session
        self.tenant_id = tenant_id

    async def create(self, name: str, definition: dict[str, Any], author: Author) -> tuple[Pipeline, PipelineVersion]:
        """A new pipeline at version 1 (the caller commits)."""
        pipeline = Pipeline(id=new_id("pip"), tenant_id=self.tenant_id, name=name, version=1)
        self.session.add(pipeline)
        await self.session.flush()
        version = self._version(pipeline.id, 1, definition, author)
        self.session.add(version)
        return pipeline, version

    def _version(self, pipeline_id: str, number: int, definition: dict[str, Any], author: Author) -> PipelineVersion:
        return PipelineVersion(
            tenant_id=self.tenant_id,
            pipeline_id=pipeline_id,
            version=number,
            definition=definition,
            created_by_kind=author.kind,
            created_by_id=author.id,
        )

    async def get_any(self, pipeline_id: str, *, lock: bool = False) -> Pipeline | None:
        """The pipeline ``pipeline_id`` of this tenant, archived or not (``lock``: FOR UPDATE)."""
        query = select(Pipeline).where(Pipeline.id == pipeline_id, Pipeline.tenant_id == self.tenant_id)
        if lock:  # the row as it is now, even when this session has read it before
            query = query.with_for_update().execution_options(populate_existing=True)
        return (await self.session.exec(query)).first()

    async def add_version(self, pipeline: Pipeline, definition: dict[str, Any], author: Author) -> PipelineVersion:
        """A new immutable version after the latest, made current (pipeline row locked; the caller commits)."""
        latest = await self.session.exec(
            select(func.max(PipelineVersion.version)).where(
                PipelineVersion.pipeline_id == pipeline.id, PipelineVersion.tenant_id == self.tenant_id
            )
        )
        version = self._version(pipeline.id, (latest.one() or 0) + 1, definition, author)
        self.session.add(version)
        pipeline.version, pipeline.updated_at = version.version, utcnow()
        self.session.add(pipeline)
        return version

    def archive(self, pipeline: Pipeline) -> None:
        """Mark ``pipeline`` archived (the caller commits)."""
        pipeline.deleted_at = pipeline.updated_at = utcnow()
        self.session.add(pipeline)

    async def get_version(self, pipeline_id: str, version: int) -> PipelineVersion | None:
        """One version of a pipeline of this tenant."""
        query = select(PipelineVersion).where(
            PipelineVersion.pipeline_id == pipeline_id,
            PipelineVersion.version == version,
            PipelineVersion.tenant_id == self.tenant_id,
        )
        return (await self.session.exec(query)).first()

    async def versions(self, pipeline_id: str, *, limit: int, before: int | None = None) -> Sequence[PipelineVersion]:
        """Versions newest first, those below ``before`` when given."""
        query = select(PipelineVersion).where(
            PipelineVersion.pipeline_id == pipeline_id, PipelineVersion.tenant_id == self.tenant_id
        )
        if before is not None:
            query = query.where(PipelineVersion.version < before)
        rows: Sequence[PipelineVersion] = (
            await self.session.exec(query.order_by(col(PipelineVersion.version).desc()).limit(limit))
        ).all()
        return rows

    async def list(self, *, limit: int, after: Keyset | None = None) -> Sequence[tuple[Pipeline, PipelineVersion]]:
        """At most ``limit`` live pipelines with their current versions, newest first, after the keyset ``after``."""
        query = (
            select(Pipeline, PipelineVersion)
            .join(
                PipelineVersion,
                (col(PipelineVersion.pipeline_id) == col(Pipeline.id))
                & (col(PipelineVersion.version) == col(Pipeline.version)),
            )
            .where(Pipeline.tenant_id == self.tenant_id, col(Pipeline.deleted_at).is_(None))
        )
        query = newest_first(query, col(Pipeline.created_at), col(Pipeline.id), after)
        rows: Sequence[tuple[Pipeline, PipelineVersion]] = (await self.session.exec(query.limit(limit))).all()
        return rows

    async def callers_of(self, pipeline_id: str, named: Iterable[str]) -> frozenset[str]:
        """Those of the ``named`` pipelines that run ``pipeline_id`` again, directly or through the
        sub-pipelines of their current versions (saving ``pipeline_id`` with them would make a cycle)."""
        edges: dict[str, frozenset[str]] = {}
        frontier = set(named)
        while frontier:
            query = (
                select(Pipeline.id, PipelineVersion.definition)
                .join(
                    PipelineVersion,
                    (col(PipelineVersion.pipeline_id) == col(Pipeline.id))
                    & (col(PipelineVersion.version) == col(Pipeline.version)),
                )
                .where(Pipeline.tenant_id == self.tenant_id, col(Pipeline.id).in_(sorted(frontier)))
            )
            rows = (await self.session.exec(query)).all()
            found = await anyio.to_thread.run_sync(_sub_pipelines, rows)
            edges.update({name: found.get(name, frozenset()) for name in frontier})
            frontier = set().union(*found.values()) - edges.keys() - {pipeline_id}
        return frozenset(name for name in named if pipeline_id in _reachable(name, edges))


def _sub_pipelines(rows: Sequence[Any]) -> dict[str, frozenset[str]]:
    """``(pipeline id, definition)`` rows → the pipelines each definition names."""
    return {row[0]: references(row[1]).pipelines for row in rows}


def _reachable(start: str, edges: dict[str, frozenset[str]]) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for following in edges.get(stack.pop(), frozenset()):
            if following not in seen:
                seen.add(following)
                stack.append(following)
    return seen


@dataclass(frozen=True)
class References:
    """The names a definition may refer to, collected before it is validated."""

    agents: frozenset[str]
    tools: frozenset[str]
    pipelines: frozenset[str]


def references(definition: Any) -> References:
    """Every string under an ``agent_id``, ``tool`` or ``pipeline_id`` key anywhere in ``definition``.

    A superset of what its steps name (``args`` may hold such keys too), read before the
    definition is parsed, so the catalog query asks only for these names.
    """
    found: dict[str, set[str]] = {kind: set() for kind in _REFERENCE_KEYS.values()}
    stack: list[Any] = [definition]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and key in _REFERENCE_KEYS:
                    found[_REFERENCE_KEYS[key]].add(value)
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(item for item in node if isinstance(item, dict | list))
    return References(**{kind: frozenset(names) for kind, names in found.items()})


async def load_catalog(
    session: AsyncSession, tenant_id: str, wanted: References, *, exclude_pipeline: str | None = None
) -> StaticCatalog:
    """Which of the ``wanted`` names exist for ``tenant_id``: live agents, tools (built-in or the
    tenant's) and live pipelines, ``exclude_pipeline`` left out (a pipeline cannot run itself)."""

    async def existing(table: Any, key: Any, names: Iterable[str], *live: Any) -> frozenset[str]:
        names = list(names)
        if not names:
            return frozenset()
        rows = await session.exec(select(key).where(table.tenant_id == tenant_id, col(key).in_(names), *live))
        return frozenset(rows.all())

    agents = await existing(Agent, Agent.id, wanted.agents, col(Agent.deleted_at).is_(None))
    tenant_tools = await existing(TenantTool, TenantTool.name, wanted.tools - BUILTIN_TOOL_NAMES)
    pipelines = await existing(
        Pipeline, Pipeline.id, wanted.pipelines - {exclude_pipeline or ""}, col(Pipeline.deleted_at).is_(None)
    )
    return StaticCatalog(agents=agents, tools=(wanted.tools & BUILTIN_TOOL_NAMES) | tenant_tools, pipelines=pipelines)
