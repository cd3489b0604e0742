"""Every step of a failed or cancelled run ends: a final status, its end time and its event.

Runs go through the API test stack; the events are read as an SSE client reads them,
a stream that ends at the run's final event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from tests.api.test_events import _names, _read_events
from tests.conftest import TenantCtx
from tests.support.runs import agent_with_deleted_secret, create_agent, wait_run

OPEN = ("running", "waiting")


async def _start(tenant: TenantCtx, agent: dict[str, Any], text: str) -> str:
    response = await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": text})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["id"]
    return run_id


async def _until(tenant: TenantCtx, run_id: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        run: dict[str, Any] = (await tenant.http.get(f"/v1/runs/{run_id}")).json()
        if check(run):
            return run
        assert time.monotonic() < deadline, f"run never matched: {run}"
        await asyncio.sleep(0.1)


async def _cancel_and_read(tenant: TenantCtx, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Cancel the run while an SSE client follows it; the run as stored then, and the events the client got."""
    reader = asyncio.ensure_future(_read_events(tenant.http, run_id))  # replays from the start, then follows
    response = await tenant.http.post(f"/v1/runs/{run_id}/cancel")
    assert response.status_code == 202, response.text
    events = await asyncio.wait_for(reader, 60)
    return (await tenant.http.get(f"/v1/runs/{run_id}")).json(), events


def _assert_all_ended(run: dict[str, Any]) -> None:
    for step in run["steps"]:
        assert step["status"] not in OPEN, step
        assert step["ended_at"] is not None, step


async def test_a_model_step_failing_for_a_missing_secret_ends_failed(tenant: TenantCtx) -> None:
    agent = await agent_with_deleted_secret(tenant.http, "no-such-secret", tools=[])
    run_id = await _start(tenant, agent, "hello")
    run = await wait_run(tenant.http, run_id)
    events = await _read_events(tenant.http, run_id)

    assert run["status"] == "failed"
    assert "no-such-secret" in run["error"]["message"]
    [step] = run["steps"]
    assert (step["kind"], step["status"]) == ("llm", "failed")
    assert step["ended_at"] is not None
    assert "no-such-secret" in step["error"]["message"]
    assert _names(events)[-2:] == ["step.failed:s1", "run.failed:"]
    assert events[-2]["data"]["error"] == step["error"]


async def test_cancel_during_a_slow_model_step_ends_the_step_before_the_run(tenant: TenantCtx) -> None:
    agent = await create_agent(
        tenant.http, tools=[], model={"provider": "local", "name": "local-echo", "params": {"latency_ms": 30000}}
    )
    run_id = await _start(tenant, agent, "hello")
    await _until(tenant, run_id, lambda r: bool(r["steps"]) and r["steps"][0]["status"] == "running")

    run, events = await _cancel_and_read(tenant, run_id)

    assert run["status"] == "cancelled"
    _assert_all_ended(run)
    assert run["steps"][0]["status"] == "cancelled"
    names = _names(events)
    assert names[-1] == "run.cancelled:"
    assert "step.cancelled:s1" in names, "the SSE stream ended without the model step's end"


async def test_cancel_while_waiting_for_approval_ends_the_approval_step(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http, tools=[{"name": "calculator", "requires_approval": True}])
    run_id = await _start(tenant, agent, "2 + 2")
    waiting = await _until(tenant, run_id, lambda r: r["status"] == "waiting_approval")
    [approval] = [s for s in waiting["steps"] if s["kind"] == "approval"]

    run, events = await _cancel_and_read(tenant, run_id)

    assert run["status"] == "cancelled"
    _assert_all_ended(run)
    [ended] = [s for s in run["steps"] if s["id"] == approval["id"]]
    assert ended["status"] == "cancelled"
    assert _names(events)[-2:] == [f"step.cancelled:{approval['id']}", "run.cancelled:"]
