"""``/v1/agents``: create and read versioned agents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlmodel import col, select

from api import cache_bus
from api.audit import audit
from api.deps import Principal, SessionDep, StateDep
from api.pagination import BySeq, Limit, NewestFirst
from api.permissions import AgentsRead, AgentsWrite
from api.problem_types import ProblemType, problems
from api.problems import ProblemError
from api.routes.optimizer_schedules import optimizer_schedules_of
from api.schemas import AgentConfigPublic, AgentPublic, Page
from api.temporal_problems import temporal_answers
from api.version_schemas import AgentUpdate, AgentVersionPublic, AuthorPublic, FeedbackSummary
from core.agents import AgentConfig
from core.db.models import Agent, AgentVersion, TenantTool, utcnow
from core.db.repos import AgentRepository, Author, Keyset
from core.secrets import missing_secrets
from core.tools.builtin import BUILTIN_TOOL_NAMES

router = APIRouter(prefix="/v1/agents", tags=["agents"])
AGENTS = NewestFirst("agents")
VERSIONS = BySeq("agent-versions", lambda row: row[0].version)
"""Version numbers; the list is newest first, so a cursor's version is an upper bound."""
MAX_VERSION = 2**31 - 1
"""Versions are 32-bit integers in the database."""
VersionPath = Annotated[int, Path(ge=1, le=MAX_VERSION, description="A version number of the agent.")]


def agent_public(agent: Agent, version: AgentVersion) -> AgentPublic:
    """The public view of an agent at ``version``."""
    return AgentPublic(
        **_shown(version),
        id=agent.id,
        version=version.version,
        created_at=agent.created_at,
        updated_at=agent.updated_at,
    )


def _shown(version: AgentVersion) -> dict[str, Any]:
    """The fields of ``AgentConfigPublic`` from a stored version."""
    config = AgentConfig.model_validate(version.config)
    return {name: getattr(config, name) for name in AgentConfigPublic.model_fields}


async def _check_references(
    session: SessionDep, tenant_id: str, config: AgentConfig, *, model_set: bool = True
) -> None:
    """422 naming each tool that is neither built in nor the tenant's and, when the request
    sets the model, a ``model.api_key_secret`` the tenant has no secret under."""
    names = [t.name for t in config.tools if t.name not in BUILTIN_TOOL_NAMES]
    found: set[str] = set()
    if names:
        rows = await session.exec(
            select(TenantTool.name).where(TenantTool.tenant_id == tenant_id, col(TenantTool.name).in_(names))
        )
        found = set(rows.all())
    errors = [
        {"field": f"tools[{i}].name", "message": f"unknown tool {t.name!r}; define it with POST /v1/tools"}
        for i, t in enumerate(config.tools)
        if t.name not in BUILTIN_TOOL_NAMES and t.name not in found
    ]
    secret = config.model.api_key_secret
    if model_set and secret is not None and await missing_secrets(session, tenant_id, [secret]):
        message = f"unknown secret {secret!r}; store it first with POST /v1/secrets"
        errors.append({"field": "model.api_key_secret", "message": message})
    if errors:
        raise ProblemError(422, errors[0]["message"], slug=ProblemType.VALIDATION_ERROR, errors=errors)


@router.post("", status_code=201, response_model=AgentPublic)
async def create_agent(body: AgentConfig, session: SessionDep, principal: AgentsWrite) -> AgentPublic:
    """Create an agent at version 1."""
    await _check_references(session, principal.tenant_id, body)
    agent, version = await AgentRepository(session, principal.tenant_id).create(body, _author(principal))
    audit(
        session,
        principal,
        action="agent.created",
        target_type="agent",
        target_id=agent.id,
        data={"version": version.version},
    )
    await session.commit()
    return agent_public(agent, version)


