"""Bounds of pipeline runs on the real stack: ``max_concurrent_runs`` (reject, queue) and ``budget_usd``;
the validate plan's cost estimate learnt from the agents' runs."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from core.contracts.pipelines import BUDGET_EXCEEDED, CONCURRENCY_LIMIT
from tests.conftest import TenantCtx
from tests.support.pipelines import final_runs, start, steps_of, wait_pipeline_run
from tests.support.runs import create_agent, record_history
from workers.embedded.stack import StackProcess

HOLD = {"id": "hold", "type": "approval", "prompt": "let it end"}
"""An approval step: the run holds its slot until the test decides."""
PRICED_MODEL = {"provider": "local", "name": "gpt-4o-mini"}
"""The local provider priced at gpt-4o-mini's list price: every run costs a little."""


async def _pipeline(http: httpx.AsyncClient, definition: dict[str, Any]) -> str:
    created = await http.post("/v1/pipelines", json={"name": "limited", "definition": definition})
    assert created.status_code == 201, created.text
    pipeline_id: str = created.json()["id"]
    return pipeline_id


async def _start(http: httpx.AsyncClient, pipeline_id: str, **headers: str) -> httpx.Response:
    return await http.post(f"/v1/pipelines/{pipeline_id}/runs", json={"input": {}}, headers=headers)


