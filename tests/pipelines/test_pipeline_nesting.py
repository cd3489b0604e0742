"""Sub-pipeline steps and size bounds, end to end: child runs listed with their parent, depth, input schema, outputs."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from core.contracts.pipelines import (
    INPUT_INVALID,
    MAX_MAP_OUTPUT_BYTES,
    MAX_PIPELINE_DEPTH,
    MAX_STEP_OUTPUT_BYTES,
    OUTPUT_TOO_LARGE,
    PIPELINE_TOO_DEEP,
    STEP_FAILED,
    STEP_TIMED_OUT,
    SUB_RUN_FAILED,
)
from tests.conftest import TenantCtx
from tests.support.pipelines import every_step, start, steps_of, wait_pipeline_run
from tests.support.runs import create_agent, record_history
from workers.embedded.stack import StackProcess


async def _pipeline(http: httpx.AsyncClient, name: str, definition: dict[str, Any]) -> str:
    created = await http.post("/v1/pipelines", json={"name": name, "definition": definition})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _sub(step_id: str, pipeline_id: str, run_input: Any = None, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "pipeline", "pipeline_id": pipeline_id, "input": run_input, **extra}


async def test_sub_pipeline_runs_as_a_listed_child_with_its_output_and_usage(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx
) -> None:
    agent = await create_agent(tenant.http, tools=[])
    child_id = await _pipeline(
        tenant.http,
        "child",
        {
            "inputs": {"type": "object", "required": ["word"], "properties": {"word": {"type": "string"}}},
            "steps": [{"id": "ask", "type": "agent", "agent_id": agent["id"], "input": "say ${input.word}"}],
            "output": "{'answer': steps.ask.output}",
        },
    )
    definition = {
        "steps": [
            _sub("sub", child_id, {"word": "${input.word}"}),
            {"id": "after", "type": "tool", "tool": "calculator", "args": {"expression": "1 + 1"}, "needs": ["sub"]},
        ],
        "output": "steps.sub.output.answer",
    }
    run = await start(engine, temporal_client, tenant.id, definition, {"word": "hello"})
    body = await wait_pipeline_run(tenant.http, run.id, timeout_s=120)
    await record_history(temporal_client, run.workflow_id, "pipelines/sub_pipeline")
    assert body["status"] == "completed", str(body)
    assert body["output"] == "You said: say hello"
    assert body["parent_run_id"] is None
    children = (await tenant.http.get("/v1/pipeline-runs", params={"pipeline_id": child_id})).json()["items"]
    assert len(children) == 1
    child = children[0]
    assert (child["parent_run_id"], child["parent_step_id"]) == (run.id, "sub")
    assert child["status"] == "completed"
    assert child["input"] == {"word": "hello"}
    assert child["output"] == {"answer": "You said: say hello"}
    assert child["temporal"]["workflow_id"] == f"{tenant.id}:pipeline:{child['id']}"
    assert steps_of(body)["sub"]["output"] == child["output"]
    assert child["usage"]["output_tokens"] > 0
    assert body["usage"] == child["usage"]  # the child's usage rolls up into its parent


async def test_sub_pipelines_nest_at_most_max_depth(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx
) -> None:
    calc = {"id": "one", "type": "tool", "tool": "calculator", "args": {"expression": "1"}}
    chain = [await _pipeline(tenant.http, "leaf", {"steps": [calc], "output": "steps.one.output.value"})]
    for level in range(MAX_PIPELINE_DEPTH + 1):
        definition = {"steps": [_sub("sub", chain[-1])], "output": "steps.sub.output"}
        chain.append(await _pipeline(tenant.http, f"wrap{level}", definition))
    deepest_ok = await tenant.http.post(f"/v1/pipelines/{chain[-2]}/runs", json={})
    too_deep = await tenant.http.post(f"/v1/pipelines/{chain[-1]}/runs", json={})
    ok = await wait_pipeline_run(tenant.http, deepest_ok.json()["id"], timeout_s=120)
    assert ok["status"] == "completed", str(ok)
    assert ok["output"] == 1
    failed = await wait_pipeline_run(tenant.http, too_deep.json()["id"], timeout_s=120)
    assert failed["status"] == "failed"
    assert failed["error"]["type"] == STEP_FAILED
    assert failed["error"]["cause"]["type"] == SUB_RUN_FAILED
    # the run at depth MAX_PIPELINE_DEPTH starts no child: its step fails with the typed error
    runs = (await tenant.http.get("/v1/pipeline-runs", params={"pipeline_id": chain[1]})).json()["items"]
    assert len(runs) == 2
    deepest = next(r for r in runs if r["status"] == "failed")
    assert steps_of(deepest)["sub"]["error"]["type"] == PIPELINE_TOO_DEEP
    leaf_runs = (await tenant.http.get("/v1/pipeline-runs", params={"pipeline_id": chain[0]})).json()["items"]
    assert len(leaf_runs) == 1  # only the run of the chain one shorter reached the leaf


async def test_a_child_input_failing_its_schema_fails_the_step_naming_the_field(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx
) -> None:
    child_id = await _pipeline(
        tenant.http,
        "typed",
        {
            "inputs": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}},
            "steps": [{"id": "c", "type": "tool", "tool": "calculator", "args": {"expression": "${input.n} * 2"}}],
            "output": "steps.c.output.value",
        },
    )
    definition = {
        "steps": [_sub("bad", child_id, {"n": "${input.text}"}, on_error="continue"), _sub("good", child_id, {"n": 4})],
        "output": "[steps.bad.status, steps.good.output]",
    }
    run = await start(engine, temporal_client, tenant.id, definition, {"text": "seven"})
    body = await wait_pipeline_run(tenant.http, run.id, timeout_s=120)
    assert body["status"] == "completed", str(body)
    assert body["output"] == ["failed", 8]
    error = steps_of(body)["bad"]["error"]
    assert error["type"] == INPUT_INVALID
    assert [e["field"] for e in error["errors"]] == ["/input/n"]
    assert "/input/n" in error["message"]
    children = (await tenant.http.get("/v1/pipeline-runs", params={"pipeline_id": child_id})).json()["items"]
    assert [c["parent_step_id"] for c in children] == ["good"]  # the refused input started no run


async def test_a_map_whose_outputs_outgrow_its_bound_fails_with_a_typed_error(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx
) -> None:
    nothing = {"id": "w", "type": "wait", "seconds": 0}
    echo = await _pipeline(tenant.http, "echo", {"steps": [nothing], "output": "input"})
    text = "a" * (MAX_STEP_OUTPUT_BYTES - 100)  # one item's output fits its step's bound; five outgrow the map's
    item = {"type": "pipeline", "pipeline_id": echo, "input": "${input.text}"}
    definition = {
        "steps": [
            {"id": "m", "type": "map", "over": "[1, 2, 3, 4, 5, 6]", "max_concurrency": 1, "step": item,
             "on_error": "continue"},
            {"id": "after", "type": "tool", "tool": "calculator", "args": {"expression": "1"}, "needs": ["m"]},
        ],
        "output": "[steps.m.status, steps.m.error.type, steps.m.error.index, steps.after.output.value]",
    }  # fmt: skip
    run = await start(engine, temporal_client, tenant.id, definition, {"text": text})
    body = await wait_pipeline_run(tenant.http, run.id, timeout_s=120)
    assert body["status"] == "completed", str(body["error"])
    fitting = MAX_MAP_OUTPUT_BYTES // (len(text) + 2)
    assert body["output"] == ["failed", OUTPUT_TOO_LARGE, fitting, 1]
    steps = await every_step(tenant.http, body)
    assert [steps[f"m[{i}]"]["status"] for i in range(fitting + 1)] == ["completed"] * fitting + ["failed"]
    assert steps[f"m[{fitting}]"]["output"] is None
    assert f"m[{fitting + 1}]" not in steps  # no item starts after the bound is passed
    children = (await tenant.http.get("/v1/pipeline-runs", params={"pipeline_id": echo})).json()["items"]
    assert sorted(c["parent_step_id"] for c in children) == [f"m[{i}]" for i in range(fitting + 1)]


async def test_cancelling_a_run_cancels_its_child_run(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx
) -> None:
    gate = await _pipeline(tenant.http, "gate", {"steps": [{"id": "ok", "type": "approval"}]})
    run = await start(engine, temporal_client, tenant.id, {"steps": [_sub("sub", gate)]})

    def child_waits(body: dict[str, Any]) -> bool:
        return body["status"] == "waiting_approval"

    children: list[dict[str, Any]] = []
    while not children:
        await asyncio.sleep(0.1)
        children = (await tenant.http.get("/v1/pipeline-runs", params={"pipeline_id": gate})).json()["items"]
    await wait_pipeline_run(tenant.http, children[0]["id"], child_waits)
    assert (await tenant.http.post(f"/v1/pipeline-runs/{run.id}/cancel")).status_code == 202
    body = await wait_pipeline_run(tenant.http, run.id)
    assert body["status"] == "cancelled"
    assert steps_of(body)["sub"]["status"] == "cancelled"
    child = await wait_pipeline_run(tenant.http, children[0]["id"])
    assert child["status"] == "cancelled"
    assert steps_of(child)["ok"]["status"] == "cancelled"


async def test_a_failing_item_of_a_chunked_map_fails_it_and_cancels_the_other_chunks(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx
) -> None:
    items = ["1"] * 150
    items[5] = "nope"
    item = {"type": "tool", "tool": "calculator", "args": {"expression": "${item}"}}
    definition = {"steps": [{"id": "m", "type": "map", "over": "input.items", "max_concurrency": 4, "step": item}]}
    run = await start(engine, temporal_client, tenant.id, definition, {"items": items})
    body = await wait_pipeline_run(tenant.http, run.id, timeout_s=120)
    assert body["status"] == "failed"
    steps = await every_step(tenant.http, body)
    assert steps["m"]["error"]["index"] == 5
    assert steps["m[5]"]["status"] == "failed"
    statuses = [s["status"] for s in body["steps"] if s["id"].startswith("m[")]
    assert set(statuses) <= {"completed", "failed", "cancelled"}
    assert len(statuses) < 100  # the chunks stopped: the other lane's chunk was cancelled


async def test_a_sub_pipeline_past_its_timeout_is_cancelled_and_fails_the_step(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx
) -> None:
    gate = await _pipeline(tenant.http, "slow gate", {"steps": [{"id": "ok", "type": "approval"}]})
    definition = {
        "steps": [_sub("sub", gate, timeout_s=0.5, on_error="continue")],
        "output": "steps.sub.error.type",
    }
    run = await start(engine, temporal_client, tenant.id, definition)
    body = await wait_pipeline_run(tenant.http, run.id)
    assert body["status"] == "completed", str(body)
    assert body["output"] == STEP_TIMED_OUT
    child_id = steps_of(body)["sub"]["error"]["run_id"]
    child = await wait_pipeline_run(tenant.http, child_id)
    assert child["status"] == "cancelled"
