"""Dependencies: state, database session, authenticated principal, permissions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from api.problems import ProblemError
from api.state import AppState
from core.db.repos import find_api_key
from core.roles import permissions_of
from core.security import hash_api_key


def get_state(request: Request) -> AppState:
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
    """Who is calling: always bound to exactly one tenant by verified credentials."""

    tenant_id: str
    role: str
    subject_id: str
    permissions: frozenset[str]


_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


async def get_principal(request: Request, state: StateDep) -> Principal:
    """Authenticate the ``Authorization: Bearer <api key>`` header.

    Verified keys are cached per replica for ``AIMPACT_CREDENTIAL_CACHE_S``.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProblemError(401, "missing bearer credentials", slug="unauthorized", headers=_UNAUTHORIZED)
    key_hash = hash_api_key(token.strip())
    principal: Principal | None = state.principals.get(key_hash)
    if principal is None:
        async with state.sessions() as session:
            key = await find_api_key(session, key_hash)
        if key is None:
            raise ProblemError(401, "invalid credentials", slug="unauthorized", headers=_UNAUTHORIZED)
        principal = Principal(
            tenant_id=key.tenant_id, role=key.role, subject_id=key.id, permissions=permissions_of(key.role)
        )
        state.principals.put(key_hash, principal)
    structlog.contextvars.bind_contextvars(tenant_id=principal.tenant_id)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(permission: str) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """Dependency that admits principals holding ``permission`` (403 otherwise)."""

    async def _check(principal: PrincipalDep) -> Principal:
        if permission not in principal.permissions:
            raise ProblemError(403, f"role {principal.role!r} lacks permission {permission!r}", slug="forbidden")
        return principal

    _check.permission = permission  # type: ignore[attr-defined]
    return _check
