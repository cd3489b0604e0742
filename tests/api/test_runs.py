"""End to end over HTTP: agent → run → completed, idempotency, listing, isolation."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from tests.conftest import TenantCtx
from tests.support.runs import create_agent, record_history, wait_run


async def test_run_completes_with_tool_step_and_answer(tenant: TenantCtx, temporal_client: Client) -> None:
    agent = await create_agent(tenant.http)
    response = await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "What is 12 * (3 + 4)?"})
    assert response.status_code == 202
    started = response.json()
    assert started["status"] in {"queued", "running"}
    assert started["temporal"]["workflow_id"] == f"{tenant.id}:run:{started['id']}"

    run = await wait_run(tenant.http, started["id"])

    assert run["status"] == "completed", run
    assert [(s["id"], s["kind"], s["name"], s["status"]) for s in run["steps"]] == [
        ("s1", "llm", "local:local-echo", "completed"),
        ("s2", "tool", "calculator", "completed"),
        ("s3", "llm", "local:local-echo", "completed"),
    ]
    assert run["steps"][1]["input"] == {"expression": "12 * (3 + 4)"}
    assert run["steps"][1]["output"] == {"expression": "12 * (3 + 4)", "value": 84}
    assert run["output"] == "Result — calculator: 84"
    assert run["usage"]["input_tokens"] > 0
    assert run["usage"]["output_tokens"] > 0
    for field in ("input_tokens", "output_tokens"):  # each model step's share; tool steps cost nothing
        assert [s["usage"][field] > 0 for s in run["steps"]] == [True, False, True]
        assert sum(s["usage"][field] for s in run["steps"]) == run["usage"][field]
    assert run["temporal"]["run_id"]
    assert run["temporal"]["ui_url"].endswith(f"/{run['temporal']['run_id']}/history")
    await record_history(temporal_client, run["temporal"]["workflow_id"], "http_run")


async def test_run_without_tools_answers_directly(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http, tools=[])
    started = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "hello there"})).json()
    run = await wait_run(tenant.http, started["id"])
    assert run["status"] == "completed"
    assert run["output"] == "You said: hello there"
    assert [s["kind"] for s in run["steps"]] == ["llm"]


async def test_idempotency_key_returns_the_same_run(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    url = f"/v1/agents/{agent['id']}/runs"
    headers = {"Idempotency-Key": "order-42"}
    first, second = await asyncio.gather(
        tenant.http.post(url, json={"input": "1+1"}, headers=headers),
        tenant.http.post(url, json={"input": "1+1"}, headers=headers),
    )
    third = await tenant.http.post(url, json={"input": "1+1"}, headers=headers)
    assert first.status_code == second.status_code == third.status_code == 202
    assert first.json()["id"] == second.json()["id"] == third.json()["id"]
    await wait_run(tenant.http, first.json()["id"])
    listed = (await tenant.http.get("/v1/runs", params={"agent_id": agent["id"]})).json()
    assert [r["id"] for r in listed["items"]] == [first.json()["id"]]


async def test_a_reused_idempotency_key_with_another_body_is_422_on_every_api_process(
    tenant: TenantCtx, second_api: str, engine: AsyncEngine
) -> None:
    agent, other_agent = await create_agent(tenant.http), await create_agent(tenant.http)
    url = f"/v1/agents/{agent['id']}/runs"
    headers = {"Idempotency-Key": "order-43"}
    async with httpx.AsyncClient(base_url=second_api, headers=tenant.http.headers, timeout=30) as replica:
        first = await tenant.http.post(url, json={"input": "1+1", "metadata": {"a": 1, "b": 2}}, headers=headers)
        assert first.status_code == 202
        run_id = first.json()["id"]
        same = {"metadata": {"b": 2, "a": 1}, "input": "1+1", "thread_id": None}  # the same request, spelled otherwise
        for client in (tenant.http, replica):
            again = await client.post(url, json=same, headers=headers)
            assert (again.status_code, again.json()["id"]) == (202, run_id), again.text
        others = [(url, {"input": "2+2"}), (url, {"input": "1+1"}), (f"/v1/agents/{other_agent['id']}/runs", same)]
        for client in (tenant.http, replica):
            for other_url, body in others:
                refused = await client.post(other_url, json=body, headers=headers)
                assert refused.status_code == 422, refused.text
                assert refused.headers["content-type"].startswith("application/problem+json")
                problem = refused.json()
                assert problem["type"].endswith("/idempotency-key-reused")
                assert [e["field"] for e in problem["errors"]] == ["Idempotency-Key"]
                assert "order-43" in problem["detail"]
                assert run_id in problem["detail"]

        racing = await asyncio.gather(  # two processes, one new key, two different bodies at once
            tenant.http.post(url, json={"input": "3+3"}, headers={"Idempotency-Key": "order-44"}),
            replica.post(url, json={"input": "4+4"}, headers={"Idempotency-Key": "order-44"}),
        )
        assert sorted(r.status_code for r in racing) == [202, 422], [r.text for r in racing]

    async with engine.begin() as conn:  # a run recorded before requests were fingerprinted
        await conn.execute(text("UPDATE run SET idempotency_hash = NULL WHERE id = :id"), {"id": run_id})
    legacy = await tenant.http.post(url, json={"input": "anything else"}, headers=headers)
    assert (legacy.status_code, legacy.json()["id"]) == (202, run_id)
    await wait_run(tenant.http, run_id)
    listed = (await tenant.http.get("/v1/runs", params={"agent_id": agent["id"]})).json()["items"]
    assert len(listed) == 2  # order-43's run and the race's winner
    assert run_id in [r["id"] for r in listed]


async def test_list_runs_filters_and_paginates(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    ids = []
    for n in range(3):
        started = await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": f"{n} + 1"})
        ids.append(started.json()["id"])
    for run_id in ids:
        await wait_run(tenant.http, run_id)

    page1 = (await tenant.http.get("/v1/runs", params={"limit": 2})).json()
    page2 = (await tenant.http.get("/v1/runs", params={"limit": 2, "cursor": page1["next_cursor"]})).json()
    assert [r["id"] for r in page1["items"] + page2["items"]] == list(reversed(ids))
    assert page2["next_cursor"] is None
    completed = (await tenant.http.get("/v1/runs", params={"status": "completed"})).json()
    assert len(completed["items"]) == 3
    assert all(len(r["steps"]) == 3 for r in completed["items"])
    assert (await tenant.http.get("/v1/runs", params={"status": "failed"})).json()["items"] == []


async def test_list_runs_by_time_and_text(tenant: TenantCtx, other_tenant: TenantCtx, engine: AsyncEngine) -> None:
    agent = await create_agent(tenant.http)
    inputs = ("refund order 100_% please", "What is 6 * 7?", "REFUND order 7")
    ids = []
    for text_input in inputs:
        ids.append((await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": text_input})).json()["id"])
    for run_id in ids:
        await wait_run(tenant.http, run_id)
    async with engine.begin() as conn:  # the first run is from last year
        await conn.execute(text("UPDATE run SET created_at = '2025-06-01T12:00:00Z' WHERE id = :id"), {"id": ids[0]})

    async def listed(**params: str) -> list[str]:
        page = await tenant.http.get("/v1/runs", params=params)
        assert page.status_code == 200, page.text
        return [r["id"] for r in page.json()["items"]]

    assert await listed(q="refund") == [ids[2], ids[0]]  # input, any case
    assert await listed(q="42") == [ids[1]]  # output ("Result — calculator: 42")
    assert await listed(q="100_%") == [ids[0]]  # LIKE wildcards are literal text
    assert await listed(q="1_0") == []
    assert await listed(**{"from": "2026-01-01T00:00:00Z"}) == [ids[2], ids[1]]
    assert await listed(to="2026-01-01T00:00:00Z") == [ids[0]]
    assert await listed(q="refund", **{"from": "2026-01-01T00:00:00Z"}, status="completed") == [ids[2]]
    first = (await tenant.http.get("/v1/runs", params={"q": "order", "limit": 1})).json()
    second = await listed(q="order", limit="1", cursor=first["next_cursor"])
    assert [first["items"][0]["id"], *second] == [ids[2], ids[0]]
    assert (await other_tenant.http.get("/v1/runs", params={"q": "refund"})).json()["items"] == []
    empty = await tenant.http.get("/v1/runs", params={"q": ""})
    assert (empty.status_code, empty.json()["errors"][0]["field"]) == (422, "q")
    bad = await tenant.http.get("/v1/runs", params={"from": "last week"})
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "from")


async def test_other_tenants_objects_answer_404(tenant: TenantCtx, other_tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "2+2"})).json()

    for kind, object_id in (("agents", agent["id"]), ("runs", run["id"])):
        response = await other_tenant.http.get(f"/v1/{kind}/{object_id}")
        absent = await other_tenant.http.get(f"/v1/{kind}/{object_id[:4]}doesnotexist")
        assert response.status_code == absent.status_code == 404
        assert response.text.replace(object_id, "X") == absent.text.replace(f"{object_id[:4]}doesnotexist", "X")
        assert tenant.id not in response.text
    start = await other_tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "2+2"})
    assert start.status_code == 404
    assert (await other_tenant.http.get("/v1/runs")).json()["items"] == []
    assert (await other_tenant.http.get("/v1/agents")).json()["items"] == []
    await wait_run(tenant.http, run["id"])
