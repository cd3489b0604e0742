"""A pipeline run's events (SSE, resumable), its webhooks, its steps pages and idempotent starts, on the stack."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from core.webhooks.signing import verify
from tests.api.test_tools import allow_loopback
from tests.conftest import TenantCtx
from tests.support.api_process import temporal_out_of_reach
from tests.support.pipelines import map_items, wait_pipeline_run
from tests.support.receivers import Receiver
from tests.support.runs import record_history, until
from tests.support.sse import read_sse
from workers.embedded.stack import StackProcess

READ_GUARD_S = 60
"""Bounds a stream read: a stream that does not end fails the test instead of hanging it."""
GATED = {
    "steps": [
        {"id": "calc", "type": "tool", "tool": "calculator", "args": {"expression": "6 * 7"}},
        {"id": "gate", "type": "approval", "needs": ["calc"], "prompt": "ship ${steps.calc.output.value}?"},
    ],
    "output": "steps.calc.output.value",
}


async def _pipeline(http: httpx.AsyncClient, definition: dict[str, Any]) -> str:
    created = await http.post("/v1/pipelines", json={"name": "p", "definition": definition})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _run(http: httpx.AsyncClient, pipeline_id: str, body: dict[str, Any] | None = None, **headers: str) -> Any:
    started = await http.post(f"/v1/pipelines/{pipeline_id}/runs", json=body or {}, headers=headers)
    assert started.status_code == 202, started.text
    return started.json()


def _names(events: list[dict[str, Any]]) -> list[str]:
    return [f"{e['event']}:{e['data'].get('step_id', '')}" for e in events]


async def _events(http: httpx.AsyncClient, run_id: str, **kw: Any) -> list[dict[str, Any]]:
    return await asyncio.wait_for(read_sse(http, f"/v1/pipeline-runs/{run_id}/events", **kw), READ_GUARD_S)


async def test_the_event_stream_follows_a_run_through_its_approval_and_ends(
    stack: StackProcess, tenant: TenantCtx
) -> None:
    run = await _run(tenant.http, await _pipeline(tenant.http, GATED))

    first = await _events(tenant.http, run["id"], until={"pipeline_run.waiting_approval"})
    decided = await tenant.http.post(f"/v1/pipeline-runs/{run['id']}/approvals/gate", json={"decision": "approve"})
    assert decided.status_code == 202, decided.text
    rest = await _events(tenant.http, run["id"], last_id=first[-1]["id"])  # to the end of the stream

    names = _names(first + rest)
    if "pipeline_step.started:gate" in names:  # written when the step started, if that write caught it before it waited
        names.remove("pipeline_step.started:gate")
    assert names == [
        "pipeline_run.started:",
        "pipeline_step.started:calc",
        "pipeline_step.completed:calc",
        "pipeline_step.waiting_approval:gate",
        "pipeline_run.waiting_approval:gate",
        "pipeline_step.completed:gate",
        "pipeline_run.completed:",
    ]
    ids = [e["id"] for e in first + rest]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    assert len(set(ids)) == len(ids)
    assert first[2]["data"]["output"] == {"expression": "6 * 7", "value": 42}
    assert rest[0]["data"]["output"]["decision"] == "approve"
    assert (rest[-1]["data"]["status"], rest[-1]["data"]["output"]) == ("completed", 42)
    # a finished run's stream replays its stored events and ends
    assert _names(await _events(tenant.http, run["id"], after=first[1]["id"]))[0] == "pipeline_step.completed:calc"
    assert len(await _events(tenant.http, run["id"])) == len(ids)


async def test_events_of_another_tenant_are_404(
    stack: StackProcess, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    run = await _run(tenant.http, await _pipeline(tenant.http, GATED))
    assert (await other_tenant.http.get(f"/v1/pipeline-runs/{run['id']}/events")).status_code == 404
    assert (await tenant.http.get("/v1/pipeline-runs/prn_missing/events")).status_code == 404
    await tenant.http.post(f"/v1/pipeline-runs/{run['id']}/cancel")


async def test_webhooks_get_waiting_approval_and_completed(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    refused = await tenant.http.post(
        "/v1/webhooks", json={"url": "https://hooks.example.com/x", "events": ["pipeline_run.done"]}
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"].startswith("events")
    await allow_loopback(engine, tenant.id)
    async with Receiver() as receiver:
        events = ["pipeline_run.completed", "pipeline_run.failed", "pipeline_run.waiting_approval"]
        hook = await tenant.http.post("/v1/webhooks", json={"url": receiver.url("/hook"), "events": events})
        assert hook.status_code == 201, hook.text
        run = await _run(tenant.http, await _pipeline(tenant.http, GATED))
        assert await until(lambda: len(receiver.seen) == 1, 30)
        await tenant.http.post(f"/v1/pipeline-runs/{run['id']}/approvals/gate", json={"decision": "approve"})
        assert await until(lambda: len(receiver.seen) == 2, 30)
    await wait_pipeline_run(tenant.http, run["id"])
    await record_history(temporal_client, run["temporal"]["workflow_id"], "pipelines/webhooks")
    bodies = [json.loads(seen.body) for seen in receiver.seen]
    assert all(verify(hook.json()["secret"], s.body, s.headers["x-aimpact-signature"]) for s in receiver.seen)
    assert [(b["id"], b["type"]) for b in bodies] == [
        (f"{run['id']}:pipeline_run.waiting_approval:gate", "pipeline_run.waiting_approval"),
        (f"{run['id']}:pipeline_run.completed", "pipeline_run.completed"),
    ]
    assert bodies[0]["data"] == {"run_id": run["id"], "status": "waiting_approval", "step_id": "gate"}
    assert (bodies[1]["data"]["run_id"], bodies[1]["data"]["output"]) == (run["id"], 42)
    log = (await tenant.http.get(f"/v1/webhooks/{hook.json()['id']}/deliveries")).json()["items"]
    assert sorted((d["event_type"], d["status"]) for d in log) == [
        ("pipeline_run.completed", "delivered"),
        ("pipeline_run.waiting_approval", "delivered"),
    ]


async def test_map_items_are_paged_apart_from_the_run(stack: StackProcess, tenant: TenantCtx) -> None:
    definition = {
        "steps": [
            {"id": "first", "type": "wait", "seconds": 0},
            {"id": "m", "type": "map", "over": "[1, 2, 3, 4, 5]", "step": {"type": "wait", "seconds": 0}},
        ]
    }
    run = await _run(tenant.http, await _pipeline(tenant.http, definition))
    body = await wait_pipeline_run(tenant.http, run["id"])
    assert [(s["id"], s["items"]) for s in body["steps"]] == [("first", None), ("m", 5)]

    page = (await tenant.http.get(f"/v1/pipeline-runs/{run['id']}/steps", params={"parent": "m", "limit": 2})).json()
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    items = await map_items(tenant.http, run["id"], "m", limit=2)
    assert sorted(s["id"] for s in items) == [f"m[{i}]" for i in range(5)]
    assert all(s["status"] == "completed" for s in items)
    top = (await tenant.http.get(f"/v1/pipeline-runs/{run['id']}/steps")).json()
    assert [s["id"] for s in top["items"]] == ["first", "m"]
    assert (await tenant.http.get(f"/v1/pipeline-runs/{run['id']}/steps", params={"parent": "first"})).json() == {
        "items": [],
        "next_cursor": None,
    }
    bad = await tenant.http.get(f"/v1/pipeline-runs/{run['id']}/steps", params={"parent": "m[x]"})
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "parent")
    assert (await tenant.http.get("/v1/pipeline-runs/prn_missing/steps")).status_code == 404


async def test_an_idempotent_retry_after_a_put_answers_the_first_run(stack: StackProcess, tenant: TenantCtx) -> None:
    pipeline_id = await _pipeline(tenant.http, {"steps": [{"id": "w", "type": "wait", "seconds": 0}]})
    first = await _run(tenant.http, pipeline_id, {"input": {"n": 1}}, **{"Idempotency-Key": "k-1"})
    changed = {"definition": {"steps": [{"id": "w2", "type": "wait", "seconds": 0}]}}
    assert (await tenant.http.put(f"/v1/pipelines/{pipeline_id}", json=changed)).status_code == 200

    again = await _run(tenant.http, pipeline_id, {"input": {"n": 1}}, **{"Idempotency-Key": "k-1"})

    assert (again["id"], again["version"]) == (first["id"], 1)
    other = await tenant.http.post(
        f"/v1/pipelines/{pipeline_id}/runs", json={"input": {"n": 2}}, headers={"Idempotency-Key": "k-1"}
    )
    assert (other.status_code, other.json()["errors"][0]["field"]) == (422, "Idempotency-Key")
    listed = (await tenant.http.get("/v1/pipeline-runs", params={"pipeline_id": pipeline_id})).json()["items"]
    assert [r["id"] for r in listed] == [first["id"]]


async def test_temporal_out_of_reach_answers_503_and_a_keyed_retry_starts_the_run(
    stack: StackProcess, tenant: TenantCtx
) -> None:
    pipeline_id = await _pipeline(tenant.http, GATED)
    waiting = await _run(tenant.http, pipeline_id)
    await wait_pipeline_run(tenant.http, waiting["id"], lambda r: r["status"] == "waiting_approval")
    key = {"Idempotency-Key": "outage-1"}

    async with temporal_out_of_reach(stack, tenant.key) as down:
        answers = [
            await down.post(f"/v1/pipeline-runs/{waiting['id']}/approvals/gate", json={"decision": "approve"}),
            await down.post(f"/v1/pipeline-runs/{waiting['id']}/cancel"),
            await down.post(f"/v1/pipelines/{pipeline_id}/runs", json={}, headers=key),
        ]

    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.headers["retry-after"] == "2"
    queued = (await tenant.http.get("/v1/pipeline-runs", params={"status": "queued"})).json()["items"]
    assert [r["pipeline_id"] for r in queued] == [pipeline_id]  # recorded, not started
    retried = await _run(tenant.http, pipeline_id, **key)
    assert retried["id"] == queued[0]["id"]
    assert (await wait_pipeline_run(tenant.http, retried["id"], lambda r: r["status"] == "waiting_approval"))["steps"]
    assert (await tenant.http.get(f"/v1/pipeline-runs/{waiting['id']}")).json()["status"] == "waiting_approval"