@router.get("", response_model=Page[AgentPublic])
async def list_agents(
    session: SessionDep,
    principal: AgentsRead,
    after: Annotated[Keyset | None, Depends(AGENTS.after)],
    limit: Limit = 50,
) -> Page[AgentPublic]:
    """Agents of the caller's tenant, newest first."""
    repo = AgentRepository(session, principal.tenant_id)
    agents, next_cursor = AGENTS.page(await repo.list(limit=limit + 1, after=after), limit)
    items = []
    for agent in agents:
        version = await repo.get_version(agent.id, agent.version)
        if version is not None:
            items.append(agent_public(agent, version))
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{agent_id}", response_model=AgentPublic)
async def get_agent(agent_id: str, session: SessionDep, principal: AgentsRead) -> AgentPublic:
    """One agent at its current version (archived agents stay readable)."""
    repo = AgentRepository(session, principal.tenant_id)
    agent = await _agent(repo, agent_id)
    version = await repo.get_version(agent_id, agent.version)
    if version is None:
        raise _not_found(agent_id)
    return agent_public(agent, version)


def _author(principal: Principal) -> Author:
    return Author(kind="user", id=principal.subject_id)


def _not_found(agent_id: str) -> ProblemError:
    return ProblemError(404, f"agent {agent_id} not found", slug=ProblemType.NOT_FOUND)


async def _agent(repo: AgentRepository, agent_id: str, *, live: bool = False, lock: bool = False) -> Agent:
    """The agent (archived too, unless ``live``: then an archived one answers 409)."""
    agent = await repo.get_any(agent_id, lock=lock)
    if agent is None:
        raise _not_found(agent_id)
    if live and agent.deleted_at is not None:
        raise ProblemError(409, f"agent {agent_id} is archived", slug=ProblemType.AGENT_ARCHIVED)
    return agent


async def new_version(
    session: SessionDep,
    principal: Principal,
    agent_id: str,
    changes: dict[str, Any],
    *,
    author: Author,
    promote: bool,
    from_version: int | None = None,
) -> tuple[Agent, AgentVersion, AgentVersion]:
    """A new version of the agent from its current one and ``changes``, audited: the agent, its version before, the new.

    What ``PATCH /v1/agents/{id}`` does (and a recommendation's apply): the agent is locked, the
    merged configuration validated (422 naming the fields), its tools and secret checked. With
    ``from_version``, 409 unless that is still the current version. The caller commits, then
    invalidates the agents cache when ``promote``.
    """
    repo = AgentRepository(session, principal.tenant_id)
    agent = await _agent(repo, agent_id, live=True, lock=True)
    if from_version is not None and agent.version != from_version:
        message = f"agent {agent_id} is at version {agent.version}, not {from_version}"
        raise ProblemError(409, message, slug=ProblemType.CONFLICT)
    current = await repo.get_version(agent_id, agent.version)
    if current is None:
        raise _not_found(agent_id)
    try:
        config = AgentConfig.model_validate({**current.config, **changes})
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    await _check_references(session, principal.tenant_id, config, model_set="model" in changes)
    version = await repo.add_version(agent, config, author, promote=promote)
    data = {"version": version.version, "promoted": promote, "fields": sorted(changes)}
    if author.kind != "user":
        data["created_by"] = {"kind": author.kind, "id": author.id}
    audit(session, principal, action="agent.version_created", target_type="agent", target_id=agent.id, data=data)
    return agent, current, version


