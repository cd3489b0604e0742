"""``/v1/agents``: create and read versioned agents."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlmodel import col, select

from api.audit import audit
from api.deps import Principal, SessionDep, require
from api.problems import ProblemError, invalid_cursor
from api.schemas import AgentPublic, Page
from core.agents import AgentConfig
from core.db.models import Agent, AgentVersion, TenantTool
from core.db.repos import AgentRepository, CursorError
from core.tools.builtin import BUILTIN_TOOL_NAMES

router = APIRouter(prefix="/v1/agents", tags=["agents"])


def agent_public(agent: Agent, version: AgentVersion) -> AgentPublic:
    """The public view of an agent at ``version``."""
    config = AgentConfig.model_validate(version.config)
    return AgentPublic(
        id=agent.id,
        version=version.version,
        name=config.name,
        instructions=config.instructions,
        model=config.model,
        tools=config.tools,
        memory=config.memory,
        double_texting=config.double_texting,
        parallel_tool_calls=config.parallel_tool_calls,
        created_at=agent.created_at,
        updated_at=agent.updated_at,
    )


async def _check_tools_exist(session: SessionDep, tenant_id: str, config: AgentConfig) -> None:
    """422 naming each tool that is neither built in nor one of the tenant's tools."""
    names = [t.name for t in config.tools if t.name not in BUILTIN_TOOL_NAMES]
    if not names:
        return
    rows = await session.exec(
        select(TenantTool.name).where(TenantTool.tenant_id == tenant_id, col(TenantTool.name).in_(names))
    )
    found = set(rows.all())
    errors = [
        {"field": f"tools[{i}].name", "message": f"unknown tool {t.name!r}; define it with POST /v1/tools"}
        for i, t in enumerate(config.tools)
        if t.name not in BUILTIN_TOOL_NAMES and t.name not in found
    ]
    if errors:
        raise ProblemError(422, errors[0]["message"], slug="validation-error", errors=errors)


@router.post("", status_code=201, response_model=AgentPublic)
async def create_agent(
    body: AgentConfig, session: SessionDep, principal: Annotated[Principal, Depends(require("agents:write"))]
) -> AgentPublic:
    """Create an agent at version 1."""
    await _check_tools_exist(session, principal.tenant_id, body)
    agent, version = await AgentRepository(session, principal.tenant_id).create(body)
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
    principal: Annotated[Principal, Depends(require("agents:read"))],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[AgentPublic]:
    """Agents of the caller's tenant, newest first."""
    repo = AgentRepository(session, principal.tenant_id)
    try:
        agents, next_cursor = await repo.list(limit=limit, cursor=cursor)
    except CursorError as exc:
        raise invalid_cursor(exc) from exc
    items = []
    for agent in agents:
        version = await repo.get_version(agent.id, agent.version)
        if version is not None:
            items.append(agent_public(agent, version))
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{agent_id}", response_model=AgentPublic)
async def get_agent(
    agent_id: str, session: SessionDep, principal: Annotated[Principal, Depends(require("agents:read"))]
) -> AgentPublic:
    """One agent at its current version."""
    repo = AgentRepository(session, principal.tenant_id)
    agent = await repo.get(agent_id)
    version = await repo.get_version(agent_id, agent.version) if agent else None
    if agent is None or version is None:
        raise ProblemError(404, f"agent {agent_id} not found", slug="not-found")
    return agent_public(agent, version)
