"""Agent versions (edit, pin, promote, roll back, archive) and run feedback, on the real stack."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import TenantCtx
from tests.support.runs import create_agent, wait_for, wait_run


async def test_patch_versions_promote_and_roll_back(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    assert agent["version"] == 1
    patched = await tenant.http.patch(f"/v1/agents/{agent['id']}", json={"instructions": "Be terse."})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["version"], patched.json()["instructions"]) == (2, "Be terse.")
    assert patched.json()["tools"] == agent["tools"]  # fields not given are kept
    staged = await tenant.http.patch(f"/v1/agents/{agent['id']}", json={"instructions": "Later.", "promote": False})
    assert staged.json()["version"] == 2  # still current
    versions = (await tenant.http.get(f"/v1/agents/{agent['id']}/versions")).json()["items"]
    assert [(v["version"], v["current"]) for v in versions] == [(3, False), (2, True), (1, False)]
    assert {v["created_by"]["kind"] for v in versions} == {"user"}
    assert all(v["created_by"]["id"].startswith("key_") for v in versions)
    assert versions[0]["instructions"] == "Later."
    assert versions[0]["feedback"] == {"n": 0, "mean": None}
    first = (await tenant.http.get(f"/v1/agents/{agent['id']}/versions/1")).json()
    assert first["instructions"] == agent["instructions"]
    assert (await tenant.http.get(f"/v1/agents/{agent['id']}/versions/9")).status_code == 404
    rolled = await tenant.http.post(f"/v1/agents/{agent['id']}/versions/1/promote")
    assert rolled.status_code == 200
    assert rolled.json()["current"] is True
    assert (await tenant.http.get(f"/v1/agents/{agent['id']}")).json()["version"] == 1
    page = (await tenant.http.get(f"/v1/agents/{agent['id']}/versions", params={"limit": 2})).json()
    rest = await tenant.http.get(f"/v1/agents/{agent['id']}/versions", params={"cursor": page["next_cursor"]})
    assert [v["version"] for v in page["items"] + rest.json()["items"]] == [3, 2, 1]
    actions = [e["action"] for e in (await tenant.http.get("/v1/audit-events")).json()["items"]]
    assert actions.count("agent.version_created") == 2
    assert "agent.version_promoted" in actions


async def test_bad_patches_answer_422_and_change_nothing(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    for body, field in (
        ({"tools": ["no_such_tool"]}, "tools[0].name"),
        ({"name": ""}, "name"),
        ({"model": {"provider": "nope"}}, "model.provider"),
        ({"version": 7}, "version"),
    ):
        response = await tenant.http.patch(f"/v1/agents/{agent['id']}", json=body)
        assert response.status_code == 422, body
        assert field in {e["field"] for e in response.json()["errors"]}, response.json()
    versions = (await tenant.http.get(f"/v1/agents/{agent['id']}/versions")).json()["items"]
    assert [v["version"] for v in versions] == [1]


async def test_a_run_keeps_its_version_for_every_turn(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "1 + 1"})).json()
    await wait_run(tenant.http, run["id"])
    without_tools = await tenant.http.patch(f"/v1/agents/{agent['id']}", json={"tools": []})
    assert without_tools.json()["version"] == 2
    await tenant.http.post(f"/v1/runs/{run['id']}/messages", json={"input": "and 2 * 3?"})
    done = await wait_for(tenant, run["id"], lambda r: r["output"] == "Result — calculator: 6")
    assert done["agent_version"] == 1  # the second turn still had the calculator of version 1
    fresh = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "2 * 3"})).json()
    finished = await wait_run(tenant.http, fresh["id"])
    assert finished["agent_version"] == 2
    assert [s["kind"] for s in finished["steps"]] == ["llm"]  # version 2 has no tools


async def test_archived_agents_start_nothing_and_stay_readable(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "1 + 1"})).json()
    await wait_run(tenant.http, run["id"])
    assert (await tenant.http.delete(f"/v1/agents/{agent['id']}")).status_code == 204
    assert (await tenant.http.delete(f"/v1/agents/{agent['id']}")).status_code == 204  # idempotent
    refused = await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "2 + 2"})
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/agent-archived")
    assert (await tenant.http.patch(f"/v1/agents/{agent['id']}", json={"instructions": "x"})).status_code == 409
    assert (await tenant.http.post(f"/v1/agents/{agent['id']}/versions/1/promote")).status_code == 409
    assert (await tenant.http.get(f"/v1/agents/{agent['id']}")).status_code == 200
    assert (await tenant.http.get(f"/v1/agents/{agent['id']}/versions")).status_code == 200
    assert (await tenant.http.get(f"/v1/runs/{run['id']}")).json()["status"] == "completed"
    assert agent["id"] not in {a["id"] for a in (await tenant.http.get("/v1/agents")).json()["items"]}


async def test_feedback_on_finished_runs_counts_for_their_version(
    tenant: TenantCtx, other_tenant: TenantCtx, engine: AsyncEngine
) -> None:
    agent = await create_agent(tenant.http)
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "1 + 1"})).json()
    await wait_run(tenant.http, run["id"])
    await tenant.http.patch(f"/v1/agents/{agent['id']}", json={"instructions": "v2"})
    given = await tenant.http.post(f"/v1/runs/{run['id']}/feedback", json={"score": 1, "label": "good"})
    assert given.status_code == 201, given.text
    assert given.json()["agent_version"] == 1
    assert given.json()["created_by"]["kind"] == "user"
    operator = {"Authorization": f"Bearer {await tenant.key_for(engine, 'operator')}"}
    second = await tenant.http.post(f"/v1/runs/{run['id']}/feedback", json={"score": 0.5}, headers=operator)
    assert second.status_code == 201
    viewer = {"Authorization": f"Bearer {await tenant.key_for(engine, 'viewer')}"}
    assert (
        await tenant.http.post(f"/v1/runs/{run['id']}/feedback", json={"score": 1}, headers=viewer)
    ).status_code == 403
    for bad, field in (
        ({"score": 1.5}, "score"),
        ({"score": -0.1}, "score"),
        ({}, "score"),
        ({"score": 1, "label": ""}, "label"),
    ):
        response = await tenant.http.post(f"/v1/runs/{run['id']}/feedback", json=bad)
        assert response.status_code == 422, bad
        assert response.json()["errors"][0]["field"] == field
    assert (await other_tenant.http.post(f"/v1/runs/{run['id']}/feedback", json={"score": 1})).status_code == 404
    listed = (await tenant.http.get(f"/v1/runs/{run['id']}/feedback")).json()["items"]
    assert [f["score"] for f in listed] == [0.5, 1.0]
    versions = {
        v["version"]: v["feedback"]
        for v in (await tenant.http.get(f"/v1/agents/{agent['id']}/versions")).json()["items"]
    }
    assert versions == {2: {"n": 0, "mean": None}, 1: {"n": 2, "mean": 0.75}}


async def test_feedback_waits_for_an_outcome(tenant: TenantCtx) -> None:
    agent = await create_agent(
        tenant.http, tools=[{"name": "calculator", "requires_approval": True, "approval_timeout_s": 600}]
    )
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "1 + 1"})).json()
    await wait_for(tenant, run["id"], lambda r: r["status"] == "waiting_approval")
    early = await tenant.http.post(f"/v1/runs/{run['id']}/feedback", json={"score": 0})
    assert early.status_code == 409
    assert early.json()["type"].endswith("/run-not-finished")
    await tenant.http.post(f"/v1/runs/{run['id']}/cancel")
    await wait_run(tenant.http, run["id"])
    assert (await tenant.http.post(f"/v1/runs/{run['id']}/feedback", json={"score": 0})).status_code == 201
