"""Mass assignment, privilege escalation, quotas (429 + Retry-After), audit log, secrets stay secret."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from tests.conftest import TenantCtx
from tests.support.runs import create_agent, wait_run
from tests.support.users import PASSWORD, login, make_user
from workers.embedded.stack import StackProcess


async def _admin(stack: StackProcess) -> httpx.AsyncClient:
    token = (await login(stack, "admin@aimpact.local", stack.admin_password)).json()["access_token"]
    return httpx.AsyncClient(base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"})


async def test_mass_assignment_is_refused(tenant: TenantCtx, other_tenant: TenantCtx, engine: AsyncEngine) -> None:
    email = await make_user(engine, tenant.id, "viewer")
    user_id = next(u["id"] for u in (await tenant.http.get("/v1/users")).json()["items"] if u["email"] == email)
    for extra in ({"tenant_id": other_tenant.id}, {"is_admin": True}, {"id": "usr_mine"}, {"is_platform_admin": True}):
        patched = await tenant.http.patch(f"/v1/users/{user_id}", json={"role": "operator"} | extra)
        assert patched.status_code == 422, extra
        created = await tenant.http.post(
            "/v1/users",
            json={"email": f"x{uuid.uuid4().hex[:6]}@e.com", "password": PASSWORD, "role": "viewer"} | extra,
        )
        assert created.status_code == 422, extra
        key = await tenant.http.post("/v1/api-keys", json={"name": "k", "role": "viewer"} | extra)
        assert key.status_code == 422, extra
        agent = await tenant.http.post("/v1/agents", json={"name": "a"} | extra)
        assert agent.status_code == 422, extra
    users = {u["id"]: u for u in (await tenant.http.get("/v1/users")).json()["items"]}
    assert users[user_id]["role"] == "viewer"
    assert (await other_tenant.http.get("/v1/users")).json()["items"] == []


async def test_no_role_can_grant_above_itself(tenant: TenantCtx, engine: AsyncEngine) -> None:
    admin_key = await tenant.key_for(engine, "admin")
    headers = {"Authorization": f"Bearer {admin_key}"}
    owner_key = await tenant.http.post("/v1/api-keys", json={"name": "x", "role": "owner"}, headers=headers)
    assert owner_key.status_code == 403
    owner_user = await tenant.http.post(
        "/v1/users",
        json={"email": f"o{uuid.uuid4().hex[:6]}@e.com", "password": PASSWORD, "role": "owner"},
        headers=headers,
    )
    assert owner_user.status_code == 403
    assert (
        await tenant.http.post("/v1/api-keys", json={"name": "x", "role": "admin"}, headers=headers)
    ).status_code == 201


async def test_request_quota_bursting_tenant_gets_429_other_tenant_unaffected(
    stack: StackProcess, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    async with await _admin(stack) as admin:
        patched = await admin.patch(f"/v1/tenants/{tenant.id}", json={"quotas": {"requests_per_minute": 20}})
        assert patched.status_code == 200
        assert patched.json()["quotas"] == {"requests_per_minute": 20}

    async def burst(client: httpx.AsyncClient, n: int) -> list[httpx.Response]:
        return list(await asyncio.gather(*(client.get("/v1/agents") for _ in range(n))))

    started = time.time()
    noisy, quiet = await asyncio.gather(burst(tenant.http, 200), burst(other_tenant.http, 100))
    minutes = int(time.time() // 60) - int(started // 60) + 1  # a burst on a loaded machine may cross a minute
    limited = [r for r in noisy if r.status_code == 429]
    assert len(noisy) - len(limited) <= 20 * minutes
    assert all(int(r.headers["retry-after"]) >= 1 for r in limited)
    assert limited[0].headers["content-type"].startswith("application/problem+json")
    assert [r.status_code for r in quiet] == [200] * 100


async def test_concurrent_run_quota(stack: StackProcess, tenant: TenantCtx) -> None:
    async with await _admin(stack) as admin:
        await admin.patch(f"/v1/tenants/{tenant.id}", json={"quotas": {"concurrent_runs": 1}})
    agent = await create_agent(tenant.http, model={"provider": "local", "params": {"latency_ms": 1500}})
    first = await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "1+1"})
    assert first.status_code == 202
    second = await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "1+1"})
    assert second.status_code == 429
    assert "retry-after" in second.headers
    await wait_run(tenant.http, first.json()["id"])
    third = await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "1+1"})
    assert third.status_code == 202
    await wait_run(tenant.http, third.json()["id"])


async def test_audit_log_records_changes(tenant: TenantCtx, engine: AsyncEngine) -> None:
    agent = await create_agent(tenant.http)
    key = (await tenant.http.post("/v1/api-keys", json={"name": "ci", "role": "viewer"})).json()
    await tenant.http.delete(f"/v1/api-keys/{key['id']}")
    email = await make_user(engine, tenant.id, "viewer")
    user_id = next(u["id"] for u in (await tenant.http.get("/v1/users")).json()["items"] if u["email"] == email)
    await tenant.http.patch(f"/v1/users/{user_id}", json={"role": "developer"})
    await tenant.http.post("/v1/secrets", json={"name": "S", "value": "v"})
    events = (await tenant.http.get("/v1/audit-events")).json()["items"]
    actions = [(e["action"], e["target_id"]) for e in events]
    assert actions == [
        ("secret.written", "S"),
        ("user.role_changed", user_id),
        ("api_key.revoked", key["id"]),
        ("api_key.created", key["id"]),
        ("agent.created", agent["id"]),
    ]
    assert events[1]["data"] == {"from": "viewer", "to": "developer"}
    assert all(e["actor_kind"] == "api_key" for e in events)
    viewer = await tenant.key_for(engine, "viewer")
    denied = await tenant.http.get("/v1/audit-events", headers={"Authorization": f"Bearer {viewer}"})
    assert denied.status_code == 403


async def test_secret_canary_never_leaks(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    canary = f"sk-canary-{uuid.uuid4().hex}"
    stored = await tenant.http.post("/v1/secrets", json={"name": "OPENAI_KEY", "value": canary})
    assert stored.status_code == 201
    assert canary not in stored.text
    listed = await tenant.http.get("/v1/secrets")
    assert [s["name"] for s in listed.json()["items"]] == ["OPENAI_KEY"]
    replaced = await tenant.http.post("/v1/secrets", json={"name": "OPENAI_KEY", "value": canary + "2"})
    assert replaced.status_code == 201
    agent = await create_agent(
        tenant.http, instructions="use the key", model={"provider": "local", "api_key_secret": "OPENAI_KEY"}
    )
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "2+2"})).json()
    finished = await wait_run(tenant.http, run["id"])
    history = await temporal_client.get_workflow_handle(finished["temporal"]["workflow_id"]).fetch_history()
    assert canary not in history.to_json()
    audit = await tenant.http.get("/v1/audit-events")
    assert canary not in audit.text
    async with engine.connect() as conn:
        blob = (
            await conn.execute(text("select ciphertext from secret where tenant_id = :t"), {"t": tenant.id})
        ).scalar_one()
    assert canary.encode() not in blob
    for log in Path(stack.home, "logs").glob("*.log"):
        assert canary not in log.read_text(errors="replace"), log.name
    assert (await tenant.http.delete("/v1/secrets/OPENAI_KEY")).status_code == 204
    assert (await tenant.http.delete("/v1/secrets/OPENAI_KEY")).status_code == 404
