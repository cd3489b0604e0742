"""``/v1/pipelines/{id}/schedule``: a Temporal Schedule per pipeline whose fires are recorded pipeline runs."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from api.problem_types import ProblemType
from api.problems import ProblemError
from api.temporal_problems import temporal_answers
from core.contracts.pipelines import WORKFLOW_NAME, PipelineRunInput
from core.db.models import PipelineRun
from core.pipelines.schedules import pipeline_schedule_id, scheduled_run_id
from core.settings import Settings
from tests.conftest import TenantCtx
from tests.support.pipelines import final_runs
from tests.support.runs import record_history
from tests.support.users import platform_admin_token
from workers.embedded.stack import StackProcess

INPUTS = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
DEFINITION = {
    "inputs": INPUTS,
    "steps": [{"id": "calc", "type": "tool", "tool": "calculator", "args": {"expression": "${input.n} * 2"}}],
    "output": "steps.calc.output.value",
}


async def _pipeline(http: httpx.AsyncClient, name: str) -> str:
    created = await http.post("/v1/pipelines", json={"name": name, "definition": DEFINITION})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _runs(http: httpx.AsyncClient, schedule_id: str) -> list[dict[str, Any]]:
    response = await http.get("/v1/pipeline-runs", params={"schedule_id": schedule_id})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_schedule_fires_backfills_pauses_and_is_deleted(
    stack: StackProcess, temporal_client: Client, tenant: TenantCtx
) -> None:
    pipeline_id = await _pipeline(tenant.http, "nightly")
    url = f"/v1/pipelines/{pipeline_id}/schedule"
    put = await tenant.http.put(url, json={"cron": "0 3 * * *", "input": {"n": 21}, "overlap": "allow_all"})
    assert put.status_code == 200, put.text
    schedule = put.json()
    schedule_id = pipeline_schedule_id(tenant.id, pipeline_id)
    assert (schedule["id"], schedule["cron"], schedule["input"]) == (schedule_id, "0 3 * * *", {"n": 21})
    assert (schedule["overlap"], schedule["paused"], schedule["version"]) == ("allow_all", False, None)
    assert all(t.endswith("03:00:00Z") for t in schedule["next_action_times"]), schedule["next_action_times"]

    # a fire now (as the schedule takes it at 03:00) records a run carrying the schedule id
    await temporal_client.get_schedule_handle(schedule_id).trigger()
    fired = await _finished(tenant.http, schedule_id, 1)
    assert (fired[0]["status"], fired[0]["output"], fired[0]["version"]) == ("completed", 42, 1), fired
    assert fired[0]["schedule_id"] == schedule_id
    assert fired[0]["temporal"]["workflow_id"].startswith(schedule_id + "-")
    await record_history(temporal_client, fired[0]["temporal"]["workflow_id"], "pipelines/scheduled")

    # backfill three days of fires: three more runs
    now = datetime.now(UTC)
    backfill = await tenant.http.post(
        f"{url}/backfill", json={"from": (now - timedelta(days=3)).isoformat(), "to": now.isoformat()}
    )
    assert backfill.status_code == 202, backfill.text
    runs = await _finished(tenant.http, schedule_id, 4)
    assert {r["status"] for r in runs} == {"completed"}
    assert {r["schedule_id"] for r in runs} == {schedule_id}
    described = (await tenant.http.get(url)).json()
    assert {a["run_id"] for a in described["recent_actions"]} == {r["id"] for r in runs}

    paused = await tenant.http.put(url, json={"cron": "*/5 * * * *", "input": {"n": 1}, "paused": True})
    assert paused.status_code == 200, paused.text
    assert (paused.json()["paused"], paused.json()["cron"], paused.json()["overlap"]) == (True, "*/5 * * * *", "skip")
    assert (await tenant.http.get(url)).json()["paused"] is True

    assert (await tenant.http.delete(url)).status_code == 204
    assert (await tenant.http.get(url)).status_code == 404
    assert (await tenant.http.delete(url)).status_code == 404
    assert len(await _runs(tenant.http, schedule_id)) == 4  # the runs stay


async def _finished(
    http: httpx.AsyncClient, schedule_id: str, count: int, timeout_s: float = 60
) -> list[dict[str, Any]]:
    """The schedule's runs once ``count`` of them are final."""
    return await final_runs(http, {"schedule_id": schedule_id}, count, timeout_s)


