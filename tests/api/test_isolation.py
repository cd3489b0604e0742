"""Tenant A's credentials on tenant B's objects: every route that takes an id answers 404."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from core.contracts.recommend import Finding
from core.db.engine import make_sessionmaker
from core.recommend.findings import agent_action, agent_target
from core.recommend.store import save_findings
from core.roles import PERMISSIONS
from tests.api.routes_table import api_routes
from tests.conftest import TenantCtx
from tests.support.pipelines import start as start_pipeline
from tests.support.pipelines import wait_pipeline_run
from tests.support.runs import CALC_AGENT, create_agent, wait_run
from tests.support.users import make_user
from tests.support.voice import say, silence_wav, start_session

BODIES = {
    ("POST", "/v1/agents/{agent_id}/runs"): {"input": "1 + 1"},
    ("PATCH", "/v1/users/{user_id}"): {"role": "viewer"},
    ("POST", "/v1/runs/{run_id}/messages"): {"input": "hello"},
    ("POST", "/v1/runs/{run_id}/approvals/{step_id}"): {"decision": "approve"},
    ("PATCH", "/v1/agents/{agent_id}"): {"instructions": "taken over"},
    ("POST", "/v1/runs/{run_id}/feedback"): {"score": 0.0},
    ("PUT", "/v1/pipelines/{pipeline_id}"): {"definition": {"steps": [{"id": "w", "type": "wait", "seconds": 1}]}},
    ("POST", "/v1/pipeline-runs/{pipeline_run_id}/approvals/{step_id}"): {"decision": "approve"},
    ("POST", "/v1/pipeline-runs/{pipeline_run_id}/rerun"): {"from_step": "s1"},
    ("PUT", "/v1/pipelines/{pipeline_id}/schedule"): {"cron": "* * * * *"},
    ("PUT", "/v1/agents/{agent_id}/optimizer/schedule"): {"cron": "* * * * *"},
    ("POST", "/v1/agents/{agent_id}/experiments"): {"candidate_version": 2, "traffic": 0.5},
    ("POST", "/v1/agents/{agent_id}/datasets"): {"name": "a", "examples": [{"input": f"{n} + {n}"} for n in range(3)]},
    ("POST", "/v1/agents/{agent_id}/optimizer/runs"): {"metric": {"type": "regex", "pattern": "x"}},
    ("POST", "/v1/agents/{agent_id}/replays"): {"version": 1},
    ("POST", "/v1/pipelines/{pipeline_id}/schedule/backfill"): {
        "from": "2026-01-01T00:00:00Z",
        "to": "2026-01-01T00:05:00Z",
    },
}
TOOL = {
    "name": "b_shared",
    "description": "tenant B's tool",
    "parameters": {"type": "object", "properties": {}},
    "method": "GET",
    "url": "https://api.example.com/b",
}


async def _objects_of(tenant: TenantCtx, engine: AsyncEngine, temporal: Client) -> dict[str, str]:
    agent = await create_agent(tenant.http)
    pipeline_run = await start_pipeline(engine, temporal, tenant.id, {"steps": [{"id": "s1", "type": "approval"}]})
    await wait_pipeline_run(tenant.http, pipeline_run.id, lambda r: r["status"] == "waiting_approval")
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "2 + 2"})).json()
    await wait_run(tenant.http, run["id"])
    await make_user(engine, tenant.id, "viewer")
    users = (await tenant.http.get("/v1/users")).json()["items"]
    key = (await tenant.http.post("/v1/api-keys", json={"name": "ci", "role": "viewer"})).json()
    await tenant.http.post("/v1/secrets", json={"name": "b_shared", "value": "b-value"})
    assert (await tenant.http.post("/v1/tools", json=TOOL)).status_code == 201
    hook = await tenant.http.post(
        "/v1/webhooks", json={"url": "https://hooks.example.com/b", "events": ["run.completed"]}
    )
    assert hook.status_code == 201
    memory = await tenant.http.post("/v1/memories", json={"subject": "b-user", "text": "B's home is in Lisbon"})
    assert memory.status_code in (201, 202), memory.text
    steps = [{"id": "ask", "type": "agent", "agent_id": agent["id"], "input": "3 + 3"}]
    pipeline = await tenant.http.post("/v1/pipelines", json={"name": "b", "definition": {"steps": steps}})
    assert pipeline.status_code == 201, pipeline.text
    examples = [{"input": f"B's question {n}"} for n in range(3)]
    dataset = await tenant.http.post(f"/v1/agents/{agent['id']}/datasets", json={"name": "b", "examples": examples})
    assert dataset.status_code == 201, dataset.text
    patched = await tenant.http.patch(f"/v1/agents/{agent['id']}", json={"instructions": "B's try", "promote": False})
    assert patched.status_code == 200, patched.text
    body = {"candidate_version": 2, "traffic": 0.5}
    experiment = await tenant.http.post(f"/v1/agents/{agent['id']}/experiments", json=body)
    assert experiment.status_code == 201, experiment.text
    optimizer_run = await tenant.http.post(
        f"/v1/agents/{agent['id']}/optimizer/runs",
        json={"metric": {"type": "regex", "pattern": "x"}, "budget": {"max_evals": 5}, "auto_promote": False},
    )
    assert optimizer_run.status_code == 202, optimizer_run.text
    schedule = await tenant.http.put(f"/v1/agents/{agent['id']}/optimizer/schedule", json={"cron": "0 3 * * *"})
    assert schedule.status_code == 200, schedule.text
    replay = await tenant.http.post(f"/v1/agents/{agent['id']}/replays", json={"version": 2})
    assert replay.status_code == 202, replay.text
    voice = await start_session(tenant.http, agent["id"], subject="b-caller")
    voice_turn = await say(tenant.http, voice["id"], silence_wav(0.3))
    assert voice_turn.status_code == 201, voice_turn.text
    recommendation = await _recommendation_of(tenant, engine, agent["id"])
    return {
        "agent_id": agent["id"],
        "run_id": run["id"],
        "pipeline_run_id": pipeline_run.id,
        "user_id": users[0]["id"],
        "key_id": key["id"],
        "name": "b_shared",
        "tenant_id": tenant.id,
        "step_id": "s1",
        "thread_id": run["thread_id"],
        "webhook_id": hook.json()["id"],
        "memory_id": memory.json()["id"],
        "pipeline_id": pipeline.json()["id"],
        "dataset_id": dataset.json()["id"],
        "optimizer_run_id": optimizer_run.json()["id"],
        "experiment_id": experiment.json()["id"],
        "replay_id": replay.json()["id"],
        "session_id": voice["id"],
        "turn_id": voice_turn.json()["turn_id"],
        "recommendation_id": recommendation,
        "version": "1",
    }


async def _recommendation_of(tenant: TenantCtx, engine: AsyncEngine, agent_id: str) -> str:
    """An open recommendation of the tenant about its agent, saved as a mining pass saves its findings."""
    target, key = agent_target(agent_id, tool="calculator")
    found = Finding(
        kind="tool",
        rule="tool.failure_rate",
        target=target,
        target_key=key,
        title="B's calculator fails",
        evidence={"metric": {"name": "failure_rate", "value": 0.5, "ci": [0.4, 0.6], "n": 100}},
        expected_gain={"quantity": 500.0, "unit": "fewer failed tool calls per 1,000 runs"},
        action=agent_action(agent_id, 1, [{"op": "remove_tool", "tool": "calculator"}], "remove tool calculator"),
        basis={"agent_version": 1},
    )
    async with make_sessionmaker(engine)() as session:
        assert (await save_findings(session, tenant.id, [found], ["tool"])).opened == 1
    items = (await tenant.http.get("/v1/recommendations")).json()["items"]
    return str(items[0]["id"])


async def test_every_id_route_answers_404_across_tenants(
    tenant: TenantCtx, other_tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    theirs = await _objects_of(other_tenant, engine, temporal_client)
    owner = PERMISSIONS["owner"] | {"authenticated"}
    checked, leaks = [], []
    for route in api_routes():
        params = re.findall(r"\{(\w+)\}", route.path)
        if not params or route.permission not in owner:
            continue
        assert set(params) <= theirs.keys(), f"add ids for {route.path} to this test"
        body = BODIES.get((route.method, route.path), {}) if route.method != "GET" else None
        response = await tenant.http.request(route.method, route.url(**theirs), json=body)
        checked.append(f"{route.method} {route.path}")
        echoed = response.text
        for param in params:  # the requested id may be echoed back, nothing else of B's
            echoed = echoed.replace(theirs[param], "X")
        if response.status_code != 404:
            leaks.append(f"{route.method} {route.path}: {response.status_code} {response.text[:200]}")
        elif any(value in echoed for value in (*theirs.values(), "b-value") if len(value) > 6):
            leaks.append(f"{route.method} {route.path}: body shows the other tenant's data: {echoed[:200]}")
    assert leaks == []
    assert len(checked) >= 9

    # tenant B's objects are all still there and unchanged
    agent = (await other_tenant.http.get(f"/v1/agents/{theirs['agent_id']}")).json()
    assert (agent["version"], agent["instructions"]) == (1, CALC_AGENT["instructions"])
    assert (await other_tenant.http.get(f"/v1/runs/{theirs['run_id']}/feedback")).json()["items"] == []
    assert (await other_tenant.http.get(f"/v1/runs/{theirs['run_id']}")).json()["status"] == "completed"
    assert [s["name"] for s in (await other_tenant.http.get("/v1/secrets")).json()["items"]] == ["b_shared"]
    users = (await other_tenant.http.get("/v1/users")).json()["items"]
    assert {u["id"]: u["role"] for u in users}[theirs["user_id"]] == "viewer"
    keys = (await other_tenant.http.get("/v1/api-keys")).json()["items"]
    assert theirs["key_id"] in {k["id"] for k in keys}
    assert (await other_tenant.http.get(f"/v1/memories/{theirs['memory_id']}")).status_code == 200
    pipeline = (await other_tenant.http.get(f"/v1/pipelines/{theirs['pipeline_id']}")).json()
    assert (pipeline["version"], pipeline["archived"]) == (1, False)
    pipeline_run = (await other_tenant.http.get(f"/v1/pipeline-runs/{theirs['pipeline_run_id']}")).json()
    assert pipeline_run["status"] == "waiting_approval"
    datasets = (await other_tenant.http.get(f"/v1/agents/{theirs['agent_id']}/datasets")).json()["items"]
    assert [(d["id"], d["size"]) for d in datasets] == [(theirs["dataset_id"], 3)]
    optimizer_run = (await other_tenant.http.get(f"/v1/optimizer/runs/{theirs['optimizer_run_id']}")).json()
    assert optimizer_run["agent_id"] == theirs["agent_id"]
    experiment = (await other_tenant.http.get(f"/v1/experiments/{theirs['experiment_id']}")).json()
    assert (experiment["status"], experiment["traffic"]) == ("running", 0.5)
    schedule = (await other_tenant.http.get(f"/v1/agents/{theirs['agent_id']}/optimizer/schedule")).json()
    assert schedule["cron"] == "0 3 * * *"
    replay = (await other_tenant.http.get(f"/v1/replays/{theirs['replay_id']}")).json()
    assert (replay["agent_id"], replay["run_ids"]) == (theirs["agent_id"], [theirs["run_id"]])
    voice = (await other_tenant.http.get(f"/v1/voice/sessions/{theirs['session_id']}")).json()
    assert (voice["status"], [t["turn_id"] for t in voice["turns"]]) == ("active", [theirs["turn_id"]])
    recording = await other_tenant.http.get(voice["turns"][0]["user_audio_url"])
    assert (recording.status_code, recording.headers["content-type"]) == (200, "audio/wav")
    recommendation = (await other_tenant.http.get(f"/v1/recommendations/{theirs['recommendation_id']}")).json()
    assert (recommendation["status"], recommendation["result"]) == ("open", None)


async def test_lists_never_show_other_tenants(
    tenant: TenantCtx, other_tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    await _objects_of(other_tenant, engine, temporal_client)
    lists = ("/v1/agents", "/v1/runs", "/v1/secrets", "/v1/audit-events", "/v1/pipelines", "/v1/pipeline-runs")
    lists += ("/v1/voice/sessions",)
    for path in (*lists, "/v1/optimizer/runs", "/v1/recommendations"):
        items = (await tenant.http.get(path)).json()["items"]
        assert items == [], path
    keys = (await tenant.http.get("/v1/api-keys")).json()["items"]
    assert all(k["name"] == "owner" for k in keys)
    users = (await tenant.http.get("/v1/users")).json()["items"]
    assert users == []
