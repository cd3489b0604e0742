"""Sign-in, token rotation and reuse detection, logout, throttling, /v1/me, JWKS."""

from __future__ import annotations

import uuid

import httpx
import jwt
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import TenantCtx
from tests.support.users import PASSWORD, login, make_user
from workers.embedded.stack import StackProcess


async def test_login_me_and_tenant_scope(stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine) -> None:
    email = await make_user(engine, tenant.id, "operator")
    response = await login(stack, email)
    assert response.status_code == 200
    pair = response.json()
    assert pair["token_type"] == "bearer"
    assert 0 < pair["expires_in"] <= 3600
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {pair['access_token']}"}
    ) as c:
        me = (await c.get("/v1/me")).json()
        assert me["email"] == email
        assert me["tenant_id"] == tenant.id
        assert me["role"] == "operator"
        assert "runs:start" in me["permissions"]
        assert "agents:write" not in me["permissions"]
        assert (await c.get("/v1/runs")).status_code == 200


async def test_refresh_rotates_and_reuse_revokes_the_family(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine
) -> None:
    email = await make_user(engine, tenant.id)
    first = (await login(stack, email)).json()
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        second = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert second.status_code == 200
        second_pair = second.json()
        assert second_pair["refresh_token"] != first["refresh_token"]

        reused = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert reused.status_code == 401
        # the whole family is revoked: the legitimately rotated token no longer works either
        after = await client.post("/v1/auth/refresh", json={"refresh_token": second_pair["refresh_token"]})
        assert after.status_code == 401


async def test_logout_revokes(stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine) -> None:
    email = await make_user(engine, tenant.id)
    pair = (await login(stack, email)).json()
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        assert (await client.post("/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})).status_code == 204
        assert (await client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})).status_code == 401


async def test_wrong_password_then_throttle(stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine) -> None:
    email = await make_user(engine, tenant.id)
    for _ in range(5):
        response = await login(stack, email, "wrong password")
        assert response.status_code == 401
    throttled = await login(stack, email)
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    unknown = await login(stack, "nobody@example.com", "x")
    assert unknown.status_code == 401


async def test_platform_admin_creates_tenant_whose_owner_signs_in(stack: StackProcess) -> None:
    admin = (await login(stack, "admin@aimpact.local", stack.admin_password)).json()
    headers = {"Authorization": f"Bearer {admin['access_token']}"}
    owner_email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers) as client:
        me = (await client.get("/v1/me")).json()
        assert me["role"] == "platform_admin"
        assert me["tenant_id"] is None
        created = await client.post(
            "/v1/tenants", json={"name": "Acme", "owner_email": owner_email, "owner_password": PASSWORD}
        )
        assert created.status_code == 201
        tenant_id = created.json()["id"]
        assert (await client.get("/v1/runs")).status_code == 403, "platform admins see no tenant's data"
    owner = (await login(stack, owner_email)).json()
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {owner['access_token']}"}
    ) as client:
        assert (await client.get("/v1/me")).json()["tenant_id"] == tenant_id
        assert (await client.get(f"/v1/tenants/{tenant_id}")).status_code == 200
        patch = await client.patch(f"/v1/tenants/{tenant_id}", json={"quotas": {"requests_per_minute": 1}})
        assert patch.status_code == 403


async def test_jwks_is_public_and_empty_for_hs256(stack: StackProcess) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        assert (await client.get("/.well-known/jwks.json")).json() == {"keys": []}


async def test_validly_signed_token_with_another_tenants_tid_is_401(
    stack: StackProcess, tenant: TenantCtx, other_tenant: TenantCtx, engine: AsyncEngine
) -> None:
    from core.auth.jwt_keys import JwtService
    from core.settings import Settings

    email = await make_user(engine, tenant.id)
    me = (await login(stack, email)).json()
    user_id = jwt.decode(me["access_token"], options={"verify_signature": False})["sub"]
    signer = JwtService(Settings(home=stack.home))  # the key the stack generated: this signature is valid
    forged = signer.issue(subject=user_id, tenant_id=other_tenant.id)
    genuine = signer.issue(subject=user_id, tenant_id=tenant.id)
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        assert (await client.get("/v1/runs", headers={"Authorization": f"Bearer {forged}"})).status_code == 401
        assert (await client.get("/v1/runs", headers={"Authorization": f"Bearer {genuine}"})).status_code == 200
        unknown = signer.issue(subject="usr_nobody", tenant_id=tenant.id)
        assert (await client.get("/v1/runs", headers={"Authorization": f"Bearer {unknown}"})).status_code == 401
        expired = pyjwt_expired(user_id, tenant.id, Settings(home=stack.home).jwt_secrets[0])
        assert (await client.get("/v1/runs", headers={"Authorization": f"Bearer {expired}"})).status_code == 401


def pyjwt_expired(user_id: str, tenant_id: str, secret: str) -> str:
    """A token signed with the stack's key that expired a minute ago."""
    import time

    from core.auth.jwt_keys import hs_kid

    now = int(time.time())
    claims = {
        "iss": "aimpact",
        "aud": "aimpact-api",
        "iat": now - 120,
        "exp": now - 60,
        "sub": user_id,
        "tid": tenant_id,
    }
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": hs_kid(secret)})
