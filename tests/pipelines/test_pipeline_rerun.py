"""``POST /v1/pipeline-runs/{id}/rerun``: a re-run keeps the recorded outputs of the steps before ``from_step``."""

from __future__ import annotations

from typing import Any

import httpx
from temporalio.client import Client

from tests.conftest import TenantCtx
from tests.support.pipelines import every_step, steps_of, wait_pipeline_run
from tests.support.runs import create_agent, record_history
from workers.embedded.stack import StackProcess


def _definition(agent_id: str, expression: str) -> dict[str, Any]:
    return {
        "steps": [
            {"id": "ask", "type": "agent", "agent_id": agent_id, "input": "say hello"},
            {
                "id": "m",
                "type": "map",
                "over": "[1, 2]",
                "step": {"id": "double", "type": "tool", "tool": "calculator", "args": {"expression": "${item} * 2"}},
            },
            {
                "id": "calc",
                "type": "tool",
                "tool": "calculator",
                "args": {"expression": expression},
                "needs": ["ask", "m"],
            },
        ],
        "output": "{'answer': steps.ask.output, 'calc': steps.calc.output.value, 'm': steps.m.output}",
    }


async def _agent_runs(http: httpx.AsyncClient, agent_id: str) -> int:
    return len((await http.get("/v1/runs", params={"agent_id": agent_id})).json()["items"])


async def test_a_rerun_from_the_failed_step_reuses_the_agent_step(
    stack: StackProcess, temporal_client: Client, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    agent = await create_agent(tenant.http, tools=[])
    created = await tenant.http.post(
        "/v1/pipelines", json={"name": "fix-me", "definition": _definition(agent["id"], "1 +")}
    )
    assert created.status_code == 201, created.text
    pipeline_id = created.json()["id"]
    started = await tenant.http.post(f"/v1/pipelines/{pipeline_id}/runs", json={})
    assert started.status_code == 202, started.text
    first = await wait_pipeline_run(tenant.http, started.json()["id"])
    assert first["status"] == "failed", first
    assert steps_of(first)["ask"]["status"] == "completed"
    assert await _agent_runs(tenant.http, agent["id"]) == 1

    fixed = await tenant.http.put(
        f"/v1/pipelines/{pipeline_id}", json={"definition": _definition(agent["id"], "40 + 2")}
    )
    assert fixed.status_code == 200, fixed.text
    rerun_url = f"/v1/pipeline-runs/{first['id']}/rerun"
    body = {"from_step": "calc", "version": 2}
    again = await tenant.http.post(rerun_url, json=body, headers={"Idempotency-Key": "fix-1"})
    assert again.status_code == 202, again.text
    same = await tenant.http.post(rerun_url, json=body, headers={"Idempotency-Key": "fix-1"})
    assert same.json()["id"] == again.json()["id"]
    second = await wait_pipeline_run(tenant.http, again.json()["id"])
    await record_history(temporal_client, f"{tenant.id}:pipeline:{second['id']}", "pipelines/rerun")
    assert second["status"] == "completed", second
    assert (second["rerun_of"], second["version"]) == (first["id"], 2)
    assert sorted(second["reused_steps"]) == ["ask", "m"]
    steps = await every_step(tenant.http, second)
    assert {s["id"]: s["reused"] for s in steps.values()} == {
        "ask": True,
        "m": True,
        "m[0]": True,
        "m[1]": True,
        "calc": False,
    }
    assert steps["ask"]["output"] == steps_of(first)["ask"]["output"]
    assert steps["ask"]["started_at"] == steps_of(first)["ask"]["started_at"]
    assert steps["m"]["output"] == steps_of(first)["m"]["output"]
    assert second["output"] == {"answer": steps["ask"]["output"], "calc": 42, "m": steps["m"]["output"]}
    assert await _agent_runs(tenant.http, agent["id"]) == 1  # the agent step did not run again
    assert second["usage"]["input_tokens"] == 0

    # a step whose definition changed between the versions runs again, and so does what needs it
    from_map = await tenant.http.post(rerun_url, json={"from_step": "m"})
    third = await wait_pipeline_run(tenant.http, from_map.json()["id"])
    assert (third["version"], third["reused_steps"]) == (1, ["ask"])
    assert third["status"] == "failed"  # version 1 still has the broken expression

    listed = (await tenant.http.get("/v1/pipeline-runs", params={"pipeline_id": pipeline_id})).json()["items"]
    assert {r["id"] for r in listed} == {first["id"], second["id"], third["id"]}


async def test_bad_reruns_are_refused(
    stack: StackProcess, temporal_client: Client, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    steps = [{"id": "gate", "type": "approval"}, {"id": "after", "type": "wait", "seconds": 0, "needs": ["gate"]}]
    created = await tenant.http.post("/v1/pipelines", json={"name": "gated", "definition": {"steps": steps}})
    pipeline_id = created.json()["id"]
    run = (await tenant.http.post(f"/v1/pipelines/{pipeline_id}/runs", json={})).json()
    await wait_pipeline_run(tenant.http, run["id"], lambda r: r["status"] == "waiting_approval")
    url = f"/v1/pipeline-runs/{run['id']}/rerun"

    running = await tenant.http.post(url, json={"from_step": "after"})
    assert running.status_code == 409, running.text
    assert (await other_tenant.http.post(url, json={"from_step": "after"})).status_code == 404
    decided = await tenant.http.post(f"/v1/pipeline-runs/{run['id']}/approvals/gate", json={"decision": "approve"})
    assert decided.status_code == 202, decided.text
    await wait_pipeline_run(tenant.http, run["id"])

    unknown = await tenant.http.post(url, json={"from_step": "nope"})
    assert unknown.status_code == 422, unknown.text
    assert [e["field"] for e in unknown.json()["errors"]] == ["/from_step"]
    no_version = await tenant.http.post(url, json={"from_step": "after", "version": 7})
    assert [e["field"] for e in no_version.json()["errors"]] == ["/version"]

    # a step not in the version re-run is dropped; an approval step completed before is kept
    only_after = {"steps": [*steps, {"id": "extra", "type": "wait", "seconds": 0}]}
    assert (await tenant.http.put(f"/v1/pipelines/{pipeline_id}", json={"definition": only_after})).status_code == 200
    rerun = await tenant.http.post(url, json={"from_step": "after", "version": 2})
    assert rerun.status_code == 202, rerun.text
    done = await wait_pipeline_run(tenant.http, rerun.json()["id"])
    assert done["status"] == "completed", done
    assert done["reused_steps"] == ["gate"]
    assert [(s["id"], s["reused"]) for s in done["steps"]] == [("gate", True), ("after", False), ("extra", False)]