async def _waiting(http: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    return await wait_pipeline_run(http, run_id, lambda r: r["status"] == "waiting_approval")


async def _approve(http: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    decided = await http.post(f"/v1/pipeline-runs/{run_id}/approvals/hold", json={"decision": "approve"})
    assert decided.status_code == 202, decided.text
    return await wait_pipeline_run(http, run_id)


async def _statuses(http: httpx.AsyncClient, pipeline_id: str) -> dict[str, str]:
    """Each run of the pipeline → its status; never more than the limit hold a slot."""
    listed = await http.get("/v1/pipeline-runs", params={"pipeline_id": pipeline_id, "limit": 100})
    assert listed.status_code == 200, listed.text
    return {r["id"]: r["status"] for r in listed.json()["items"]}


def _holding(statuses: dict[str, str]) -> int:
    return sum(s in ("running", "waiting_approval") for s in statuses.values())


async def _sample_holding(http: httpx.AsyncClient, pipeline_id: str, seen: list[int]) -> None:
    """Record, until cancelled, how many runs of the pipeline hold a slot."""
    while True:
        seen.append(_holding(await _statuses(http, pipeline_id)))
        await asyncio.sleep(0.05)


async def test_reject_refuses_starts_past_the_limit_race_free(stack: StackProcess, tenant: TenantCtx) -> None:
    pipeline_id = await _pipeline(
        tenant.http, {"steps": [HOLD], "max_concurrent_runs": 2, "on_concurrency_limit": "reject"}
    )
    answers = await asyncio.gather(*(_start(tenant.http, pipeline_id) for _ in range(6)))
    accepted = [a.json()["id"] for a in answers if a.status_code == 202]
    refused = [a for a in answers if a.status_code != 202]
    assert len(accepted) == 2, [a.text for a in answers]
    assert {a.status_code for a in refused} == {429}
    problem = refused[0].json()
    assert problem["type"].endswith("/pipeline-concurrency-limit")
    assert refused[0].headers["content-type"].startswith("application/problem+json")
    assert "max_concurrent_runs" in problem["detail"]

    for run_id in accepted:
        await _waiting(tenant.http, run_id)
    assert (await _start(tenant.http, pipeline_id)).status_code == 429  # waiting runs hold their slots
    assert (await _approve(tenant.http, accepted[0]))["status"] == "completed"
    freed = await _start(tenant.http, pipeline_id, **{"Idempotency-Key": "after-one-ended"})
    assert freed.status_code == 202, freed.text
    again = await _start(tenant.http, pipeline_id, **{"Idempotency-Key": "after-one-ended"})
    assert (again.status_code, again.json()["id"]) == (202, freed.json()["id"])  # a retried start is no new run
    assert (await _start(tenant.http, pipeline_id)).status_code == 429
    for run_id in (accepted[1], freed.json()["id"]):
        await _waiting(tenant.http, run_id)
        assert (await _approve(tenant.http, run_id))["status"] == "completed"


async def test_queue_holds_runs_until_a_slot_frees_first_come_first_served(
    stack: StackProcess, temporal_client: Client, tenant: TenantCtx
) -> None:
    pipeline_id = await _pipeline(tenant.http, {"steps": [HOLD], "max_concurrent_runs": 1})
    seen: list[int] = []
    sampler = asyncio.create_task(_sample_holding(tenant.http, pipeline_id, seen))
    first = (await _start(tenant.http, pipeline_id)).json()["id"]
    await _waiting(tenant.http, first)
    second = (await _start(tenant.http, pipeline_id)).json()["id"]
    third = (await _start(tenant.http, pipeline_id)).json()["id"]
    statuses = await _statuses(tenant.http, pipeline_id)
    assert (statuses[second], statuses[third]) == ("queued", "queued")

    cancelled = await tenant.http.post(f"/v1/pipeline-runs/{third}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    left = await wait_pipeline_run(tenant.http, third)
    assert left["status"] == "cancelled"
    assert {s["status"] for s in left["steps"]} == {"cancelled"}
    fourth = (await _start(tenant.http, pipeline_id)).json()["id"]

    for holder, next_in_line, still_queued in ((first, second, fourth), (second, fourth, None)):
        assert (await _approve(tenant.http, holder))["status"] == "completed"
        await _waiting(tenant.http, next_in_line)
        statuses = await _statuses(tenant.http, pipeline_id)
        assert _holding(statuses) == 1, statuses
        if still_queued:
            assert statuses[still_queued] == "queued"
    assert (await _approve(tenant.http, fourth))["status"] == "completed"
    sampler.cancel()
    assert seen
    assert max(seen) == 1  # never two runs holding a slot, at any sample
    run = await wait_pipeline_run(tenant.http, second)
    await record_history(temporal_client, run["temporal"]["workflow_id"], "pipelines/queued_run")


async def test_a_run_over_its_budget_fails_and_cancels_its_running_steps(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx
) -> None:
    agent = await create_agent(tenant.http, model=PRICED_MODEL)
    definition = {
        "budget_usd": 1e-9,
        "steps": [
            {"id": "ask", "type": "agent", "agent_id": agent["id"], "input": "hello there"},
            {"id": "slow", "type": "wait", "seconds": 60},
            {"id": "after", "type": "wait", "seconds": 0, "needs": ["ask"]},
        ],
    }
    run = await start(engine, temporal_client, tenant.id, definition)
    body = await wait_pipeline_run(tenant.http, run.id)
    await record_history(temporal_client, run.workflow_id, "pipelines/budget_exceeded")
    assert body["status"] == "failed", body
    error = body["error"]
    assert error["type"] == BUDGET_EXCEEDED
    assert error["budget_usd"] == 1e-9
    assert error["spent_usd"] > error["budget_usd"]
    assert error["step_id"] == "ask"
    assert body["usage"]["cost_usd"] == error["spent_usd"]
    steps = steps_of(body)
    assert steps["ask"]["status"] == "completed"
    assert (steps["slow"]["status"], steps["after"]["status"]) == ("cancelled", "cancelled")


async def test_the_validate_plan_estimates_cost_from_the_agents_recent_runs(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx
) -> None:
    agent = await create_agent(tenant.http, model=PRICED_MODEL)
    ask = {"id": "ask", "type": "agent", "agent_id": agent["id"], "input": "hello there"}
    definition = {
        "steps": [
            ask,
            {"id": "calc", "type": "tool", "tool": "calculator", "args": {"expression": "1 + 1"}},
            {"id": "each", "type": "map", "over": "[1, 2]", "step": {"type": "agent", "agent_id": agent["id"]}},
        ]
    }

    async def plan() -> dict[str, Any]:
        answer = await tenant.http.post("/v1/pipelines/validate", json={"definition": definition})
        assert answer.status_code == 200, answer.text
        assert answer.json()["valid"], answer.text
        found: dict[str, Any] = answer.json()["plan"]
        return found

    unknown = await plan()
    assert unknown["cost_estimate_usd"] is None  # no run of the agent to learn from
    assert [s["cost_estimate_usd"] for s in unknown["steps"]] == [None, 0.0, None]
    assert unknown["steps"][2]["cost_estimate_per_item_usd"] is None

    ran = await start(engine, temporal_client, tenant.id, {"steps": [ask, {**ask, "id": "again", "input": "hi"}]})
    body = await wait_pipeline_run(tenant.http, ran.id)
    assert body["status"] == "completed", body
    children = (await tenant.http.get("/v1/runs", params={"agent_id": agent["id"]})).json()["items"]
    costs = [c["usage"]["cost_usd"] for c in children]
    assert len(costs) == 2
    assert all(c > 0 for c in costs)
    mean = sum(costs) / len(costs)

    known = await plan()
    ask_cost, calc_cost, each_cost = (s["cost_estimate_usd"] for s in known["steps"])
    assert abs(ask_cost - mean) < 1e-8
    assert (calc_cost, each_cost) == (0.0, None)
    assert known["steps"][2]["cost_estimate_per_item_usd"] == ask_cost
    assert known["cost_estimate_usd"] == ask_cost  # maps are left out: per item × items
    assert known["waves"] == unknown["waves"]


async def test_a_rejecting_limit_also_refuses_scheduled_and_sub_pipeline_starts(
    stack: StackProcess, temporal_client: Client, tenant: TenantCtx
) -> None:
    limited = await _pipeline(
        tenant.http, {"steps": [HOLD], "max_concurrent_runs": 1, "on_concurrency_limit": "reject"}
    )
    holder = (await _start(tenant.http, limited)).json()["id"]
    await _waiting(tenant.http, holder)

    scheduled = await tenant.http.put(f"/v1/pipelines/{limited}/schedule", json={"cron": "0 0 1 1 *"})
    assert scheduled.status_code == 200, scheduled.text
    schedule_id = scheduled.json()["id"]
    await temporal_client.get_schedule_handle(schedule_id).trigger()
    fired = await final_runs(tenant.http, {"schedule_id": schedule_id}, 1)
    assert (fired[0]["status"], fired[0]["error"]["type"]) == ("failed", CONCURRENCY_LIMIT), fired
    assert "max_concurrent_runs" in fired[0]["error"]["message"]

    parent = await _pipeline(tenant.http, {"steps": [{"id": "child", "type": "pipeline", "pipeline_id": limited}]})
    run = (await _start(tenant.http, parent)).json()["id"]
    body = await wait_pipeline_run(tenant.http, run)
    assert body["status"] == "failed", body
    assert steps_of(body)["child"]["error"]["type"] == CONCURRENCY_LIMIT
    runs = (await tenant.http.get("/v1/pipeline-runs", params={"pipeline_id": limited})).json()["items"]
    assert [r["id"] for r in runs if r["status"] != "failed"] == [holder]  # neither start took a slot
    assert (await _approve(tenant.http, holder))["status"] == "completed"
