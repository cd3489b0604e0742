"""``/v1/secrets``: write-only tenant secrets (values are never returned)."""

from __future__ import annotations

from operator import attrgetter
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from api.audit import audit
from api.deps import SessionDep, StateDep
from api.identity_schemas import SecretCreate, SecretPublic
from api.pagination import ByText, Limit
from api.permissions import SecretsRead, SecretsWrite
from api.problem_types import ProblemType
from api.problems import ProblemError
from api.schemas import Page
from core.secrets import SecretStore

router = APIRouter(prefix="/v1/secrets", tags=["secrets"])
SECRETS = ByText("secrets", attrgetter("name"))


def _public(name: str, created_at: object, updated_at: object) -> SecretPublic:
    return SecretPublic.model_validate({"name": name, "created_at": created_at, "updated_at": updated_at})


@router.post("", status_code=201, response_model=SecretPublic)
async def put_secret(
    body: SecretCreate,
    state: StateDep,
    session: SessionDep,
    principal: SecretsWrite,
) -> SecretPublic:
    """Store (or replace) a secret, encrypted with the platform keyring."""
    row = await SecretStore(session, principal.tenant_id, state.keyring).put(body.name, body.value)
    audit(
        session,
        principal,
        action="secret.written",
        target_type="secret",
        target_id=body.name,
    )
    await session.commit()
    return _public(row.name, row.created_at, row.updated_at)


@router.get("", response_model=Page[SecretPublic])
async def list_secrets(
    state: StateDep,
    session: SessionDep,
    principal: SecretsRead,
    after: Annotated[str | None, Depends(SECRETS.after)],
    limit: Limit = 50,
) -> Page[SecretPublic]:
    """Names and dates of the tenant's secrets, by name."""
    found = await SecretStore(session, principal.tenant_id, state.keyring).list(limit=limit + 1, after=after)
    rows, next_cursor = SECRETS.page(found, limit)
    return Page(items=[_public(r.name, r.created_at, r.updated_at) for r in rows], next_cursor=next_cursor)


@router.delete("/{name}", status_code=204, response_class=Response)
async def delete_secret(
    name: Annotated[str, Path(max_length=100)],
    state: StateDep,
    session: SessionDep,
    principal: SecretsWrite,
) -> Response:
    """Delete a secret."""
    if not await SecretStore(session, principal.tenant_id, state.keyring).delete(name):
        raise ProblemError(404, f"secret {name} not found", slug=ProblemType.NOT_FOUND)
    audit(
        session,
        principal,
        action="secret.deleted",
        target_type="secret",
        target_id=name,
    )
    await session.commit()
    return Response(status_code=204)
