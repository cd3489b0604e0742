"""A hostile tenant cannot forge tokens, learn platform ids, lock its tenant out, or probe others' threads."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.auth.jwt_keys import JwtService, hs_kid
from core.home_keys import LEGACY_DEV_JWT_SECRET
from core.settings import Settings
from tests.conftest import TenantCtx
from tests.support.runs import create_agent, wait_run
from tests.support.users import PASSWORD, login, make_user
from workers.embedded.stack import StackProcess

ADMIN_EMAIL = "admin@aimpact.local"


async def _admin(stack: StackProcess) -> httpx.AsyncClient:
    token = (await login(stack, ADMIN_EMAIL, stack.admin_password)).json()["access_token"]
    return httpx.AsyncClient(base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"})


def _claims(sub: str, tid: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": "aimpact", "aud": "aimpact-api", "iat": now, "exp": now + 600, "sub": sub, "tid": tid, **extra}


async def _status(stack: StackProcess, method: str, path: str, token: str, **kw: Any) -> int:
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        response = await client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)
        return response.status_code


async def test_platform_admin_forgery_with_public_or_guessed_keys_is_refused(
    stack: StackProcess, tenant: TenantCtx
) -> None:
    async with await _admin(stack) as admin:
        admin_id = (await admin.get("/v1/me")).json()["user_id"]
        created = await admin.post(
            "/v1/tenants",
            json={"name": "victim", "owner_email": f"v-{uuid.uuid4().hex[:8]}@e.com", "owner_password": PASSWORD},
        )
        assert created.status_code == 201
    stack_secret = Settings(home=stack.home).jwt_secrets[0]
    assert stack_secret != LEGACY_DEV_JWT_SECRET
    body = {"name": "forged", "owner_email": f"f-{uuid.uuid4().hex[:8]}@e.com", "owner_password": PASSWORD}
    claims = _claims(admin_id, "platform", plat=True)
    for kid in (hs_kid(LEGACY_DEV_JWT_SECRET), hs_kid(stack_secret)):
        forged = jwt.encode(claims, LEGACY_DEV_JWT_SECRET, algorithm="HS256", headers={"kid": kid})
        assert await _status(stack, "POST", "/v1/tenants", forged, json=body) == 401
        assert await _status(stack, "GET", f"/v1/tenants/{created.json()['id']}", forged) == 401


async def test_tenant_audit_log_shows_the_platform_never_a_platform_user(stack: StackProcess) -> None:
    async with await _admin(stack) as admin:
        admin_id = (await admin.get("/v1/me")).json()["user_id"]
        owner_email = f"o-{uuid.uuid4().hex[:8]}@e.com"
        created = (
            await admin.post("/v1/tenants", json={"name": "t", "owner_email": owner_email, "owner_password": PASSWORD})
        ).json()
        assert (await admin.patch(f"/v1/tenants/{created['id']}", json={"name": "renamed"})).status_code == 200
    token = (await login(stack, owner_email)).json()["access_token"]
    async with httpx.AsyncClient(base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}) as owner:
        events = (await owner.get("/v1/audit-events")).json()["items"]
    assert {e["action"] for e in events} >= {"tenant.created", "tenant.updated"}
    assert all(e["actor_id"] == "platform" and e["actor_kind"] == "platform" for e in events), events
    assert admin_id not in str(events)


async def test_a_validly_signed_token_cannot_claim_a_role_its_user_lacks(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine
) -> None:
    signer = JwtService(Settings(home=stack.home))
    email = await make_user(engine, tenant.id, "owner")
    user_id = jwt.decode((await login(stack, email)).json()["access_token"], options={"verify_signature": False})["sub"]
    assert await _status(stack, "GET", "/v1/me", signer.issue(subject=user_id, tenant_id=tenant.id)) == 200
    as_platform = signer.issue(subject=user_id, tenant_id="platform", platform=True)
    assert await _status(stack, "GET", "/v1/me", as_platform) == 401
    flagged = signer.issue(subject=user_id, tenant_id=tenant.id, platform=True)
    assert await _status(stack, "GET", "/v1/me", flagged) == 401
    admin_token = (await login(stack, ADMIN_EMAIL, stack.admin_password)).json()["access_token"]
    admin_id = jwt.decode(admin_token, options={"verify_signature": False})["sub"]
    unflagged_admin = signer.issue(subject=admin_id, tenant_id="platform")  # a platform user without the flag
    assert await _status(stack, "GET", "/v1/me", unflagged_admin) == 401
    assert await _status(stack, "GET", "/v1/me", admin_token) == 200


async def test_the_last_owner_cannot_be_deleted_or_demoted(tenant: TenantCtx, engine: AsyncEngine) -> None:
    email = await make_user(engine, tenant.id, "owner")
    users = (await tenant.http.get("/v1/users")).json()["items"]
    owner_id = next(u["id"] for u in users if u["email"] == email)
    deleted = await tenant.http.delete(f"/v1/users/{owner_id}")
    assert deleted.status_code == 409
    assert deleted.json()["type"].endswith("/last-owner")
    assert (await tenant.http.patch(f"/v1/users/{owner_id}", json={"role": "admin"})).status_code == 409
    assert (await tenant.http.patch(f"/v1/users/{owner_id}", json={"role": "owner"})).status_code == 200
    second = await tenant.http.post(
        "/v1/users", json={"email": f"s-{uuid.uuid4().hex[:8]}@e.com", "password": PASSWORD, "role": "owner"}
    )
    assert second.status_code == 201
    assert (await tenant.http.delete(f"/v1/users/{owner_id}")).status_code == 204
    assert (await tenant.http.delete(f"/v1/users/{second.json()['id']}")).status_code == 409


async def test_platform_admin_adds_or_resets_an_owner(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine
) -> None:
    email = await make_user(engine, tenant.id, "viewer")
    before = (await login(stack, email)).json()
    async with await _admin(stack) as admin:
        reset = await admin.post(
            f"/v1/tenants/{tenant.id}/owners", json={"email": email, "password": "a-new-long-password"}
        )
        assert reset.status_code == 200, reset.text
        assert reset.json()["role"] == "owner"
        added_email = f"n-{uuid.uuid4().hex[:8]}@e.com"
        added = await admin.post(f"/v1/tenants/{tenant.id}/owners", json={"email": added_email, "password": PASSWORD})
        assert added.status_code == 201
        foreign = await admin.post(f"/v1/tenants/{tenant.id}/owners", json={"email": ADMIN_EMAIL, "password": PASSWORD})
        assert foreign.status_code == 409
        assert (
            await admin.post("/v1/tenants/ten_nope/owners", json={"email": email, "password": PASSWORD})
        ).status_code == 404
        assert (await admin.post(f"/v1/tenants/{tenant.id}/owners", json={"email": "bad"})).status_code == 422
    assert (await login(stack, email)).status_code == 401  # the old password no longer works
    assert (await login(stack, email, "a-new-long-password")).status_code == 200
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": before["refresh_token"]})
        assert refreshed.status_code == 401  # sessions from before the reset are revoked
    assert (await login(stack, added_email)).status_code == 200
    assert (
        await tenant.http.post(f"/v1/tenants/{tenant.id}/owners", json={"email": email, "password": PASSWORD})
    ).status_code == 403


async def _thread_seqs(http: httpx.AsyncClient, thread_id: str) -> list[int]:
    agent = await create_agent(http)
    run = (await http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "2+2", "thread_id": thread_id})).json()
    assert (await wait_run(http, run["id"]))["status"] == "completed"
    return [m["seq"] for m in (await http.get(f"/v1/threads/{thread_id}/messages")).json()["items"]]


async def test_another_tenants_thread_id_is_indistinguishable_from_a_new_one(
    tenant: TenantCtx, other_tenant: TenantCtx, engine: AsyncEngine
) -> None:
    shared = f"thr_{uuid.uuid4().hex[:20]}"
    owner_seqs = await _thread_seqs(tenant.http, shared)
    assert owner_seqs[0] == 1
    assert (await other_tenant.http.get(f"/v1/threads/{shared}/messages")).status_code == 404
    probing = await _thread_seqs(other_tenant.http, shared)
    fresh = await _thread_seqs(other_tenant.http, f"thr_{uuid.uuid4().hex[:20]}")
    assert probing == fresh
    assert probing[0] == 1
    async with engine.connect() as conn:
        rows = (
            await conn.execute(text("select count(*) from thread_message where thread_id = :t"), {"t": shared})
        ).one()
    assert rows[0] == len(owner_seqs) + len(probing)
    assert (await tenant.http.get(f"/v1/threads/{shared}/messages")).json()["items"][-1]["seq"] == owner_seqs[-1]
