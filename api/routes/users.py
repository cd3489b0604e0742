"""``/v1/users``: a tenant's people and their roles."""

from __future__ import annotations

from operator import attrgetter
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from api.audit import audit
from api.cache_bus import PRINCIPALS
from api.deps import Principal, SessionDep, StateDep
from api.identity_schemas import UserCreate, UserPublic, UserUpdate
from api.pagination import ByText, Limit
from api.permissions import UsersManage, UsersRead
from api.problem_types import ProblemType, problems
from api.problems import ProblemError
from api.schemas import Page
from core.db.models import ApiKey, User, utcnow
from core.ids import new_id
from core.roles import may_grant
from core.security import hash_password

router = APIRouter(prefix="/v1/users", tags=["users"])
USERS = ByText("users", attrgetter("id"))


def user_public(user: User) -> UserPublic:
    """Public view of a user."""
    return UserPublic(id=user.id, email=user.email, role=user.role, created_at=user.created_at)


def _forbid_escalation(principal: Principal, role: str) -> None:
    if not may_grant(principal.role, role):
        raise ProblemError(403, f"role {principal.role!r} cannot grant {role!r}", slug=ProblemType.FORBIDDEN)


async def _keep_an_owner(session: SessionDep, user: User, *, new_role: str | None) -> None:
    """409 when removing ``user`` (or giving them ``new_role``) would leave the tenant without an owner.

    The tenant's owner rows are locked first, so two concurrent removals cannot both pass.
    """
    if user.role != "owner" or new_role == "owner":
        return
    owners = select(User.id).where(User.tenant_id == user.tenant_id, User.role == "owner").with_for_update()
    if len((await session.exec(owners)).all()) <= 1:
        raise ProblemError(
            409,
            "this is the tenant's last owner: add another owner first (a tenant without an owner cannot be managed)",
            slug=ProblemType.LAST_OWNER,
        )


async def _member(session: SessionDep, principal: Principal, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None or user.tenant_id != principal.tenant_id:
        raise ProblemError(404, f"user {user_id} not found", slug=ProblemType.NOT_FOUND)
    return user


@router.post("", status_code=201, response_model=UserPublic, responses=problems(409))
async def create_user(body: UserCreate, session: SessionDep, principal: UsersManage) -> UserPublic:
    """Add a user to the caller's tenant (never with a role above the caller's)."""
    _forbid_escalation(principal, body.role)
    user = User(
        id=new_id("usr"),
        tenant_id=principal.tenant_id,
        email=body.email.lower(),
        password_hash=hash_password(body.password),
        role=body.role,
    )
    session.add(user)
    audit(
        session,
        principal,
        action="user.created",
        target_type="user",
        target_id=user.id,
        data={"role": body.role},
    )
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise ProblemError(
            409,
            "a user with this email exists",
            slug=ProblemType.CONFLICT,
            errors=[{"field": "email", "message": "taken"}],
        ) from None
    return user_public(user)


@router.get("", response_model=Page[UserPublic])
async def list_users(
    session: SessionDep,
    principal: UsersRead,
    after: Annotated[str | None, Depends(USERS.after)],
    limit: Limit = 50,
) -> Page[UserPublic]:
    """Users of the caller's tenant, by id."""
    query = select(User).where(User.tenant_id == principal.tenant_id).order_by(col(User.id))
    if after is not None:
        query = query.where(col(User.id) > after)
    rows, next_cursor = USERS.page((await session.exec(query.limit(limit + 1))).all(), limit)
    return Page(items=[user_public(u) for u in rows], next_cursor=next_cursor)


@router.patch("/{user_id}", response_model=UserPublic, responses=problems(409))
async def update_user(
    user_id: str,
    body: UserUpdate,
    state: StateDep,
    session: SessionDep,
    principal: UsersManage,
) -> UserPublic:
    """Change a user's role; their refresh tokens are revoked."""
    user = await _member(session, principal, user_id)
    _forbid_escalation(principal, user.role)
    _forbid_escalation(principal, body.role)
    await _keep_an_owner(session, user, new_role=body.role)
    previous, user.role = user.role, body.role
    session.add(user)
    await state.refresh_tokens.revoke_user(session, user.id)
    audit(
        session,
        principal,
        action="user.role_changed",
        target_type="user",
        target_id=user.id,
        data={"from": previous, "to": body.role},
    )
    await session.commit()
    await state.caches.invalidate(PRINCIPALS)
    return user_public(user)


@router.delete("/{user_id}", status_code=204, response_class=Response, responses=problems(409))
async def delete_user(
    user_id: str,
    state: StateDep,
    session: SessionDep,
    principal: UsersManage,
) -> Response:
    """Remove a user: their tokens and API keys stop working."""
    user = await _member(session, principal, user_id)
    _forbid_escalation(principal, user.role)
    if user.id == principal.subject_id:
        raise ProblemError(409, "you cannot delete yourself", slug=ProblemType.CONFLICT)
    await _keep_an_owner(session, user, new_role=None)
    await state.refresh_tokens.forget_user(session, user.id)
    await session.exec(update(ApiKey).where(col(ApiKey.user_id) == user.id).values(user_id=None, revoked_at=utcnow()))
    audit(
        session,
        principal,
        action="user.deleted",
        target_type="user",
        target_id=user.id,
        data={"email_domain": user.email.split("@")[-1]},
    )
    await session.delete(user)
    await session.commit()
    await state.caches.invalidate(PRINCIPALS)
    return Response(status_code=204)
