"""A hostile tenant cannot fill the optimizer queue: its live optimizer runs and replays are capped (429
naming the cap), concurrent starts cannot pass the cap, other tenants go on, a fire at the cap is recorded failed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from core.optimizer.schedules import optimizer_schedule_id
from core.settings import Settings
from tests.conftest import TenantCtx
from tests.optimizer.test_optimizer_schedules import _fired
from tests.support.runs import create_agent, wait_run
from tests.support.users import platform_admin_token
from workers.embedded.stack import StackProcess

SLOW = {"provider": "local", "params": {"latency_ms": 60_000}}
"""A model that takes a minute to answer: a run or replay on it stays live while the test looks."""
LIVE = ("queued", "running")


async def _slow_agent(tenant: TenantCtx) -> dict[str, Any]:
    """An agent on the slow model with a dataset of 6 labelled examples."""
    agent = await create_agent(tenant.http, model=SLOW, tools=[])
    examples = [{"input": f"question {i}", "expected": f"answer {i}"} for i in range(6)]
    built = await tenant.http.post(f"/v1/agents/{agent['id']}/datasets", json={"name": "d", "examples": examples})
    assert built.status_code == 201, built.text
    return agent


async def _cancel_all(http: httpx.AsyncClient, paths: list[str]) -> None:
    """Cancel what the test left live, so its slow model calls do not hold the worker."""
    for path in paths:
        await http.post(f"{path}/cancel")


@pytest.fixture
async def started(tenant: TenantCtx, other_tenant: TenantCtx) -> AsyncIterator[list[tuple[httpx.AsyncClient, str]]]:
    """Where each test records what it started (client, path); all of it is cancelled at the end."""
    found: list[tuple[httpx.AsyncClient, str]] = []
    yield found
    for client in (tenant.http, other_tenant.http):
        await _cancel_all(client, [path for owner, path in found if owner is client])


def _refused_naming(response: httpx.Response, quota: str, setting: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/quota-exceeded")
    assert int(response.headers["retry-after"]) > 0
    detail = response.json()["detail"]
    assert f"quotas.{quota}" in detail, detail
    assert setting in detail, detail


async def test_a_tenant_at_its_optimizer_run_cap_gets_429_while_another_tenant_still_starts_runs(
    tenant: TenantCtx, other_tenant: TenantCtx, started: list[tuple[httpx.AsyncClient, str]]
) -> None:
    cap = Settings().optimizer_max_live_runs
    agent = await _slow_agent(tenant)
    url = f"/v1/agents/{agent['id']}/optimizer/runs"

    answers = await asyncio.gather(*(tenant.http.post(url, json={}) for _ in range(cap + 4)))

    accepted = [a.json()["id"] for a in answers if a.status_code == 202]
    started += [(tenant.http, f"/v1/optimizer/runs/{run_id}") for run_id in accepted]
    assert len(accepted) == cap, [a.status_code for a in answers]
    for refused in (a for a in answers if a.status_code != 202):
        _refused_naming(refused, "concurrent_optimizer_runs", "AIMPACT_OPTIMIZER_MAX_LIVE_RUNS")
    listed = (await tenant.http.get("/v1/optimizer/runs", params={"agent_id": agent["id"]})).json()["items"]
    assert sorted(r["id"] for r in listed) == sorted(accepted), "a refused start records nothing"
    assert all(r["status"] in LIVE for r in listed)

    theirs = await _slow_agent(other_tenant)
    other = await other_tenant.http.post(f"/v1/agents/{theirs['id']}/optimizer/runs", json={})
    assert other.status_code == 202, other.text
    started.append((other_tenant.http, f"/v1/optimizer/runs/{other.json()['id']}"))

    cancelled = await tenant.http.post(f"/v1/optimizer/runs/{accepted[0]}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    for _ in range(600):  # a cancelled run frees its place once it has recorded `cancelled`
        if (await tenant.http.get(f"/v1/optimizer/runs/{accepted[0]}")).json()["status"] == "cancelled":
            break
        await asyncio.sleep(0.1)
    again = await tenant.http.post(url, json={})
    assert again.status_code == 202, again.text
    started.append((tenant.http, f"/v1/optimizer/runs/{again.json()['id']}"))


async def test_the_replay_cap_is_the_tenants_quota_when_it_sets_one(
    stack: StackProcess, tenant: TenantCtx, other_tenant: TenantCtx, started: list[tuple[httpx.AsyncClient, str]]
) -> None:
    admin = {"Authorization": f"Bearer {await platform_admin_token(stack)}"}
    capped = await tenant.http.patch(
        f"/v1/tenants/{tenant.id}", json={"quotas": {"concurrent_replays": 1}}, headers=admin
    )
    assert capped.status_code == 200, capped.text
    assert capped.json()["quotas"] == {"concurrent_replays": 1}

    async def replays_of(owner: TenantCtx, count: int) -> list[httpx.Response]:
        agent = await create_agent(owner.http)
        run = await wait_run(
            owner.http, (await owner.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "1 + 1"})).json()["id"]
        )
        assert run["status"] == "completed", run
        slow = await owner.http.patch(f"/v1/agents/{agent['id']}", json={"model": SLOW, "promote": False})
        assert slow.status_code == 200, slow.text
        body = {"version": 2, "run_ids": [run["id"]]}
        url = f"/v1/agents/{agent['id']}/replays"
        answers = await asyncio.gather(*(owner.http.post(url, json=body) for _ in range(count)))
        started.extend((owner.http, f"/v1/replays/{a.json()['id']}") for a in answers if a.status_code == 202)
        return list(answers)

    mine = await replays_of(tenant, 3)
    assert sorted(a.status_code for a in mine) == [202, 429, 429], [a.text for a in mine]
    for refused in (a for a in mine if a.status_code == 429):
        _refused_naming(refused, "concurrent_replays", "AIMPACT_REPLAY_MAX_LIVE")

    theirs = await replays_of(other_tenant, 2)
    assert [a.status_code for a in theirs] == [202, 202], "the default cap (4) of a tenant without its own"


async def test_a_scheduled_fire_at_the_cap_is_recorded_failed_naming_it(
    stack: StackProcess, tenant: TenantCtx, temporal_client: Client, started: list[tuple[httpx.AsyncClient, str]]
) -> None:
    admin = {"Authorization": f"Bearer {await platform_admin_token(stack)}"}
    quota = {"quotas": {"concurrent_optimizer_runs": 1}}
    assert (await tenant.http.patch(f"/v1/tenants/{tenant.id}", json=quota, headers=admin)).status_code == 200
    agent = await _slow_agent(tenant)
    busy = await tenant.http.post(f"/v1/agents/{agent['id']}/optimizer/runs", json={})
    assert busy.status_code == 202, busy.text
    started.append((tenant.http, f"/v1/optimizer/runs/{busy.json()['id']}"))
    put = await tenant.http.put(f"/v1/agents/{agent['id']}/optimizer/schedule", json={"cron": "0 3 * * *"})
    assert put.status_code == 200, put.text
    schedule_id = optimizer_schedule_id(tenant.id, agent["id"])

    await temporal_client.get_schedule_handle(schedule_id).trigger()
    run = await _fired(tenant, schedule_id)

    assert run["status"] == "failed", run
    assert run["error"]["type"] == "OptimizerRunQuotaExceeded", run["error"]
    assert "1 optimizer runs queued or running; the limit is 1" in run["error"]["message"]
    assert "quotas.concurrent_optimizer_runs" in run["error"]["message"]
    assert run["dataset_id"] is None, "no dataset is built for a fire that cannot run"
    datasets = (await tenant.http.get(f"/v1/agents/{agent['id']}/datasets")).json()["items"]
    assert len(datasets) == 1, "only the test's own"
    live = (await tenant.http.get("/v1/optimizer/runs", params={"agent_id": agent["id"]})).json()["items"]
    assert [r["id"] for r in live if r["status"] in LIVE] == [busy.json()["id"]], "never more than the cap"
