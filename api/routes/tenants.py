"""``/v1/tenants``: platform administrators create tenants and set quotas and egress allowlists."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Response
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from temporalio.service import RPCError

from api.audit import audit
from api.cache_bus import PRINCIPALS
from api.deps import Principal, SessionDep, StateDep
from api.identity_schemas import TenantCreate, TenantOwnerSet, TenantPublic, TenantUpdate, UserPublic
from api.pagination import Limit, NewestFirst
from api.permissions import PlatformTenants, TenantRead
from api.problem_types import ProblemType, problems
from api.problems import ProblemError
from api.routes.users import user_public
from api.schemas import Page
from core.db.models import Tenant, User, utcnow
from core.db.repos import Keyset, newest_first
from core.ids import new_id
from core.recommend.schedules import ensure_tenant_schedule
from core.security import hash_password

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/v1/tenants", tags=["tenants"])
TENANTS = NewestFirst("tenants")


def tenant_public(tenant: Tenant) -> TenantPublic:
    """Public view of a tenant."""
    return TenantPublic(
        id=tenant.id,
        name=tenant.name,
        quotas=tenant.quotas,
        egress_allowlist=tenant.egress_allowlist,
        created_at=tenant.created_at,
    )


@router.post("", status_code=201, response_model=TenantPublic, responses=problems(409))
async def create_tenant(
    body: TenantCreate, state: StateDep, session: SessionDep, principal: PlatformTenants
) -> TenantPublic:
    """Create a tenant and its owner, and the tenant's recommendation schedule."""
    tenant = Tenant(id=new_id("ten"), name=body.name)
    owner = User(
        id=new_id("usr"),
        tenant_id=tenant.id,
        email=body.owner_email.lower(),
        password_hash=hash_password(body.owner_password),
        role="owner",
    )
    session.add(tenant)
    await session.flush()
    session.add(owner)
    audit(
        session,
        principal,
        tenant_id=tenant.id,
        action="tenant.created",
        target_type="tenant",
        target_id=tenant.id,
        data={"name": body.name, "owner_id": owner.id},
    )
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise ProblemError(
            409,
            "a user with this email exists",
            slug=ProblemType.CONFLICT,
            errors=[{"field": "owner_email", "message": "taken"}],
        ) from None
    try:
        await ensure_tenant_schedule(state.temporal, state.settings, tenant.id)
    except (RPCError, RuntimeError):  # ensured again by the next optimizer worker start or the tenant's refresh
        log.warning("recommendation schedule not created", tenant_id=tenant.id, exc_info=True)
    return tenant_public(tenant)


@router.get("", response_model=Page[TenantPublic])
async def list_tenants(
    session: SessionDep,
    principal: PlatformTenants,
    after: Annotated[Keyset | None, Depends(TENANTS.after)],
    limit: Limit = 50,
) -> Page[TenantPublic]:
    """Every tenant of the platform, newest first (platform admins; tenant users get 403)."""
    query = newest_first(select(Tenant), col(Tenant.created_at), col(Tenant.id), after)
    rows, next_cursor = TENANTS.page((await session.exec(query.limit(limit + 1))).all(), limit)
    return Page(items=[tenant_public(t) for t in rows], next_cursor=next_cursor)


async def _visible_tenant(session: SessionDep, principal: Principal, tenant_id: str) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None or (not principal.is_platform_admin and tenant.id != principal.tenant_id):
        raise ProblemError(404, f"tenant {tenant_id} not found", slug=ProblemType.NOT_FOUND)
    return tenant


@router.get("/{tenant_id}", response_model=TenantPublic)
async def get_tenant(tenant_id: str, session: SessionDep, principal: TenantRead) -> TenantPublic:
    """A tenant: platform admins see any, members only their own."""
    return tenant_public(await _visible_tenant(session, principal, tenant_id))


@router.patch("/{tenant_id}", response_model=TenantPublic)
async def update_tenant(
    tenant_id: str,
    body: TenantUpdate,
    state: StateDep,
    session: SessionDep,
    principal: PlatformTenants,
) -> TenantPublic:
    """Change name, quotas or egress allowlist."""
    tenant = await _visible_tenant(session, principal, tenant_id)
    changes = body.model_dump(exclude_unset=True, mode="json")
    if body.name is not None:
        tenant.name = body.name
    if body.quotas is not None:
        tenant.quotas = body.quotas.model_dump(exclude_none=True)
    if body.egress_allowlist is not None:
        tenant.egress_allowlist = body.egress_allowlist
    session.add(tenant)
    audit(
        session,
        principal,
        tenant_id=tenant.id,
        action="tenant.updated",
        target_type="tenant",
        target_id=tenant.id,
        data=changes | {"at": utcnow().isoformat()},
    )
    await session.commit()
    await state.caches.invalidate(PRINCIPALS)
    return tenant_public(tenant)


def _email_taken() -> ProblemError:
    return ProblemError(
        409,
        "this email belongs to another account",
        slug=ProblemType.CONFLICT,
        errors=[{"field": "email", "message": "taken"}],
    )


@router.post(
    "/{tenant_id}/owners",
    status_code=201,
    response_model=UserPublic,
    responses=problems(409) | {200: {"model": UserPublic}},
)
async def set_owner(
    tenant_id: str,
    body: TenantOwnerSet,
    response: Response,
    state: StateDep,
    session: SessionDep,
    principal: PlatformTenants,
) -> UserPublic:
    """Give a tenant an owner: a new user (201), or the tenant's user with this email made owner
    with a new password and every earlier session revoked (200). The way back into a locked-out tenant."""
    tenant = await _visible_tenant(session, principal, tenant_id)
    email = body.email.lower()
    user = (await session.exec(select(User).where(User.email == email))).first()
    if user is not None and user.tenant_id != tenant.id:
        raise _email_taken()
    if user is None:
        user = User(id=new_id("usr"), tenant_id=tenant.id, email=email, password_hash="", role="owner")
        action = "owner.added"
    else:
        await state.refresh_tokens.revoke_user(session, user.id)
        response.status_code = 200
        action = "owner.reset"
    user.password_hash, user.role = hash_password(body.password), "owner"
    session.add(user)
    audit(session, principal, tenant_id=tenant.id, action=action, target_type="user", target_id=user.id)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise _email_taken() from None
    await state.caches.invalidate(PRINCIPALS)
    return user_public(user)
