"""Optimizer runs end to end over HTTP on the simulated world: promotion, A/A, budgets, the cache, a killed
worker, continue-as-new, bad input, cancel, Temporal out of reach."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator, Sequence
from typing import Any, get_args

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.optimizer_schemas import StrategyName
from core.contracts.optimizer import PROGRESS_QUERY, WORKFLOW_NAME, OptimizerRunInput
from core.ids import new_id, workflow_id
from core.optimizer.run_store import OptimizerRunStore, run_seed
from core.optimizer.strategies import STRATEGIES
from core.settings import Settings
from simulated.scripted_server import ScriptedServer
from simulated.world import SimWorld, question_bank
from tests.conftest import TenantCtx
from tests.support.api_process import temporal_out_of_reach
from tests.support.runs import create_agent, record_history
from workers.embedded.ports import free_port
from workers.embedded.stack import StackProcess

SEED = 2
INSTRUCTIONS = "Answer the question."
FINAL = ("completed", "failed", "cancelled")


@pytest.fixture
def world() -> SimWorld:
    """A world where demos help (``server``, of the package's conftest, serves it)."""
    return SimWorld(seed=SEED)


@pytest.fixture
def aa_server() -> Iterator[ScriptedServer]:
    with SimWorld(seed=SEED, aa=True).serve() as server:
        yield server


async def _sim_agent(
    tenant: TenantCtx,
    engine: AsyncEngine,
    server: ScriptedServer,
    model_name: str = "sim-base",
    tools: Sequence[str] = (),
) -> dict[str, Any]:
    """An agent on the `openai` provider whose base_url is the simulated world (loopback allowed for the tenant)."""
    async with engine.begin() as conn:
        await conn.execute(
            text("""update tenant set egress_allowlist = '["127.0.0.1"]' where id = :t"""), {"t": tenant.id}
        )
    await tenant.http.post("/v1/secrets", json={"name": "SIM_KEY", "value": "sk-sim-0123456789"})
    model = {"provider": "openai", "name": model_name, "base_url": f"{server.url}/v1", "api_key_secret": "SIM_KEY"}
    return await create_agent(tenant.http, name="quiz", instructions=INSTRUCTIONS, tools=list(tools), model=model)


async def _dataset(tenant: TenantCtx, agent_id: str, n: int, *, labelled: bool = True) -> dict[str, Any]:
    examples = [
        {"input": e["input"], "expected": e["expected"]} if labelled else {"input": e["input"]}
        for e in question_bank(SEED, n)
    ]
    response = await tenant.http.post(f"/v1/agents/{agent_id}/datasets", json={"name": "quiz", "examples": examples})
    assert response.status_code == 201, response.text
    dataset: dict[str, Any] = response.json()
    return dataset


async def _start(tenant: TenantCtx, agent_id: str, **body: Any) -> dict[str, Any]:
    response = await tenant.http.post(f"/v1/agents/{agent_id}/optimizer/runs", json=body)
    assert response.status_code == 202, response.text
    run: dict[str, Any] = response.json()
    assert run["status"] == "queued"
    return run


async def _finished(tenant: TenantCtx, run_id: str, timeout_s: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run: dict[str, Any] = (await tenant.http.get(f"/v1/optimizer/runs/{run_id}")).json()
        if run["status"] in FINAL:
            return run
        await asyncio.sleep(0.3)
    raise AssertionError(f"optimizer run {run_id} did not finish: {run}")


async def _current(tenant: TenantCtx, agent_id: str) -> int:
    agent = (await tenant.http.get(f"/v1/agents/{agent_id}")).json()
    return int(agent["version"])


async def test_a_run_promotes_a_better_version_where_demos_help(
    tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client, server: ScriptedServer
) -> None:
    agent = await _sim_agent(tenant, engine, server)
    dataset = await _dataset(tenant, agent["id"], 400)
    started = await _start(tenant, agent["id"], strategies=["few_shot"], budget={"max_evals": 600})
    assert started["dataset_id"] == dataset["id"], "the newest dataset by default"
    assert started["metric"] == {"type": "exact", "ignore_case": False}, "exact by default: every example has expected"

    run = await _finished(tenant, started["id"])

    assert run["status"] == "completed", run
    assert run["promoted"] is True, (run["reason"], run["candidates"], run["progress"])
    assert run["winner"] is not None
    assert run["winner"] != run["baseline_version"]
    assert "above the minimum effect" in run["reason"]
    assert "promoted" in run["reason"]
    assert await _current(tenant, agent["id"]) == run["winner"]
    assert run["dataset_hash"] == dataset["hash"]
    assert run["budget"]["evals_used"] <= 600
    baseline, *candidates = run["candidates"]
    assert baseline["strategy"] == baseline["stage"] == "baseline"
    assert baseline["version"] == run["baseline_version"]
    assert candidates
    assert all(c["strategy"] == "few_shot" for c in candidates)
    chosen = next(c for c in candidates if c["version"] == run["winner"])
    assert chosen["stage"] == "tested"
    assert chosen["n"] > 0
    assert chosen["ci"][0] <= chosen["score"] <= chosen["ci"][1]
    versions = (await tenant.http.get(f"/v1/agents/{agent['id']}/versions")).json()["items"]
    by_number = {v["version"]: v for v in versions}
    for candidate in candidates:
        assert by_number[candidate["version"]]["created_by"] == {"kind": "optimizer", "id": run["id"]}
    await record_history(temporal_client, workflow_id(tenant.id, "optimizer", run["id"]), "optimizer/promotion")


async def test_the_aa_world_promotes_nothing(
    tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client, aa_server: ScriptedServer
) -> None:
    agent = await _sim_agent(tenant, engine, aa_server)
    await _dataset(tenant, agent["id"], 200)
    run = await _finished(tenant, (await _start(tenant, agent["id"], budget={"max_evals": 400}))["id"])
    handle = temporal_client.get_workflow_handle(workflow_id(tenant.id, "optimizer", run["id"]))
    assert await handle.query(PROGRESS_QUERY) == run["progress"], "the projection holds the workflow's last progress"

    assert run["status"] == "completed", run
    assert run["promoted"] is False
    assert "not promoted" in run["reason"], run["reason"]
    assert await _current(tenant, agent["id"]) == run["baseline_version"]


async def test_reflective_and_model_swap_candidates_judged_by_a_model(
    tenant: TenantCtx, engine: AsyncEngine, server: ScriptedServer
) -> None:
    agent = await _sim_agent(tenant, engine, server)
    await _dataset(tenant, agent["id"], 30)
    body = {"metric": {"type": "judge"}, "strategies": ["reflective", "model_swap"], "budget": {"max_evals": 40}}
    run = await _finished(tenant, (await _start(tenant, agent["id"], **body))["id"])

    assert run["status"] == "completed", run
    assert run["metric"] == {"type": "judge"}
    assert run["budget"]["evals_used"] <= 40
    assert {c["strategy"] for c in run["candidates"][1:]} == {"reflective", "model_swap"}
    judged = [r for r in server.received if "<output>" in str(r.body)]
    assert len(judged) == run["progress"]["evals_paid"], "one judge call per paid evaluation"


async def test_a_judge_that_stays_down_fails_the_run_naming_it(
    tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client, server: ScriptedServer
) -> None:
    agent = await _sim_agent(tenant, engine, server)
    await _dataset(tenant, agent["id"], 9)
    down = {"provider": "openai", "name": "judge-down", "base_url": f"http://127.0.0.1:{free_port()}/v1"}
    body = {"metric": {"type": "judge", "model": down | {"api_key_secret": "SIM_KEY"}}, "budget": {"max_evals": 20}}
    run = await _finished(tenant, (await _start(tenant, agent["id"], **body))["id"])

    assert run["status"] == "failed", run
    assert run["error"]["type"] == "JudgeFailed"
    assert "judge model openai:judge-down" in run["error"]["message"]
    assert run["reason"].startswith("failed: judge model openai:judge-down")
    await record_history(temporal_client, workflow_id(tenant.id, "optimizer", run["id"]), "optimizer/judge_failed")


async def _paid(engine: AsyncEngine, tenant_id: str) -> int:
    async with engine.connect() as conn:
        found = await conn.execute(text("select count(*) from optimizer_eval where tenant_id = :t"), {"t": tenant_id})
        return int(found.scalar_one())


async def test_the_budget_is_respected_and_no_evaluation_is_paid_twice(
    tenant: TenantCtx, engine: AsyncEngine, server: ScriptedServer
) -> None:
    agent = await _sim_agent(tenant, engine, server)
    await _dataset(tenant, agent["id"], 60)
    body = {"budget": {"max_evals": 37}, "auto_promote": False}
    first = await _finished(tenant, (await _start(tenant, agent["id"], **body))["id"])

    assert first["status"] == "completed", first
    assert first["budget"]["evals_used"] <= 37
    assert first["promoted"] is False
    assert await _current(tenant, agent["id"]) == first["baseline_version"]
    paid = first["progress"]["evals_paid"]
    assert paid == await _paid(engine, tenant.id) == len(server.received) > 0

    second = await _finished(tenant, (await _start(tenant, agent["id"], **body))["id"])

    assert second["status"] == "completed", second
    assert second["budget"]["evals_used"] <= 37
    new_rows = await _paid(engine, tenant.id) - paid
    assert second["progress"]["evals_paid"] == new_rows, "every paid evaluation is a new cache row"
    assert second["progress"]["evals_paid"] < second["progress"]["evals_used"], (
        "the baseline's were read from the cache"
    )
    assert len(server.received) == paid + new_rows


async def test_the_run_stops_at_its_cost_budget(tenant: TenantCtx, engine: AsyncEngine, server: ScriptedServer) -> None:
    agent = await _sim_agent(tenant, engine, server, model_name="gpt-4o-mini")  # a model with a list price
    await _dataset(tenant, agent["id"], 60)
    body = {"budget": {"max_evals": 200, "max_cost_usd": 0.00001}}
    run = await _finished(tenant, (await _start(tenant, agent["id"], **body))["id"])

    assert run["status"] == "completed", run
    assert run["usage"]["cost_usd"] >= 0.00001
    assert "stopped at the cost budget of $1e-05" in run["reason"], run["reason"]
    assert run["budget"]["evals_used"] < 200
    assert run["promoted"] is False


@pytest.mark.slow
async def test_a_worker_killed_mid_evaluation_completes_without_paying_twice(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine, server: ScriptedServer
) -> None:
    agent = await _sim_agent(tenant, engine, server)
    await _dataset(tenant, agent["id"], 200)
    started = await _start(tenant, agent["id"], budget={"max_evals": 400}, auto_promote=False)
    for _ in range(6000):  # until evaluations are under way (at most a minute)
        if len(server.received) >= 30:
            break
        await asyncio.sleep(0.01)
    victim = stack.pids()["worker-optimizer"]
    os.kill(victim, signal.SIGKILL)

    run = await _finished(tenant, started["id"])

    assert run["status"] == "completed", run
    assert stack.pids()["worker-optimizer"] != victim, "the supervisor restarted the worker"
    paid = await _paid(engine, tenant.id)
    assert run["progress"]["evals_used"] == paid, "every evaluation scored once, kept once"
    redone = len(server.received) - paid
    assert 0 <= redone <= 8, "only the model calls in flight when the worker died were made again"


async def test_bad_input_names_the_field(
    tenant: TenantCtx, other_tenant: TenantCtx, engine: AsyncEngine, server: ScriptedServer
) -> None:
    agent = await _sim_agent(tenant, engine, server)
    url = f"/v1/agents/{agent['id']}/optimizer/runs"

    async def refused(status: int, body: dict[str, Any], field: str | None = None) -> None:
        response = await tenant.http.post(url, json=body)
        assert response.status_code == status, response.text
        if field is not None:
            assert field in [e["field"] for e in response.json()["errors"]], response.json()

    await refused(422, {}, "dataset_id")  # the agent has no dataset yet
    await _dataset(tenant, agent["id"], 9, labelled=False)
    await refused(422, {}, "metric")  # no expected answers: no default metric
    await refused(422, {"metric": {"type": "exact"}}, "metric.type")
    regex = {"type": "regex", "pattern": "x"}
    await refused(422, {"metric": regex, "budget": {"max_evals": 0}}, "budget.max_evals")
    await refused(422, {"metric": regex, "budget": {"max_evals": 10**7}}, "budget.max_evals")
    await refused(422, {"metric": regex, "budget": {"max_cost_usd": 0}}, "budget.max_cost_usd")
    await refused(422, {"metric": regex, "strategies": ["nope"]}, "strategies[0]")
    await refused(422, {"metric": regex, "strategies": ["few_shot", "few_shot"]}, "strategies[1]")
    await refused(422, {"metric": {"type": "nope"}}, "metric")
    assert set(get_args(StrategyName)) == set(STRATEGIES), "the schema names every registered strategy"

    theirs = await create_agent(other_tenant.http)
    foreign = await other_tenant.http.post(
        f"/v1/agents/{theirs['id']}/datasets",
        json={"name": "x", "examples": [{"input": f"q{i}", "expected": "a"} for i in range(5)]},
    )
    await refused(404, {"dataset_id": foreign.json()["id"]})
    mine_other_agent = await create_agent(tenant.http, name="other")
    own = await _dataset(tenant, mine_other_agent["id"], 6)
    await refused(404, {"dataset_id": own["id"]})  # a dataset of another agent

    assert (await tenant.http.delete(f"/v1/agents/{agent['id']}")).status_code == 204
    await refused(409, {"metric": regex})


async def test_a_cancelled_run_records_cancelled(
    tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client, server: ScriptedServer
) -> None:
    agent = await _sim_agent(tenant, engine, server)
    await _dataset(tenant, agent["id"], 90)
    started = await _start(tenant, agent["id"], budget={"max_evals": 300})

    cancelled = await tenant.http.post(f"/v1/optimizer/runs/{started['id']}/cancel")

    assert cancelled.status_code == 202, cancelled.text
    run = await _finished(tenant, started["id"])
    assert run["status"] == "cancelled", run
    await record_history(temporal_client, workflow_id(tenant.id, "optimizer", run["id"]), "optimizer/cancelled")
    again = await tenant.http.post(f"/v1/optimizer/runs/{started['id']}/cancel")
    assert again.status_code == 409
    listed = (await tenant.http.get("/v1/optimizer/runs", params={"agent_id": agent["id"], "limit": 1})).json()
    assert [r["id"] for r in listed["items"]] == [started["id"]]


async def test_temporal_out_of_reach_answers_503_and_the_run_stays_queued(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine, server: ScriptedServer
) -> None:
    agent = await _sim_agent(tenant, engine, server)
    await _dataset(tenant, agent["id"], 9)
    async with temporal_out_of_reach(stack, tenant.key) as down:
        started = await down.post(f"/v1/agents/{agent['id']}/optimizer/runs", json={})
    assert started.status_code == 503, started.text
    assert started.headers["retry-after"] == "2"
    (queued,) = (await tenant.http.get("/v1/optimizer/runs", params={"agent_id": agent["id"]})).json()["items"]
    assert queued["status"] == "queued"
    async with temporal_out_of_reach(stack, tenant.key) as down:
        cancelled = await down.post(f"/v1/optimizer/runs/{queued['id']}/cancel")
    assert cancelled.status_code == 503, cancelled.text
    never_started = await tenant.http.post(f"/v1/optimizer/runs/{queued['id']}/cancel")
    assert never_started.status_code == 202, never_started.text
    assert never_started.json()["status"] == "cancelled"


async def test_a_long_run_continues_as_new_and_decides_the_same_without_evaluating_twice(
    tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client, server: ScriptedServer
) -> None:
    agent = await _sim_agent(tenant, engine, server)
    await _dataset(tenant, agent["id"], 60)
    body = {"budget": {"max_evals": 120}, "auto_promote": False}
    whole = await _finished(tenant, (await _start(tenant, agent["id"], **body))["id"])
    assert whole["status"] == "completed", whole
    store = OptimizerRunStore(engine)
    original = await store.get(tenant.id, whole["id"])
    assert original is not None
    run_id = new_id("opt")
    await store.insert(
        original.model_copy(
            update={
                "id": run_id,
                "status": "queued",
                "candidates": None,
                "progress": None,
                "reason": None,
                "winner": None,
                "evals_used": 0,
                "workflow_id": workflow_id(tenant.id, "optimizer", run_id),
            }
        )
    )
    inp = OptimizerRunInput(
        tenant_id=tenant.id,
        run_id=run_id,
        agent_id=agent["id"],
        dataset_id=whole["dataset_id"],
        baseline_version=whole["baseline_version"],
        metric=whole["metric"],
        max_evals=120,
        max_cost_usd=whole["budget"]["max_cost_usd"],
        strategies=whole["strategies"],
        auto_promote=False,
        seed=run_seed(whole["dataset_hash"], whole["baseline_version"]),
        history_limit=30,
    )
    handle = await temporal_client.start_workflow(
        WORKFLOW_NAME, inp, id=workflow_id(tenant.id, "optimizer", run_id), task_queue=Settings().optimizer_task_queue
    )
    await handle.result()
    split = await _finished(tenant, run_id)

    first_run = temporal_client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
    events = [e async for e in first_run.fetch_history_events()]
    await record_history(temporal_client, handle.id, "optimizer/continued_as_new", run_id=handle.result_run_id)
    assert events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    assert split["status"] == "completed", split
    assert split["progress"]["evals_used"] == whole["progress"]["evals_used"], "nothing scored twice"
    assert split["progress"]["evals_paid"] == 0, "the same configurations: every evaluation came from the cache"
    assert [(c["strategy"], c["score"], c["n"], c["stage"]) for c in split["candidates"]] == [
        (c["strategy"], c["score"], c["n"], c["stage"]) for c in whole["candidates"]
    ]
