"""``POST /v1/pipelines/{id}/runs``: a run is pinned to the version it started with; its input is checked."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from core.contracts.pipelines import RUN_QUOTA_EXCEEDED
from core.db.models import PipelineRun
from core.pipelines.store import PipelineRunStore, StepWrite
from tests.conftest import TenantCtx
from tests.support.pipelines import steps_of, wait_pipeline_run
from tests.support.runs import wait_run
from tests.support.users import platform_admin_token
from workers.embedded.stack import StackProcess

INPUTS = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}


def _definition(expression: str, *, pause_s: float) -> dict[str, Any]:
    return {
        "inputs": INPUTS,
        "steps": [
            {"id": "pause", "type": "wait", "seconds": pause_s},
            {
                "id": "calc",
                "type": "tool",
                "tool": "calculator",
                "args": {"expression": expression},
                "needs": ["pause"],
            },
        ],
        "output": "steps.calc.output.value",
    }


async def _start(http: httpx.AsyncClient, pipeline_id: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await http.post(f"/v1/pipelines/{pipeline_id}/runs", json=body, headers=headers)


async def test_a_run_keeps_the_version_it_started_with_and_a_version_can_be_named(tenant: TenantCtx) -> None:
    created = await tenant.http.post(
        "/v1/pipelines", json={"name": "pinned", "definition": _definition("${input.n} * 2", pause_s=1.5)}
    )
    assert created.status_code == 201, created.text
    pipeline_id = created.json()["id"]

    first = await _start(tenant.http, pipeline_id, {"input": {"n": 21}})
    assert first.status_code == 202, first.text
    assert (first.json()["version"], first.json()["status"]) == (1, "queued")
    saved = await tenant.http.put(
        f"/v1/pipelines/{pipeline_id}", json={"definition": _definition("${input.n} + 1000", pause_s=0)}
    )
    assert saved.status_code == 200, saved.text

    pinned = await wait_pipeline_run(tenant.http, first.json()["id"])
    assert pinned["status"] == "completed", pinned
    assert steps_of(pinned)["calc"]["status"] == "completed"
    current = await wait_pipeline_run(
        tenant.http, (await _start(tenant.http, pipeline_id, {"input": {"n": 21}})).json()["id"]
    )
    named = await _start(tenant.http, pipeline_id, {"input": {"n": 21}, "version": 1})
    assert named.status_code == 202, named.text
    older = await wait_pipeline_run(tenant.http, named.json()["id"])
    assert [r["version"] for r in (pinned, current, older)] == [1, 2, 1]
    assert [r["output"] for r in (pinned, current, older)] == [42, 1021, 42]


async def test_bad_starts_are_refused_naming_their_field(tenant: TenantCtx, other_tenant: TenantCtx) -> None:
    created = await tenant.http.post(
        "/v1/pipelines", json={"name": "checked", "definition": _definition("${input.n}", pause_s=0)}
    )
    pipeline_id = created.json()["id"]

    wrong = await _start(tenant.http, pipeline_id, {"input": {"n": "seven"}})
    assert wrong.status_code == 422, wrong.text
    assert [e["field"] for e in wrong.json()["errors"]] == ["/input/n"]
    missing = await _start(tenant.http, pipeline_id, {"input": {}})
    assert [e["field"] for e in missing.json()["errors"]] == ["/input/n"]
    unknown_version = await _start(tenant.http, pipeline_id, {"input": {"n": 1}, "version": 9})
    assert unknown_version.status_code == 422
    assert [e["field"] for e in unknown_version.json()["errors"]] == ["version"]
    assert (await _start(other_tenant.http, pipeline_id, {"input": {"n": 1}})).status_code == 404

    keyed = await _start(tenant.http, pipeline_id, {"input": {"n": 1}}, **{"Idempotency-Key": "nightly-1"})
    again = await _start(tenant.http, pipeline_id, {"input": {"n": 1}}, **{"Idempotency-Key": "nightly-1"})
    assert keyed.status_code == again.status_code == 202
    assert keyed.json()["id"] == again.json()["id"]
    reused = await _start(tenant.http, pipeline_id, {"input": {"n": 2}}, **{"Idempotency-Key": "nightly-1"})
    assert reused.status_code == 422
    assert reused.json()["type"].endswith("/idempotency-key-reused")

    assert (await tenant.http.delete(f"/v1/pipelines/{pipeline_id}")).status_code == 204
    archived = await _start(tenant.http, pipeline_id, {"input": {"n": 1}})
    assert archived.status_code == 409
    assert archived.json()["type"].endswith("/pipeline-archived")
    listed = (await tenant.http.get("/v1/pipeline-runs", params={"pipeline_id": pipeline_id})).json()["items"]
    assert [r["id"] for r in listed] == [keyed.json()["id"]]


async def test_a_final_step_is_not_moved_back_by_a_late_write(tenant: TenantCtx, engine: AsyncEngine) -> None:
    store = PipelineRunStore(engine)
    run, _ = await store.insert(
        PipelineRun(
            id="prn_late_write",
            tenant_id=tenant.id,
            pipeline_id="pip_x",
            version=1,
            status="running",
            workflow_id="wf-late-write",
        )
    )
    done = StepWrite(step_id="a", type="tool", status="completed", attempts=1, output={"value": 1})
    await store.write_steps(tenant.id, run.id, [done])
    await store.write_steps(tenant.id, run.id, [StepWrite(step_id="a", type="tool", status="running", attempts=1)])
    shown = (await tenant.http.get(f"/v1/pipeline-runs/{run.id}")).json()
    assert [(s["status"], s["output"]) for s in shown["steps"]] == [("completed", {"value": 1})]


async def test_starting_a_run_counts_against_the_tenants_run_quota(stack: StackProcess, tenant: TenantCtx) -> None:
    admin = {"Authorization": f"Bearer {await platform_admin_token(stack)}"}
    capped = await tenant.http.patch(f"/v1/tenants/{tenant.id}", json={"quotas": {"concurrent_runs": 1}}, headers=admin)
    assert capped.status_code == 200, capped.text
    created = await tenant.http.post(
        "/v1/pipelines", json={"name": "quota", "definition": _definition("${input.n}", pause_s=0)}
    )
    agent = await tenant.http.post(
        "/v1/agents", json={"name": "slow", "model": {"provider": "local", "params": {"latency_ms": 3000}}}
    )
    busy = await tenant.http.post(f"/v1/agents/{agent.json()['id']}/runs", json={"input": "hi"})
    assert busy.status_code == 202
    refused = await _start(tenant.http, created.json()["id"], {"input": {"n": 1}})
    assert refused.status_code == 429, refused.text
    assert refused.json()["type"].endswith("/quota-exceeded")

    # a sub-pipeline step checks the quota too: with an agent step's run holding the one slot, it is refused
    await wait_run(tenant.http, busy.json()["id"])
    slow = await tenant.http.post(
        "/v1/agents", json={"name": "slower", "model": {"provider": "local", "params": {"latency_ms": 30000}}}
    )
    steps = [
        {"id": "ask", "type": "agent", "agent_id": slow.json()["id"], "input": "hi"},
        {"id": "gate", "type": "approval"},
        {"id": "sub", "type": "pipeline", "pipeline_id": created.json()["id"], "input": {"n": "2"}, "needs": ["gate"]},
    ]
    parent = await tenant.http.post("/v1/pipelines", json={"name": "parent", "definition": {"steps": steps}})
    assert parent.status_code == 201, parent.text
    started = await _start(tenant.http, parent.json()["id"], {"input": None})
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    await wait_pipeline_run(
        tenant.http, run_id, lambda r: r["status"] == "waiting_approval" and steps_of(r)["ask"]["status"] == "running"
    )
    agent_runs = (await tenant.http.get("/v1/runs", params={"agent_id": slow.json()["id"]})).json()["items"]
    assert [r["status"] for r in agent_runs] in (["queued"], ["running"])
    decided = await tenant.http.post(f"/v1/pipeline-runs/{run_id}/approvals/gate", json={"decision": "approve"})
    assert decided.status_code == 202, decided.text
    body = await wait_pipeline_run(tenant.http, run_id)
    assert body["status"] == "failed"
    assert steps_of(body)["sub"]["error"]["type"] == RUN_QUOTA_EXCEEDED, steps_of(body)["sub"]["error"]
    children = (await tenant.http.get("/v1/pipeline-runs", params={"pipeline_id": created.json()["id"]})).json()
    assert children["items"] == []
