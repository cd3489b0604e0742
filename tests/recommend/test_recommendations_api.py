"""``/v1/recommendations`` end to end: a refresh mines a written history through ``RecommendationWorkflow``; apply
makes the change through the API's own code paths and records it; dismissal suppresses; stale → 409; 403 without the
action's permission; the schedule of each tenant."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, ScheduleActionExecutionStartWorkflow, ScheduleActionStartWorkflow

from bench import recommend_history as bh
from core.contracts.recommend import WORKFLOW_NAME
from core.recommend.schedules import ensure_all_schedules, recommendation_schedule_id
from core.settings import Settings
from tests.conftest import TenantCtx
from tests.recommend.support import agent, failing_tool_agent, history, listed, pipeline, refreshed
from tests.support.runs import record_history
from tests.support.users import platform_admin_token
from workers.embedded.stack import StackProcess

CALC = {"type": "tool", "tool": "calculator", "args": {"expression": "1 + 1"}}


async def _audited(tenant: TenantCtx, action: str) -> list[dict[str, Any]]:
    found = await tenant.http.get("/v1/audit-events", params={"action": action})
    assert found.status_code == 200, found.text
    items: list[dict[str, Any]] = found.json()["items"]
    return items


async def test_refresh_apply_and_outcome(tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client) -> None:
    made = await failing_tool_agent(tenant, engine)
    first = await tenant.http.post("/v1/recommendations/refresh")
    again = await tenant.http.post("/v1/recommendations/refresh")
    assert (first.status_code, again.status_code) == (202, 202)
    assert (first.json()["reused"], again.json()["reused"]) == (False, True), "a refresh while one runs joins it"
    assert again.json()["run_id"] == first.json()["run_id"]
    summary = await temporal_client.get_workflow_handle(first.json()["workflow_id"]).result()
    assert (summary["trigger"], summary["opened"], summary["findings"]["calls"]) == ("refresh", 1, 1)
    await record_history(temporal_client, first.json()["workflow_id"], "recommend/refresh")

    (rec,) = await listed(tenant, status="open")
    assert (rec["kind"], rec["rule"], rec["status"]) == ("tool", "tool.failure_rate", "open")
    assert rec["target"] == {"type": "agent", "agent_id": made["id"], "tool": "lookup"}
    assert rec["evidence"]["metric"]["n"] == 300
    assert rec["action"]["requires"] == "agents:write"
    assert rec["expected_gain"]["unit"] == "failed tool calls per 1,000 runs a person sees first"
    assert (await tenant.http.get(f"/v1/recommendations/{rec['id']}")).json() == rec
    assert await listed(tenant, kind="model") == []

    applied = await tenant.http.post(f"/v1/recommendations/{rec['id']}/apply")
    assert applied.status_code == 200, applied.text
    assert (applied.json()["status"], applied.json()["result"]) == ("applied", {"agent_version": 2})
    version = (await tenant.http.get(f"/v1/agents/{made['id']}/versions/2")).json()
    assert version["created_by"] == {"kind": "recommendation", "id": rec["id"]}
    assert version["current"] is True
    assert [(t["name"], t["requires_approval"]) for t in version["tools"]] == [("lookup", True)]
    (event,) = await _audited(tenant, "recommendation.applied")
    assert (event["target_id"], event["data"]["result"]) == (rec["id"], {"agent_version": 2})
    created = await _audited(tenant, "agent.version_created")
    assert created[0]["data"]["created_by"] == {"kind": "recommendation", "id": rec["id"]}
    assert (await tenant.http.post(f"/v1/recommendations/{rec['id']}/apply")).status_code == 409

    await history(
        engine,
        tenant.id,
        [(made["id"], 2, partial(bh.failing_tool_run, rate=0.05), 60)],
        after=datetime.now(UTC),
        seed=2,
    )
    await refreshed(tenant, temporal_client)
    outcome = (await tenant.http.get(f"/v1/recommendations/{rec['id']}")).json()["outcome"]
    assert (outcome["status"], outcome["final"], outcome["runs"], outcome["version"]) == ("measured", True, 60, 2)
    assert outcome["metric"] == "failed_calls_per_1000_runs"
    assert 300 <= outcome["before"]["value"] <= 500
    assert outcome["after"]["value"] <= 150
    assert outcome["measured_gain"]["quantity"] > 200
    assert outcome["expected_gain"] == rec["expected_gain"]


async def test_dismissal_suppresses_until_the_evidence_changes(
    tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    made = await failing_tool_agent(tenant, engine, rate=0.3)
    await refreshed(tenant, temporal_client)
    (rec,) = await listed(tenant, status="open")
    dismissed = await tenant.http.post(f"/v1/recommendations/{rec['id']}/dismiss", json={"reason": "being fixed"})
    assert dismissed.status_code == 200, dismissed.text
    assert (dismissed.json()["status"], dismissed.json()["status_reason"]) == ("dismissed", "being fixed")
    (event,) = await _audited(tenant, "recommendation.dismissed")
    assert (event["target_id"], event["data"]["reason"]) == (rec["id"], "being fixed")
    assert (await tenant.http.post(f"/v1/recommendations/{rec['id']}/dismiss")).status_code == 409

    summary = await refreshed(tenant, temporal_client)
    assert (summary["opened"], summary["suppressed"]) == (0, 1)
    assert await listed(tenant, status="open") == []

    await history(engine, tenant.id, [(made["id"], 1, partial(bh.failing_tool_run, rate=0.9), 600)], seed=3)
    summary = await refreshed(tenant, temporal_client)
    assert summary["opened"] == 1, "the failure rate left the interval it had when dismissed"
    (again,) = await listed(tenant, status="open")
    assert again["previous_id"] == rec["id"]
    assert again["evidence"]["metric"]["value"] > rec["evidence"]["metric"]["ci"][1]
    assert again["action"]["ops"] == [{"op": "remove_tool", "tool": "lookup"}]


async def test_a_stale_recommendation_answers_409(
    tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    made = await failing_tool_agent(tenant, engine)
    await refreshed(tenant, temporal_client)
    (rec,) = await listed(tenant, status="open")
    patched = await tenant.http.patch(f"/v1/agents/{made['id']}", json={"instructions": "Check ids first."})
    assert patched.status_code == 200

    refused = await tenant.http.post(f"/v1/recommendations/{rec['id']}/apply")

    assert refused.status_code == 409
    assert "agent" in refused.json()["detail"]
    assert "is at version 2; the evidence was computed on version 1" in refused.json()["detail"]
    after = (await tenant.http.get(f"/v1/recommendations/{rec['id']}")).json()
    assert after["status"] == "stale"
    assert "version 2" in after["status_reason"]
    versions = (await tenant.http.get(f"/v1/agents/{made['id']}/versions")).json()["items"]
    assert [v["version"] for v in versions] == [2, 1], "nothing was created"


async def test_apply_needs_the_permission_of_its_change(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    made = await failing_tool_agent(tenant, engine)
    await refreshed(tenant, temporal_client)
    (rec,) = await listed(tenant, status="open")
    headers = {"Authorization": f"Bearer {await tenant.key_for(engine, 'operator')}"}
    viewer = {"Authorization": f"Bearer {await tenant.key_for(engine, 'viewer')}"}
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        assert (await http.get("/v1/recommendations", headers=viewer)).status_code == 200
        assert (await http.post("/v1/recommendations/refresh", headers=viewer)).status_code == 403
        assert (await http.post(f"/v1/recommendations/{rec['id']}/apply", headers=viewer)).status_code == 403
        refused = await http.post(f"/v1/recommendations/{rec['id']}/apply", headers=headers)
        assert refused.status_code == 403
        assert "agents:write" in refused.json()["detail"]
        assert (await tenant.http.get(f"/v1/agents/{made['id']}")).json()["version"] == 1
        dismissed = await http.post(f"/v1/recommendations/{rec['id']}/dismiss", headers=headers)
        assert dismissed.status_code == 200, "an operator triages: dismissing needs recommendations:write only"


async def test_applying_pipeline_and_prompt_recommendations(
    tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    ordered = await pipeline(tenant.http, "ordered", [CALC | {"id": "a"}, CALC | {"id": "b", "needs": ["a"]}])
    asked = await agent(tenant.http, [])
    cluster_ids = await history(
        engine,
        tenant.id,
        [(asked["id"], 1, bh.cluster_run, 600)],
        [(ordered["id"], 1, bh.ordered_run, 60)],
    )
    await refreshed(tenant, temporal_client)
    overlap = (await listed(tenant, kind="pipeline"))[0]
    prompt = (await listed(tenant, kind="prompt"))[0]
    assert (overlap["action"]["requires"], prompt["action"]["requires"]) == ("pipelines:write", "optimizer:write")

    applied = await tenant.http.post(f"/v1/recommendations/{overlap['id']}/apply")
    assert applied.status_code == 200, applied.text
    assert applied.json()["result"] == {"pipeline_version": 2}
    version = (await tenant.http.get(f"/v1/pipelines/{ordered['id']}/versions/2")).json()
    assert version["created_by"] == {"kind": "recommendation", "id": overlap["id"]}
    assert [s.get("needs", []) for s in version["definition"]["steps"]] == [[], []]

    started = await tenant.http.post(f"/v1/recommendations/{prompt['id']}/apply")
    assert started.status_code == 200, started.text
    result = started.json()["result"]
    dataset = (await tenant.http.get(f"/v1/datasets/{result['dataset_id']}")).json()
    assert dataset["created_by"] == {"kind": "recommendation", "id": prompt["id"]}
    assert dataset["size"] == len(set(prompt["action"]["dataset"]["run_ids"]) & set(cluster_ids))
    run = (await tenant.http.get(f"/v1/optimizer/runs/{result['optimizer_run_id']}")).json()
    assert (run["dataset_id"], run["metric"]["type"], run["auto_promote"]) == (dataset["id"], "judge", False)
    assert run["strategies"] == ["few_shot", "reflective"]


async def test_every_tenant_has_a_schedule(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    admin = {"Authorization": f"Bearer {await platform_admin_token(stack)}"}
    body = {"name": "scheduled", "owner_email": f"owner-{tenant.id}@example.com", "owner_password": "pw-" + "x" * 20}
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30, headers=admin) as http:
        created = await http.post("/v1/tenants", json=body)
    assert created.status_code == 201, created.text
    made_by_api = await temporal_client.get_schedule_handle(recommendation_schedule_id(created.json()["id"])).describe()
    action = made_by_api.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.task_queue) == (WORKFLOW_NAME, Settings().optimizer_task_queue)
    assert made_by_api.schedule.spec.intervals[0].every == timedelta(hours=6)

    assert await ensure_all_schedules(temporal_client, engine, Settings()) >= 1  # this test's own tenant, at least
    schedule = temporal_client.get_schedule_handle(recommendation_schedule_id(tenant.id))
    await schedule.trigger()
    recent = []
    for _ in range(100):
        recent = (await schedule.describe()).info.recent_actions
        if recent:
            break
        await asyncio.sleep(0.1)
    started = recent[0].action
    assert isinstance(started, ScheduleActionExecutionStartWorkflow)
    assert started.workflow_id.startswith(recommendation_schedule_id(tenant.id))
    summary = await temporal_client.get_workflow_handle(started.workflow_id).result()
    assert (summary["trigger"], summary["opened"]) == ("schedule", 0)