async def test_bad_schedules_are_refused_naming_their_field(
    temporal_client: Client, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    pipeline_id = await _pipeline(tenant.http, "checked")
    url = f"/v1/pipelines/{pipeline_id}/schedule"
    bad = await tenant.http.put(url, json={"cron": "61 * * * *", "input": {"n": "x"}})
    assert bad.status_code == 422, bad.text
    assert [e["field"] for e in bad.json()["errors"]] == ["/cron", "/input/n"]
    short = await tenant.http.put(url, json={"cron": "* * * *", "input": {"n": 1}})
    assert [e["field"] for e in short.json()["errors"]] == ["/cron"]
    pinned = await tenant.http.put(url, json={"cron": "* * * * *", "input": {"n": 1}, "version": 4})
    assert [e["field"] for e in pinned.json()["errors"]] == ["/version"]
    overlap = await tenant.http.put(url, json={"cron": "* * * * *", "input": {"n": 1}, "overlap": "sometimes"})
    assert [e["field"] for e in overlap.json()["errors"]] == ["overlap"]
    assert (await tenant.http.get(url)).status_code == 404  # nothing was saved
    for cron in ("0 9 * * mon-fri", "*/15 0-1 1,15 JAN sun", "0 0 * * 7", "5/10 * * * *", "1-10/3 2 * * *"):
        accepted = await tenant.http.put(url, json={"cron": cron, "input": {"n": 1}, "paused": True})
        assert accepted.status_code == 200, (cron, accepted.text)
        assert accepted.json()["next_action_times"], cron

    assert (
        await tenant.http.put(url, json={"cron": "* * * * *", "input": {"n": 1}, "paused": True})
    ).status_code == 200
    now = datetime.now(UTC)
    backwards = await tenant.http.post(f"{url}/backfill", json={"from": now.isoformat(), "to": now.isoformat()})
    assert [e["field"] for e in backwards.json()["errors"]] == ["/to"]
    too_many = await tenant.http.post(
        f"{url}/backfill", json={"from": (now - timedelta(hours=3)).isoformat(), "to": now.isoformat()}
    )
    assert too_many.status_code == 422, too_many.text
    assert [e["field"] for e in too_many.json()["errors"]] == ["/to"]
    naive = await tenant.http.post(f"{url}/backfill", json={"from": "2026-01-01T00:00:00", "to": now.isoformat()})
    assert [e["field"] for e in naive.json()["errors"]] == ["from"]

    for method, path, body in (
        ("GET", url, None),
        ("PUT", url, {"cron": "* * * * *", "input": {"n": 1}}),
        ("POST", f"{url}/backfill", {"from": (now - timedelta(minutes=2)).isoformat(), "to": now.isoformat()}),
        ("DELETE", url, None),
    ):
        assert (await other_tenant.http.request(method, path, json=body)).status_code == 404, (method, path)
    assert (await tenant.http.get(url)).status_code == 200  # still there

    # a fire after a new version changed the inputs schema: the run is recorded failed, not dropped
    assert (await tenant.http.put(url, json={"cron": "0 0 1 1 *", "input": {"n": 1}})).status_code == 200
    stricter = DEFINITION | {"inputs": INPUTS | {"required": ["n", "m"]}}
    assert (await tenant.http.put(f"/v1/pipelines/{pipeline_id}", json={"definition": stricter})).status_code == 200
    schedule_id = pipeline_schedule_id(tenant.id, pipeline_id)
    await temporal_client.get_schedule_handle(schedule_id).trigger()
    refused = (await _finished(tenant.http, schedule_id, 1))[0]
    assert (refused["status"], refused["version"], refused["error"]["type"]) == ("failed", 2, "PipelineInputInvalid")

    # archiving the pipeline deletes its schedule
    assert (await tenant.http.delete(f"/v1/pipelines/{pipeline_id}")).status_code == 204
    assert (await tenant.http.get(url)).status_code == 404
    archived = await tenant.http.put(url, json={"cron": "* * * * *", "input": {"n": 1}})
    assert archived.status_code == 409


async def test_a_fire_over_the_run_quota_is_recorded_failed(
    stack: StackProcess, temporal_client: Client, tenant: TenantCtx
) -> None:
    admin = {"Authorization": f"Bearer {await platform_admin_token(stack)}"}
    capped = await tenant.http.patch(f"/v1/tenants/{tenant.id}", json={"quotas": {"concurrent_runs": 1}}, headers=admin)
    assert capped.status_code == 200, capped.text
    agent = await tenant.http.post(
        "/v1/agents", json={"name": "slow", "model": {"provider": "local", "params": {"latency_ms": 5000}}}
    )
    assert (await tenant.http.post(f"/v1/agents/{agent.json()['id']}/runs", json={"input": "hi"})).status_code == 202
    pipeline_id = await _pipeline(tenant.http, "over-quota")
    put = await tenant.http.put(f"/v1/pipelines/{pipeline_id}/schedule", json={"cron": "0 0 1 1 *", "input": {"n": 1}})
    assert put.status_code == 200, put.text
    schedule_id = put.json()["id"]
    await temporal_client.get_schedule_handle(schedule_id).trigger()
    runs = await _finished(tenant.http, schedule_id, 1)
    assert runs[0]["status"] == "failed", runs
    assert runs[0]["error"]["type"] == "PipelineRunQuotaExceeded"


async def test_temporal_failures_answer_503() -> None:
    with pytest.raises(ProblemError) as caught:
        async with temporal_answers("the schedule could not be read"):
            raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")
    assert (caught.value.status, caught.value.slug) == (503, ProblemType.TEMPORAL_UNAVAILABLE)
    assert caught.value.headers == {"Retry-After": "2"}


async def test_a_scheduled_run_cancelled_while_it_is_recorded_is_never_left_queued(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx
) -> None:
    pipeline_id = await _pipeline(tenant.http, "cancel-other")
    schedule_id = pipeline_schedule_id(tenant.id, pipeline_id)
    workflow_id = f"{schedule_id}-2026-01-01T00:00:00Z"
    handle = await temporal_client.start_workflow(
        WORKFLOW_NAME,
        PipelineRunInput(
            tenant_id=tenant.id, run_id="", pipeline_id=pipeline_id, version=0, definition={}, input={"n": 1},
            schedule_id=schedule_id,
        ),
        id=workflow_id,
        task_queue=Settings().pipelines_task_queue,
    )  # fmt: skip
    await handle.cancel()
    with contextlib.suppress(WorkflowFailureError):  # a fast worker may finish the run before the cancel lands
        await handle.result()
    async with engine.connect() as conn:
        status = (
            await conn.execute(select(PipelineRun.status).where(PipelineRun.id == scheduled_run_id(workflow_id)))
        ).scalar_one_or_none()
    assert status in (None, "cancelled", "completed")
