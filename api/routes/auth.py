"""Sign-in: access + refresh tokens, rotation, logout, ``/v1/me`` and the JWKS document."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import SessionDep, StateDep
from api.identity_schemas import Me, RefreshRequest, TokenPair, TokenRequest
from api.permissions import Authenticated
from api.problem_types import ProblemType, problems
from api.problems import ProblemError
from api.state import AppState
from core.auth.jwt_keys import TokenError
from core.db.models import User
from core.roles import PLATFORM_TENANT
from core.security import verify_password

router = APIRouter(tags=["auth"])
PUBLIC_ROUTES = frozenset(
    {
        ("POST", "/v1/auth/token"),
        ("POST", "/v1/auth/refresh"),
        ("POST", "/v1/auth/logout"),
        ("POST", "/v1/auth/session"),
        ("POST", "/v1/auth/session/refresh"),
        ("POST", "/v1/auth/session/logout"),
        ("GET", "/.well-known/jwks.json"),
    }
)
_DUMMY_HASH = "$argon2id$v=19$m=19456,t=2,p=1$6YiF5YEKdHMo8vU4dvInEg$3hcxOMOX2euvMY/lnN/PXPVJBSrGbN27sMBzSCF4cD8"
"""Verified against when the email is unknown, so both cases cost one argon2 check."""


def access_token(state: AppState, user: User) -> str:
    """A signed access token for ``user`` (its tenant, or the platform)."""
    tenant = PLATFORM_TENANT if user.is_platform_admin else str(user.tenant_id)
    return state.jwt.issue(subject=user.id, tenant_id=tenant, platform=user.is_platform_admin)


def _pair(state: AppState, user: User, refresh_token: str) -> TokenPair:
    return TokenPair(access_token=access_token(state, user), refresh_token=refresh_token, expires_in=state.jwt.ttl_s)


@router.post("/v1/auth/token", response_model=TokenPair, responses=problems(401, 429))
async def issue_token(body: TokenRequest, request: Request, state: StateDep, session: SessionDep) -> TokenPair:
    """Exchange email + password for tokens; throttled per account and per client IP."""
    user = await sign_in(body, request, state, session)
    return _pair(state, user, await state.refresh_tokens.issue(session, user))


async def sign_in(body: TokenRequest, request: Request, state: AppState, session: AsyncSession) -> User:
    """The user of ``body``'s email and password (401 otherwise); failures are throttled per account and IP."""
    ip = request.client.host if request.client else "unknown"
    wait = await state.login_throttle.retry_after(body.email, ip)
    if wait is not None:
        raise ProblemError(
            429, "too many failed sign-ins", slug=ProblemType.LOGIN_THROTTLED, headers={"Retry-After": str(wait)}
        )
    user = (await session.exec(select(User).where(User.email == body.email.lower()))).first()
    valid = verify_password(user.password_hash if user else _DUMMY_HASH, body.password)
    if user is None or not valid:
        await state.login_throttle.failed(body.email, ip)
        raise ProblemError(401, "wrong email or password", slug=ProblemType.UNAUTHORIZED)
    await state.login_throttle.succeeded(body.email)
    return user


@router.post("/v1/auth/refresh", response_model=TokenPair, responses=problems(401))
async def refresh(body: RefreshRequest, state: StateDep, session: SessionDep) -> TokenPair:
    """Rotate a refresh token; reusing a spent one revokes its whole family."""
    try:
        user, successor = await state.refresh_tokens.rotate(session, body.refresh_token)
    except TokenError as exc:
        raise ProblemError(401, str(exc), slug=ProblemType.UNAUTHORIZED) from None
    return _pair(state, user, successor)


@router.post("/v1/auth/logout", status_code=204, response_class=Response)
async def logout(body: RefreshRequest, state: StateDep, session: SessionDep) -> Response:
    """Revoke the refresh token's family."""
    await state.refresh_tokens.revoke(session, body.refresh_token)
    return Response(status_code=204)


@router.get("/v1/me", response_model=Me)
async def me(principal: Authenticated) -> Me:
    """Who the credentials belong to and what they may do."""
    return Me(
        user_id=principal.subject_id if principal.kind == "user" else None,
        api_key_id=principal.subject_id if principal.kind == "api_key" else None,
        email=principal.email,
        tenant_id=None if principal.is_platform_admin else principal.tenant_id,
        role=principal.role,
        permissions=sorted(principal.permissions),
    )


@router.get("/.well-known/jwks.json")
async def jwks(state: StateDep) -> dict[str, Any]:
    """Public keys that verify access tokens (empty with HS256)."""
    return state.jwt.jwks()
