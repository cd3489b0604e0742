"""Dependencies: state, database session, authenticated principal, permissions, quotas."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import structlog
from fastapi import Depends, Request
from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api.problem_types import ProblemType
from api.problems import ProblemError
from api.state import AppState
from core.auth.jwt_keys import TokenError
from core.db.models import ApiKey, Tenant, User, utcnow
from core.db.repos import find_api_key
from core.quotas import QuotaExceededError, Quotas
from core.roles import PLATFORM_ADMIN, PLATFORM_TENANT, Permission, permissions_of
from core.security import API_KEY_PREFIX, hash_api_key

log = structlog.get_logger(__name__)


async def get_state(request: Request) -> AppState:
    """The application's shared resources."""
    state: AppState = request.app.state.aimpact
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    """A database session for one request."""
    async with state.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


@dataclass(frozen=True)
class Principal:
    """Who is calling: bound to exactly one tenant (or the platform) by verified credentials."""

    tenant_id: str
    role: str
    subject_id: str
    kind: Literal["user", "api_key"]
    permissions: frozenset[str]
    email: str | None = None

    @property
    def is_platform_admin(self) -> bool:
        """Platform administrators manage tenants and see no tenant's data."""
        return self.role == PLATFORM_ADMIN


_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def _unauthorized(detail: str = "invalid credentials") -> ProblemError:
    return ProblemError(401, detail, slug=ProblemType.UNAUTHORIZED, headers=_UNAUTHORIZED)


async def _principal_from_api_key(state: AppState, token: str) -> Principal:
    key_hash = hash_api_key(token)
    cached: Principal | None = state.principals.get(key_hash)
    if cached is not None:
        return cached
    read_at = state.principals.generation
    async with state.sessions() as session:
        key = await find_api_key(session, key_hash)
        if key is None:
            raise _unauthorized()
        await session.exec(update(ApiKey).where(col(ApiKey.id) == key.id).values(last_used_at=utcnow()))
        await session.commit()
    principal = Principal(
        tenant_id=key.tenant_id,
        role=key.role,
        subject_id=key.id,
        kind="api_key",
        permissions=permissions_of(key.role),
    )
    state.principals.put(key_hash, principal, read_at)
    return principal


async def _principal_from_jwt(state: AppState, token: str) -> Principal:
    try:
        claims = state.jwt.verify(token)
    except TokenError as exc:
        log.info("token rejected", reason=str(exc))
        raise _unauthorized() from None
    return await principal_from_claims(state, claims)


async def principal_from_claims(state: AppState, claims: dict[str, Any]) -> Principal:
    """The principal of verified token claims, bound to the stored user (401 on any mismatch).

    ``sub`` must name a stored user, ``tid`` must be that user's tenant (``platform`` for
    platform administrators) and ``plat`` must equal the user's platform flag, so a token
    can never claim a tenant or a platform role its user does not have.
    """
    cache_key = f"user:{claims['sub']}"
    user: User | None = state.principals.get(cache_key)
    if user is None:
        read_at = state.principals.generation
        async with state.sessions() as session:
            user = await session.get(User, claims["sub"])
        if user is None:
            raise _unauthorized()
        state.principals.put(cache_key, user, read_at)
    if claims.get("plat", False) is not user.is_platform_admin:
        log.info("token rejected", reason="platform flag does not match the user")
        raise _unauthorized()
    if user.is_platform_admin:
        if claims["tid"] != PLATFORM_TENANT:
            raise _unauthorized()
        return Principal(
            tenant_id=PLATFORM_TENANT,
            role=PLATFORM_ADMIN,
            subject_id=user.id,
            kind="user",
            permissions=permissions_of(PLATFORM_ADMIN),
            email=user.email,
        )
    if user.tenant_id is None or claims["tid"] != user.tenant_id:
        raise _unauthorized()
    return Principal(
        tenant_id=user.tenant_id,
        role=user.role,
        subject_id=user.id,
        kind="user",
        permissions=permissions_of(user.role),
        email=user.email,
    )


async def tenant_quotas(state: AppState, tenant_id: str) -> Quotas:
    """Effective quotas of a tenant (cached per replica like credentials)."""
    cache_key = f"quotas:{tenant_id}"
    quotas: Quotas | None = state.principals.get(cache_key)
    if quotas is None:
        read_at = state.principals.generation
        async with state.sessions() as session:
            tenant = await session.get(Tenant, tenant_id)
        quotas = Quotas.of(tenant.quotas if tenant else {}, state.settings)
        state.principals.put(cache_key, quotas, read_at)
    return quotas


def too_many_requests(exc: QuotaExceededError) -> ProblemError:
    """The 429 problem for a quota error."""
    return ProblemError(429, str(exc), slug=ProblemType.QUOTA_EXCEEDED, headers={"Retry-After": str(exc.retry_after_s)})


async def get_principal(request: Request, state: StateDep) -> Principal:
    """Authenticate ``Authorization: Bearer <jwt | api key>`` and count the request against quotas."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("missing bearer credentials")
    return await principal_from_token(state, token)


async def principal_from_token(state: AppState, token: str) -> Principal:
    """Authenticate a JWT or API key (401 problem otherwise) and count the request against quotas (429)."""
    if token.startswith(API_KEY_PREFIX):
        principal = await _principal_from_api_key(state, token)
    else:
        principal = await _principal_from_jwt(state, token)
    structlog.contextvars.bind_contextvars(tenant_id=principal.tenant_id)
    if not principal.is_platform_admin:
        quotas = await tenant_quotas(state, principal.tenant_id)
        try:
            await state.rate_limiter.hit(principal.tenant_id, quotas.requests_per_minute)
        except QuotaExceededError as exc:
            raise too_many_requests(exc) from None
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(permission: str) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """Dependency that admits principals holding ``permission`` (403 otherwise).

    Routes declare it through an alias of ``api.permissions`` (``principal: RunsRead``).
    ``permission`` must name a :class:`~core.roles.Permission`: a misspelt one fails at
    import. The permission is attached to the dependency so that tests can read every
    route's declared permission from the app's route table.
    """
    needed = Permission(permission)

    async def _check(principal: PrincipalDep) -> Principal:
        if needed not in principal.permissions:
            raise ProblemError(
                403, f"role {principal.role!r} lacks permission {needed.value!r}", slug=ProblemType.FORBIDDEN
            )
        return principal

    _check.permission = needed  # type: ignore[attr-defined]
    return _check
