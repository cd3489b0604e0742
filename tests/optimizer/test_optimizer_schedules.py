"""Optimizer schedules over HTTP on the simulated world: set, read, a fire that optimizes on the latest feedback,
a fire with too little feedback recorded failed, bad input, archiving."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowFailureError

from core.contracts.optimizer import WORKFLOW_NAME, OptimizerRunInput
from core.optimizer.schedules import optimizer_schedule_id, scheduled_run_id
from core.settings import Settings
from simulated.scripted_server import ScriptedServer
from simulated.world import SimWorld, question_bank
from tests.conftest import TenantCtx
from tests.optimizer.test_optimizer_runs import SEED, _sim_agent
from tests.support.api_process import temporal_out_of_reach
from tests.support.runs import create_agent, insert_run, record_history
from workers.embedded.stack import StackProcess

FINAL = ("completed", "failed", "cancelled")


@pytest.fixture
def world() -> SimWorld:
    return SimWorld(seed=SEED)


async def _rated_runs(
    tenant: TenantCtx, engine: AsyncEngine, agent: dict[str, Any], examples: list[dict[str, str]], *, score: float
) -> list[str]:
    """Completed runs of ``agent`` answering each example with its ``expected``, each rated ``score``."""
    ids = []
    for example in examples:
        run = await insert_run(engine, tenant.id, agent, example["input"])
        async with engine.begin() as conn:
            await conn.execute(
                text("update run set status = 'completed', output = :o where id = :r"),
                {"o": example["expected"], "r": run.id},
            )
        rated = await tenant.http.post(f"/v1/runs/{run.id}/feedback", json={"score": score})
        assert rated.status_code == 201, rated.text
        ids.append(run.id)
    return ids


async def _fired(tenant: TenantCtx, schedule_id: str, timeout_s: float = 180) -> dict[str, Any]:
    """The one run the schedule started, once it is final."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        listed = await tenant.http.get("/v1/optimizer/runs", params={"schedule_id": schedule_id})
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        assert len(items) <= 1, items
        if items and items[0]["status"] in FINAL:
            run: dict[str, Any] = items[0]
            return run
        await asyncio.sleep(0.3)
    raise AssertionError(f"schedule {schedule_id} recorded no final run")


async def test_a_schedule_is_set_fires_on_the_latest_feedback_and_is_deleted(
    tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client, server: ScriptedServer
) -> None:
    agent = await _sim_agent(tenant, engine, server)
    bank = question_bank(SEED, 70)
    good = await _rated_runs(tenant, engine, agent, bank[:60], score=1.0)
    await _rated_runs(tenant, engine, agent, [{**e, "expected": "no idea"} for e in bank[60:]], score=0.2)
    url = f"/v1/agents/{agent['id']}/optimizer/schedule"
    put = await tenant.http.put(url, json={"cron": "0 3 * * *", "budget": {"max_evals": 150}, "auto_promote": False})
    assert put.status_code == 200, put.text
    schedule = put.json()
    schedule_id = optimizer_schedule_id(tenant.id, agent["id"])
    assert (schedule["id"], schedule["cron"], schedule["overlap"]) == (schedule_id, "0 3 * * *", "skip")
    assert (schedule["budget"]["max_evals"], schedule["auto_promote"]) == (150, False)
    assert all(t.endswith("03:00:00Z") for t in schedule["next_action_times"]), schedule["next_action_times"]
    assert (await tenant.http.get(url)).json() == schedule

    await temporal_client.get_schedule_handle(schedule_id).trigger()
    run = await _fired(tenant, schedule_id)

    assert run["status"] == "completed", run
    assert (run["schedule_id"], run["baseline_version"], run["auto_promote"]) == (schedule_id, 1, False)
    assert run["budget"]["max_evals"] == 150
    assert run["budget"]["evals_used"] <= 150
    assert run["metric"]["type"] == "exact"
    dataset = (await tenant.http.get(f"/v1/datasets/{run['dataset_id']}")).json()
    assert (dataset["size"], dataset["source"], dataset["hash"]) == (60, "runs", run["dataset_hash"])
    examples = (await tenant.http.get(f"/v1/datasets/{dataset['id']}/examples", params={"limit": 100})).json()
    assert {e["source_run_id"] for e in examples["items"]} == set(good), "only the well-rated runs"
    assert all(e["expected"] == e["output"] for e in examples["items"])
    described = (await tenant.http.get(url)).json()
    assert [a["run_id"] for a in described["recent_actions"]] == [run["id"]]
    workflow_id = described["recent_actions"][0]["workflow_id"]
    assert workflow_id.startswith(schedule_id + "-")
    await record_history(temporal_client, workflow_id, "optimizer/scheduled")

    assert (await tenant.http.delete(url)).status_code == 204
    assert (await tenant.http.get(url)).status_code == 404
    assert (await tenant.http.delete(url)).status_code == 404
    assert (await tenant.http.get(f"/v1/optimizer/runs/{run['id']}")).status_code == 200, "the run stays"


