"""Through the real runtime: runs of the local model write the history, a refresh finds the problem, apply changes the
agent, and the next run behaves as the new version says."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import Client

from tests.conftest import TenantCtx
from tests.recommend.support import listed, refreshed
from tests.support.runs import create_agent, wait_for, wait_run

BATCH = 6


async def _runs(tenant: TenantCtx, agent_id: str, inputs: list[str]) -> list[dict[str, Any]]:
    """Run each input (a few at a time) to its end."""
    done = []
    for start in range(0, len(inputs), BATCH):
        started = [
            await tenant.http.post(f"/v1/agents/{agent_id}/runs", json={"input": text})
            for text in inputs[start : start + BATCH]
        ]
        assert all(r.status_code == 202 for r in started), [r.text for r in started]
        done += await asyncio.gather(*(wait_run(tenant.http, r.json()["id"]) for r in started))
    return done


async def _approved(tenant: TenantCtx, run_id: str) -> dict[str, Any]:
    """Approve the run's pending call; the run once it ended."""
    run = await wait_for(tenant, run_id, lambda r: r["status"] == "waiting_approval")
    step = next(s for s in run["steps"] if s["kind"] == "approval" and s["status"] == "waiting")
    decided = await tenant.http.post(f"/v1/runs/{run_id}/approvals/{step['id']}", json={"decision": "approve"})
    assert decided.status_code in (200, 202), decided.text
    return await wait_run(tenant.http, run_id)


async def test_a_tool_failing_in_real_runs_is_gated_by_apply(tenant: TenantCtx, temporal_client: Client) -> None:
    agent = await create_agent(tenant.http)  # the calculator agent
    ran = await _runs(tenant, agent["id"], [f"what is {n} / 0" if n % 5 < 2 else f"what is {n} + 3" for n in range(60)])
    assert all(r["status"] == "completed" for r in ran)

    summary = await refreshed(tenant, temporal_client)

    assert summary["opened"] == 1, summary
    (rec,) = await listed(tenant, status="open")
    assert (rec["rule"], rec["target"]["tool"]) == ("tool.failure_rate", "calculator")
    assert rec["evidence"]["metric"]["n"] == 60
    assert rec["evidence"]["metric"]["value"] == 0.4
    assert rec["evidence"]["numbers"]["top_errors"][0]["message"].endswith("division by zero")
    assert set(rec["evidence"]["example_run_ids"]) <= {r["id"] for r in ran}
    applied = await tenant.http.post(f"/v1/recommendations/{rec['id']}/apply")
    assert applied.status_code == 200, applied.text
    gated = await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "what is 6 / 0"})
    run = await wait_for(tenant, gated.json()["id"], lambda r: r["status"] == "waiting_approval")
    assert run["agent_version"] == 2, "the new version asks a person before each calculator call"


async def test_approvals_always_granted_in_real_runs_are_dropped(tenant: TenantCtx, temporal_client: Client) -> None:
    agent = await create_agent(tenant.http, tools=[{"name": "calculator", "requires_approval": True}])
    for start in range(0, 30, BATCH):
        started = [
            await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": f"{n} + 1"})
            for n in range(start, start + BATCH)
        ]
        ended = await asyncio.gather(*(_approved(tenant, r.json()["id"]) for r in started))
        assert all(r["status"] == "completed" for r in ended)

    await refreshed(tenant, temporal_client)

    (rec,) = await listed(tenant, status="open")
    assert (rec["rule"], rec["evidence"]["metric"]["n"]) == ("tool.approval_always_approved", 30)
    assert (await tenant.http.post(f"/v1/recommendations/{rec['id']}/apply")).status_code == 200
    free = await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "4 + 4"})
    run = await wait_run(tenant.http, free.json()["id"])
    assert (run["status"], run["agent_version"]) == ("completed", 2)
    assert [s["kind"] for s in run["steps"]].count("approval") == 0
