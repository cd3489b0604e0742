"""Two API processes on one stack behave as one API: credentials, roles and quotas changed
through one take effect in both within a second; idempotency keys, rate limits and event
streams hold across them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.events import FINAL_EVENTS
from tests.conftest import TenantCtx
from tests.support.runs import create_agent, wait_run
from tests.support.users import login, make_user, platform_admin_token
from workers.embedded.stack import StackProcess

PROPAGATION_S = 1.0
"""How soon a change made through one API process must hold in every other."""


@pytest.fixture
async def replica(second_api: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the second API process (no credentials of its own)."""
    async with httpx.AsyncClient(base_url=second_api, timeout=30) as client:
        yield client


async def within(seconds: float, check: Callable[[], Awaitable[bool]]) -> float:
    """Poll ``check`` until it holds; the seconds it took, or ``AssertionError`` after ``seconds``."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not in effect after {seconds} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_a_revoked_key_stops_working_in_every_process_within_a_second(
    tenant: TenantCtx, replica: httpx.AsyncClient
) -> None:
    created = await tenant.http.post("/v1/api-keys", json={"name": "short-lived", "role": "developer"})
    assert created.status_code == 201, created.text
    key = {"Authorization": f"Bearer {created.json()['key']}"}
    clients = (tenant.http, replica)
    for client in clients:  # each process has now verified (and cached) the key
        for _ in range(2):
            assert (await client.get("/v1/me", headers=key)).status_code == 200

    assert (await tenant.http.delete(f"/v1/api-keys/{created.json()['id']}")).status_code == 204

    for client in clients:
        await within(PROPAGATION_S, lambda c=client: _status_is(c, "/v1/me", key, 401))


async def test_a_changed_role_holds_in_every_process_within_a_second(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine, replica: httpx.AsyncClient
) -> None:
    email = await make_user(engine, tenant.id, role="viewer")
    token = (await login(stack, email)).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    clients = (tenant.http, replica)
    for client in clients:
        me = await client.get("/v1/me", headers=bearer)
        assert me.json()["role"] == "viewer", me.text
    user_id = me.json()["user_id"]

    changed = await replica.patch(f"/v1/users/{user_id}", json={"role": "developer"}, headers=_owner(tenant))
    assert changed.status_code == 200, changed.text

    async def developer(client: httpx.AsyncClient) -> bool:
        return (await client.get("/v1/me", headers=bearer)).json()["role"] == "developer"

    for client in clients:
        await within(PROPAGATION_S, lambda c=client: developer(c))


async def test_a_request_quota_is_counted_over_both_processes_and_a_raise_holds_within_a_second(
    stack: StackProcess, tenant: TenantCtx, replica: httpx.AsyncClient
) -> None:
    admin = {"Authorization": f"Bearer {await platform_admin_token(stack)}"}
    quota = {"quotas": {"requests_per_minute": 6}}
    assert (await tenant.http.patch(f"/v1/tenants/{tenant.id}", json=quota, headers=admin)).status_code == 200
    clients = (tenant.http, replica)
    owner = _owner(tenant)

    started = time.time()
    burst = await asyncio.gather(*(c.get("/v1/agents", headers=owner) for c in clients for _ in range(10)))
    minutes = int(time.time() // 60) - int(started // 60) + 1  # a burst on a loaded machine may cross a minute
    assert {r.status_code for r in burst} == {200, 429}
    assert sum(r.status_code == 200 for r in burst) <= 6 * minutes, "one limit, counted over both processes"

    quota = {"quotas": {"requests_per_minute": 1000}}
    assert (await replica.patch(f"/v1/tenants/{tenant.id}", json=quota, headers=admin)).status_code == 200
    for client in clients:  # each process had cached 6 and used it up
        await within(PROPAGATION_S, lambda c=client: _status_is(c, "/v1/agents", owner, 200))


async def test_an_idempotency_key_raced_across_processes_starts_one_run(
    tenant: TenantCtx, replica: httpx.AsyncClient
) -> None:
    agent = await create_agent(tenant.http)
    url, body = f"/v1/agents/{agent['id']}/runs", {"input": "5 * 5"}
    headers = _owner(tenant) | {"Idempotency-Key": "raced-across-processes"}
    answers = await asyncio.gather(
        *(client.post(url, json=body, headers=headers) for client in (tenant.http, replica, tenant.http, replica))
    )
    assert [a.status_code for a in answers] == [202] * 4, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    await wait_run(tenant.http, answers[0].json()["id"])
    listed = (await replica.get("/v1/runs", params={"agent_id": agent["id"]}, headers=_owner(tenant))).json()
    assert [r["id"] for r in listed["items"]] == [answers[0].json()["id"]]


async def test_a_run_started_through_one_process_is_followed_to_its_end_through_the_other(
    tenant: TenantCtx, replica: httpx.AsyncClient
) -> None:
    agent = await create_agent(tenant.http, model={"provider": "local", "params": {"latency_ms": 300}})
    started = await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "6 * 7"})
    assert started.status_code == 202, started.text

    events: list[str] = []
    async with replica.stream("GET", f"/v1/runs/{started.json()['id']}/events", headers=_owner(tenant)) as stream:
        assert stream.status_code == 200
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                events.append(line[7:])
                if events[-1] in FINAL_EVENTS:
                    break

    assert events[-1] == "run.completed", events
    assert "step.completed" in events
    run = await wait_run(tenant.http, started.json()["id"])
    assert run["output"] == "Result — calculator: 42"


async def test_an_agent_change_holds_for_runs_started_through_every_process_within_a_second(
    tenant: TenantCtx, replica: httpx.AsyncClient
) -> None:
    agent = await create_agent(tenant.http)
    runs = f"/v1/agents/{agent['id']}/runs"

    async def started_with(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(runs, json={"input": "2 + 2"}, headers=_owner(tenant))

    async def replica_starts_version(version: int) -> bool:
        response = await started_with(replica)
        assert response.status_code == 202, response.text
        return bool(response.json()["agent_version"] == version)

    for client in (tenant.http, replica):  # each process has now looked the agent up (and cached it)
        assert (await started_with(client)).json()["agent_version"] == 1

    patched = await tenant.http.patch(f"/v1/agents/{agent['id']}", json={"instructions": "Be brief."})
    assert patched.status_code == 200, patched.text
    await within(PROPAGATION_S, lambda: replica_starts_version(2))

    rolled_back = await tenant.http.post(f"/v1/agents/{agent['id']}/versions/1/promote")
    assert rolled_back.status_code == 200, rolled_back.text
    await within(PROPAGATION_S, lambda: replica_starts_version(1))

    assert (await tenant.http.delete(f"/v1/agents/{agent['id']}")).status_code == 204
    await within(PROPAGATION_S, lambda: _answers(started_with(replica), 409))


async def _answers(request: Awaitable[httpx.Response], status: int) -> bool:
    return (await request).status_code == status


async def _status_is(client: httpx.AsyncClient, path: str, headers: dict[str, str], status: int) -> bool:
    return (await client.get(path, headers=headers)).status_code == status


def _owner(tenant: TenantCtx) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.key}"}