@router.patch("/{agent_id}", response_model=AgentPublic)
async def update_agent(
    agent_id: str,
    body: AgentUpdate,
    state: StateDep,
    session: SessionDep,
    principal: AgentsWrite,
) -> AgentPublic:
    """A new immutable version from the current one and the fields given; current unless ``promote`` is false."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True, exclude={"promote"}, mode="json")
    agent, current, version = await new_version(
        session, principal, agent_id, changes, author=_author(principal), promote=body.promote
    )
    await session.commit()
    if body.promote:
        await state.caches.invalidate(cache_bus.AGENTS)
    return agent_public(agent, version if body.promote else current)


@router.delete("/{agent_id}", status_code=204, response_class=Response, responses=problems(503))
async def archive_agent(agent_id: str, state: StateDep, session: SessionDep, principal: AgentsWrite) -> Response:
    """Archive: new runs answer 409; the agent, its versions, runs and threads stay readable; its optimizer
    schedule is deleted (503 if Temporal does not answer: archived, send the DELETE again to delete the schedule)."""
    repo = AgentRepository(session, principal.tenant_id)
    agent = await _agent(repo, agent_id, lock=True)
    if agent.deleted_at is None:
        agent.deleted_at = utcnow()
        session.add(agent)
        audit(session, principal, action="agent.archived", target_type="agent", target_id=agent.id)
        await session.commit()
        await state.caches.invalidate(cache_bus.AGENTS)
    async with temporal_answers("archived, but its optimizer schedule could not be deleted"):
        await optimizer_schedules_of(state, principal.tenant_id).delete(agent_id)
    return Response(status_code=204)


def version_public(agent: Agent, version: AgentVersion, n: int = 0, mean: float | None = None) -> AgentVersionPublic:
    """The public view of one version, with its feedback summary."""
    return AgentVersionPublic(
        **_shown(version),
        version=version.version,
        created_at=version.created_at,
        created_by=AuthorPublic(kind=version.created_by_kind, id=version.created_by_id),
        current=version.version == agent.version,
        feedback=FeedbackSummary(n=n or 0, mean=None if mean is None else float(mean)),
    )


@router.get("/{agent_id}/versions", response_model=Page[AgentVersionPublic])
async def list_versions(
    agent_id: str,
    session: SessionDep,
    principal: AgentsRead,
    after: Annotated[int | None, Depends(VERSIONS.after)],
    limit: Limit = 50,
) -> Page[AgentVersionPublic]:
    """Versions newest first, each with ``current`` and its feedback ``{n, mean}``."""
    repo = AgentRepository(session, principal.tenant_id)
    agent = await _agent(repo, agent_id)
    rows, next_cursor = VERSIONS.page(await repo.versions(agent_id, limit=limit + 1, before=after), limit)
    return Page(items=[version_public(agent, v, n, mean) for v, n, mean in rows], next_cursor=next_cursor)


async def _version_row(repo: AgentRepository, agent_id: str, version: int) -> tuple[AgentVersion, int, float | None]:
    rows = await repo.versions(agent_id, limit=1, before=version + 1 if version < MAX_VERSION else None)
    if not rows or rows[0][0].version != version:
        raise ProblemError(404, f"agent {agent_id} has no version {version}", slug=ProblemType.NOT_FOUND)
    found, n, mean = rows[0]
    return found, n, mean


@router.get("/{agent_id}/versions/{version}", response_model=AgentVersionPublic)
async def get_version(
    agent_id: str,
    version: VersionPath,
    session: SessionDep,
    principal: AgentsRead,
) -> AgentVersionPublic:
    """One version of an agent."""
    repo = AgentRepository(session, principal.tenant_id)
    agent = await _agent(repo, agent_id)
    return version_public(agent, *await _version_row(repo, agent_id, version))


@router.post("/{agent_id}/versions/{version}/promote", response_model=AgentVersionPublic)
async def promote_version(
    agent_id: str,
    version: VersionPath,
    state: StateDep,
    session: SessionDep,
    principal: AgentsWrite,
) -> AgentVersionPublic:
    """Make ``version`` current (rollback = promote an older one); runs in flight keep theirs."""
    repo = AgentRepository(session, principal.tenant_id)
    agent = await _agent(repo, agent_id, live=True, lock=True)
    found, n, mean = await _version_row(repo, agent_id, version)
    previous = agent.version
    repo.promote(agent, found)
    audit(
        session,
        principal,
        action="agent.version_promoted",
        target_type="agent",
        target_id=agent.id,
        data={"from": previous, "to": version},
    )
    await session.commit()
    await state.caches.invalidate(cache_bus.AGENTS)
    return version_public(agent, found, n, mean)
