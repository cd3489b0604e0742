"""``/v1/tools``: tenant-defined HTTP tools, listed together with the built-in tools."""

from __future__ import annotations

from operator import attrgetter
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from api.audit import audit
from api.deps import SessionDep
from api.pagination import ByText, Limit
from api.permissions import ToolsRead, ToolsWrite
from api.problem_types import ProblemType, problems
from api.problems import ProblemError
from api.schemas import Page
from api.tool_schemas import ToolCreate, ToolPublic
from core.db.models import TenantTool
from core.ids import new_id
from core.secrets import missing_secrets
from core.tools.base import Tool
from core.tools.builtin import builtin_tools
from core.tools.http_request import HttpRequestTool
from core.tools.tenant_http import secret_references

router = APIRouter(prefix="/v1/tools", tags=["tools"])

ToolName = Annotated[str, Path(min_length=1, max_length=64)]
TOOLS = ByText("tools", attrgetter("name"))


def _builtin_public() -> list[ToolPublic]:
    tools: list[Tool] = [*builtin_tools()]
    items = [
        ToolPublic(
            name=t.schema.name,
            description=t.schema.description,
            parameters=t.schema.parameters,
            builtin=True,
            side_effects=t.side_effects,
        )
        for t in tools
    ]
    items.append(
        ToolPublic(
            name=HttpRequestTool.schema.name,
            description=HttpRequestTool.schema.description,
            parameters=HttpRequestTool.schema.parameters,
            builtin=True,
            side_effects=HttpRequestTool.side_effects,
        )
    )
    return sorted(items, key=lambda t: t.name)


def _public(row: TenantTool) -> ToolPublic:
    return ToolPublic(
        name=row.name,
        description=row.description,
        parameters=row.parameters,
        builtin=False,
        method=row.method,
        url=row.url,
        headers=row.headers,
        side_effects=row.side_effects,
        timeout_s=row.timeout_s,
        created_at=row.created_at,
    )


async def _get(session: SessionDep, tenant_id: str, name: str) -> TenantTool | None:
    result = await session.exec(select(TenantTool).where(TenantTool.tenant_id == tenant_id, TenantTool.name == name))
    return result.first()


async def _check_secrets_exist(session: SessionDep, tenant_id: str, headers: dict[str, str]) -> None:
    """422 naming each header whose ``{{secret:NAME}}`` references a secret the tenant does not have."""
    wanted = {name: secret_references(value) for name, value in headers.items()}
    missing = await missing_secrets(session, tenant_id, {ref for refs in wanted.values() for ref in refs})
    errors = [
        {
            "field": f"headers.{name}",
            "message": f"unknown secret {ref!r}; store it first with POST /v1/secrets",
        }
        for name, refs in wanted.items()
        for ref in refs
        if ref in missing
    ]
    if errors:
        raise ProblemError(422, errors[0]["message"], slug=ProblemType.VALIDATION_ERROR, errors=errors)


@router.post("", status_code=201, response_model=ToolPublic, responses=problems(409))
async def create_tool(
    body: ToolCreate,
    session: SessionDep,
    principal: ToolsWrite,
) -> ToolPublic:
    """Define an HTTP tool; header values keep their ``{{secret:NAME}}`` references as given.

    Each referenced secret must exist in the tenant (422 naming the header otherwise).
    """
    await _check_secrets_exist(session, principal.tenant_id, body.headers)
    row = TenantTool(
        id=new_id("tool"),
        tenant_id=principal.tenant_id,
        name=body.name,
        description=body.description,
        parameters=body.parameters,
        method=body.method,
        url=body.url,
        headers=body.headers,
        side_effects=body.side_effects if body.side_effects is not None else body.method != "GET",
        timeout_s=body.timeout_s,
    )
    session.add(row)
    audit(
        session,
        principal,
        action="tool.created",
        target_type="tool",
        target_id=body.name,
        data={"method": body.method},
    )
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise ProblemError(
            409,
            f"a tool named {body.name} already exists",
            slug=ProblemType.CONFLICT,
            errors=[{"field": "name", "message": "already exists"}],
        ) from None
    return _public(row)


@router.get("", response_model=Page[ToolPublic])
async def list_tools(
    session: SessionDep,
    principal: ToolsRead,
    after: Annotated[str | None, Depends(TOOLS.after)],
    limit: Limit = 50,
) -> Page[ToolPublic]:
    """Built-in tools (``builtin: true``) and the tenant's tools, by name."""
    query = select(TenantTool).where(TenantTool.tenant_id == principal.tenant_id)
    if after is not None:
        query = query.where(col(TenantTool.name) > after)
    rows = (await session.exec(query.order_by(col(TenantTool.name)).limit(limit + 1))).all()
    builtins = [t for t in _builtin_public() if after is None or t.name > after]
    merged = sorted([*builtins, *(_public(r) for r in rows)], key=lambda t: t.name)
    items, next_cursor = TOOLS.page(merged, limit)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{name}", response_model=ToolPublic)
async def get_tool(
    name: ToolName,
    session: SessionDep,
    principal: ToolsRead,
) -> ToolPublic:
    """A built-in or tenant tool."""
    builtin = next((t for t in _builtin_public() if t.name == name), None)
    if builtin is not None:
        return builtin
    row = await _get(session, principal.tenant_id, name)
    if row is None:
        raise ProblemError(404, f"tool {name} not found", slug=ProblemType.NOT_FOUND)
    return _public(row)


@router.delete("/{name}", status_code=204, response_class=Response)
async def delete_tool(
    name: ToolName,
    session: SessionDep,
    principal: ToolsWrite,
) -> Response:
    """Delete a tenant tool (agents naming it no longer get it)."""
    result = await session.exec(
        delete(TenantTool).where(col(TenantTool.tenant_id) == principal.tenant_id, col(TenantTool.name) == name)
    )
    if not result.rowcount:
        raise ProblemError(404, f"tool {name} not found", slug=ProblemType.NOT_FOUND)
    audit(
        session,
        principal,
        action="tool.deleted",
        target_type="tool",
        target_id=name,
    )
    await session.commit()
    return Response(status_code=204)
