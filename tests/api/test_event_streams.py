"""Many open SSE streams: they hold no database connection, are not cut, and are limited per tenant."""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import TenantCtx
from tests.support.runs import create_agent, until, wait_for

OLD_POOL_CAPACITY = 40  # pool_size 20 + 20 overflow: one open stream used to hold one of these
STREAMS_PER_TENANT = 100  # the default of AIMPACT_STREAMS_PER_TENANT
HOLD_S = 22  # streams used to be cut every 5 s; the default keep-alive comes every 15 s


@dataclass
class Follower:
    """One SSE client: what it received and whether its stream ended."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    events: list[str] = field(default_factory=list)
    keepalives: int = 0
    ended: bool = False

    async def follow(self, http: httpx.AsyncClient, run_id: str) -> None:
        """Read the stream until the server ends it."""
        async with http.stream("GET", f"/v1/runs/{run_id}/events") as response:
            self.status, self.headers = response.status_code, dict(response.headers)
            if response.status_code != 200:
                self.body = await response.aread()
                return
            async for line in response.aiter_lines():
                if line == ": keep-alive":
                    self.keepalives += 1
                elif line.startswith("event: "):
                    self.events.append(line[7:])
        self.ended = True


Streams = tuple[list[Follower], list[asyncio.Task[None]]]


def stream_client(tenant: TenantCtx, streams: int) -> httpx.AsyncClient:
    """A client of ``tenant`` that can hold ``streams`` streams at once."""
    return httpx.AsyncClient(
        base_url=str(tenant.http.base_url),
        headers={"Authorization": f"Bearer {tenant.key}"},
        timeout=httpx.Timeout(10, read=40),
        limits=httpx.Limits(max_connections=streams + 10, max_keepalive_connections=10),
    )


async def waiting_run(tenant: TenantCtx) -> dict[str, Any]:
    """A run that stays in flight: it waits for an approval that nobody gives."""
    agent = await create_agent(tenant.http, tools=[{"name": "calculator", "requires_approval": True}])
    run: dict[str, Any] = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "6 * 7"})).json()
    await wait_for(tenant, run["id"], lambda r: r["status"] == "waiting_approval")
    return run


async def open_streams(http: httpx.AsyncClient, run_id: str, count: int) -> Streams:
    """``count`` streams on ``run_id``, each answered (any status) within 15 s."""
    followers = [Follower() for _ in range(count)]
    tasks = [asyncio.create_task(f.follow(http, run_id)) for f in followers]
    answered = await until(lambda: all(f.status is not None for f in followers), 15)
    assert answered, f"{sum(f.status is None for f in followers)} of {count} streams got no response in 15 s"
    return followers, tasks


async def close_all(tasks: list[asyncio.Task[None]]) -> None:
    """Disconnect every stream still open."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_open_streams_hold_no_database_connection_and_are_not_cut(
    tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    run = await waiting_run(tenant)
    other_agent = await create_agent(other_tenant.http)
    async with stream_client(tenant, OLD_POOL_CAPACITY + 20) as http:
        followers, tasks = await open_streams(http, run["id"], OLD_POOL_CAPACITY + 20)
        try:
            assert {f.status for f in followers} == {200}
            opened = time.monotonic()
            while time.monotonic() - opened < HOLD_S:
                for path in ("/v1/agents", f"/v1/agents/{other_agent['id']}", "/readyz"):
                    began = time.monotonic()
                    response = await other_tenant.http.get(path)
                    assert response.status_code == 200, response.text
                    assert time.monotonic() - began < 2, f"GET {path} took {time.monotonic() - began:.1f}s"
                assert not [f for f, t in zip(followers, tasks, strict=True) if t.done()], "a stream was cut"
                await asyncio.sleep(1)
            assert all(f.keepalives >= 1 for f in followers), [f.keepalives for f in followers]
            assert all(f.events[:2] == ["run.queued", "run.started"] for f in followers)

            assert (await tenant.http.post(f"/v1/runs/{run['id']}/cancel")).status_code == 202
            assert await until(lambda: all(f.ended for f in followers), 20), "streams did not end with the run"
            # The run's close ends them, at ``run.closed``.
            assert {tuple(f.events[-2:]) for f in followers} == {("run.cancelled", "run.closed")}
        finally:
            await close_all(tasks)


async def test_streams_beyond_the_tenant_limit_get_429_and_a_closed_stream_frees_its_slot(
    tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    run = await waiting_run(tenant)
    other_run = await waiting_run(other_tenant)
    async with stream_client(tenant, STREAMS_PER_TENANT + 1) as http, stream_client(other_tenant, 1) as other_http:
        followers, tasks = await open_streams(http, run["id"], STREAMS_PER_TENANT)
        try:
            assert {f.status for f in followers} == {200}
            refused = Follower()
            await refused.follow(http, run["id"])
            assert refused.status == 429
            assert refused.headers["content-type"] == "application/problem+json"
            assert int(refused.headers["retry-after"]) > 0
            assert b"too-many-streams" in refused.body

            others, other_tasks = await open_streams(other_http, other_run["id"], 1)  # the limit is per tenant
            tasks += other_tasks
            assert others[0].status == 200

            tasks[0].cancel()  # a client goes away; its slot is freed
            admitted: list[Follower] = []

            async def one_more() -> bool:
                late = Follower()
                task = asyncio.create_task(late.follow(http, run["id"]))
                await until(lambda: late.status is not None, 10)
                tasks.append(task)
                admitted.append(late)
                return late.status == 200

            deadline = time.monotonic() + 10
            while not await one_more():
                assert time.monotonic() < deadline, "the closed stream's slot was never freed"
                await asyncio.sleep(0.2)
            assert admitted[-1].status == 200
        finally:
            await close_all(tasks)
    for owner, waiting in ((tenant, run), (other_tenant, other_run)):
        assert (await owner.http.post(f"/v1/runs/{waiting['id']}/cancel")).status_code == 202


def test_api_start_raises_the_open_files_soft_limit_to_the_hard_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    script = (
        "import resource; from api.app import raise_open_files_limit;"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, (256, {hard}));"
        "raise_open_files_limit(); print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    raised = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    expected = hard if hard != resource.RLIM_INFINITY else 1_048_576
    assert int(raised.stdout.strip().splitlines()[-1]) == expected  # one socket per open stream: 256 would cap them