async def test_a_fire_with_too_little_feedback_is_recorded_failed(
    tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    agent = await create_agent(tenant.http)
    await _rated_runs(tenant, engine, agent, question_bank(SEED, 2), score=1.0)
    await _rated_runs(tenant, engine, agent, question_bank(SEED + 1, 4), score=0.1)
    put = await tenant.http.put(f"/v1/agents/{agent['id']}/optimizer/schedule", json={"cron": "*/30 * * * *"})
    assert put.status_code == 200, put.text
    schedule_id = put.json()["id"]

    await temporal_client.get_schedule_handle(schedule_id).trigger()
    run = await _fired(tenant, schedule_id)

    assert run["status"] == "failed", run
    assert run["error"]["type"] == "OptimizerTooFewExamples", run["error"]
    assert "2 distinct completed runs" in run["error"]["message"]
    assert (run["dataset_id"], run["schedule_id"], run["candidates"]) == (None, schedule_id, [])
    assert (await tenant.http.get(f"/v1/agents/{agent['id']}/datasets")).json()["items"] == []


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"cron": "61 * * * *"}, ["cron"]),
        ({"cron": "0 3 * * *", "budget": {"max_evals": 0}}, ["budget.max_evals"]),
        ({"cron": "nightly", "budget": {"max_cost_usd": 1e9}}, ["cron", "budget.max_cost_usd"]),
        ({"cron": ""}, ["cron"]),
        ({"cron": "0 3 * * *", "overlap": "allow_all"}, ["overlap"]),
    ],
)
async def test_bad_schedules_are_refused_naming_their_field(
    tenant: TenantCtx, body: dict[str, Any], fields: list[str]
) -> None:
    agent = await create_agent(tenant.http)
    response = await tenant.http.put(f"/v1/agents/{agent['id']}/optimizer/schedule", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    named = [e["field"].lstrip("/").replace("/", ".") for e in response.json()["errors"]]
    assert named == fields, response.json()


async def test_archiving_the_agent_deletes_its_schedule(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    url = f"/v1/agents/{agent['id']}/optimizer/schedule"
    assert (await tenant.http.put(url, json={"cron": "0 3 * * *"})).status_code == 200
    assert (await tenant.http.delete(f"/v1/agents/{agent['id']}")).status_code == 204
    assert (await tenant.http.get(url)).status_code == 404
    refused = await tenant.http.put(url, json={"cron": "0 3 * * *"})
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("agent-archived")
    assert (await tenant.http.get("/v1/agents/agt_missing/optimizer/schedule")).status_code == 404


async def test_temporal_out_of_reach_answers_503(stack: StackProcess, tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    url = f"/v1/agents/{agent['id']}/optimizer/schedule"
    async with temporal_out_of_reach(stack, tenant.key) as down:
        answers = [
            await down.put(url, json={"cron": "0 3 * * *"}),
            await down.get(url),
            await down.delete(url),
            await down.delete(f"/v1/agents/{agent['id']}"),
        ]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.json()["type"].endswith("temporal-unavailable")
        assert answer.headers["retry-after"] == "2"
    archived = await tenant.http.put(url, json={"cron": "0 3 * * *"})
    assert archived.status_code == 409, "the agent was archived all the same"


async def test_a_fire_for_an_archived_agent_is_recorded_failed(
    tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    """A fire already on its way when the agent is archived (archiving deletes the schedule, not a started fire)."""
    agent = await create_agent(tenant.http)
    await _rated_runs(tenant, engine, agent, question_bank(SEED, 5), score=1.0)
    assert (await tenant.http.delete(f"/v1/agents/{agent['id']}")).status_code == 204
    schedule_id = optimizer_schedule_id(tenant.id, agent["id"])
    start = OptimizerRunInput(
        tenant_id=tenant.id,
        run_id="",
        agent_id=agent["id"],
        dataset_id="",
        baseline_version=0,
        metric={},
        max_evals=10,
        max_cost_usd=1.0,
        strategies=["few_shot"],
        auto_promote=False,
        schedule_id=schedule_id,
    )
    handle = await temporal_client.start_workflow(
        WORKFLOW_NAME, start, id=f"{schedule_id}-fire", task_queue=Settings().optimizer_task_queue
    )
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    run = await _fired(tenant, schedule_id)
    assert (run["status"], run["error"]["type"], run["dataset_id"]) == ("failed", "AgentArchived", None), run
    assert run["id"] == scheduled_run_id(handle.id)
