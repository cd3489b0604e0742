"""``/v1/api-keys``: service credentials with a role, shown once, stored hashed."""

from __future__ import annotations

from operator import attrgetter
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from sqlmodel import col, select

from api.audit import audit
from api.cache_bus import PRINCIPALS
from api.deps import SessionDep, StateDep
from api.identity_schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from api.pagination import ByText, Limit
from api.permissions import KeysManage
from api.problem_types import ProblemType
from api.problems import ProblemError
from api.schemas import Page
from core.db.models import ApiKey, utcnow
from core.provisioning import issue_api_key
from core.roles import may_grant

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"])
API_KEYS = ByText("api-keys", attrgetter("id"))


def _public(key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=key.id,
        name=key.name,
        role=key.role,
        prefix=key.prefix,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
    )


@router.post("", status_code=201, response_model=ApiKeyCreated)
async def create_api_key(body: ApiKeyCreate, session: SessionDep, principal: KeysManage) -> ApiKeyCreated:
    """Mint a key; ``key`` is in this response only."""
    if not may_grant(principal.role, body.role):
        raise ProblemError(403, f"role {principal.role!r} cannot grant {body.role!r}", slug=ProblemType.FORBIDDEN)
    row, minted = await issue_api_key(
        session,
        principal.tenant_id,
        name=body.name,
        role=body.role,
        user_id=principal.subject_id if principal.kind == "user" else None,
        commit=False,
    )
    audit(
        session,
        principal,
        action="api_key.created",
        target_type="api_key",
        target_id=row.id,
        data={"name": body.name, "role": body.role},
    )
    await session.commit()
    return ApiKeyCreated(**_public(row).model_dump(), key=minted.key)


@router.get("", response_model=Page[ApiKeyPublic])
async def list_api_keys(
    session: SessionDep,
    principal: KeysManage,
    after: Annotated[str | None, Depends(API_KEYS.after)],
    limit: Limit = 50,
) -> Page[ApiKeyPublic]:
    """The tenant's live keys (prefix only)."""
    query = (
        select(ApiKey)
        .where(ApiKey.tenant_id == principal.tenant_id, col(ApiKey.revoked_at).is_(None))
        .order_by(col(ApiKey.id))
    )
    if after is not None:
        query = query.where(col(ApiKey.id) > after)
    rows, next_cursor = API_KEYS.page((await session.exec(query.limit(limit + 1))).all(), limit)
    return Page(items=[_public(k) for k in rows], next_cursor=next_cursor)


@router.delete("/{key_id}", status_code=204, response_class=Response)
async def revoke_api_key(key_id: str, state: StateDep, session: SessionDep, principal: KeysManage) -> Response:
    """Revoke a key (it stops working on every replica within the credential cache time)."""
    key = await session.get(ApiKey, key_id)
    if key is None or key.tenant_id != principal.tenant_id or key.revoked_at is not None:
        raise ProblemError(404, f"api key {key_id} not found", slug=ProblemType.NOT_FOUND)
    if not may_grant(principal.role, key.role):
        raise ProblemError(403, f"role {principal.role!r} cannot revoke a {key.role!r} key", slug=ProblemType.FORBIDDEN)
    key.revoked_at = utcnow()
    session.add(key)
    audit(
        session,
        principal,
        action="api_key.revoked",
        target_type="api_key",
        target_id=key.id,
    )
    await session.commit()
    await state.caches.invalidate(PRINCIPALS)
    return Response(status_code=204)
