"""Threads and turns, double-texting, approvals with deadlines, cancel, retry from the failed step, usage."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from tests.conftest import TenantCtx
from tests.support.runs import agent_with_deleted_secret, create_agent, record_history, wait_for, wait_run

SLOW = {"provider": "local", "params": {"latency_ms": 1500}}
CALC_SLOW = {"provider": "local", "name": "local-echo", "params": {"latency_ms": 300}}


async def test_second_turn_continues_the_thread(tenant: TenantCtx, temporal_client: Client) -> None:
    agent = await create_agent(tenant.http)
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "1 + 1"})).json()
    await wait_run(tenant.http, run["id"])
    sent = await tenant.http.post(f"/v1/runs/{run['id']}/messages", json={"input": "and 2 * 3?"})
    assert sent.status_code == 202
    done = await wait_for(tenant, run["id"], lambda r: r["output"] == "Result — calculator: 6")
    assert done["status"] == "completed"
    assert [s["kind"] for s in done["steps"]] == ["llm", "tool", "llm", "llm", "tool", "llm"]
    thread = (await tenant.http.get(f"/v1/threads/{run['thread_id']}/messages")).json()["items"]
    assert [m["role"] for m in thread] == ["user", "assistant", "tool", "assistant"] * 2
    assert thread[4]["content"] == "and 2 * 3?"
    assert thread[1]["tool_calls"][0]["arguments"] == {"expression": "1 + 1"}
    assert (await tenant.http.get("/v1/threads/thr_unknown/messages")).status_code == 404
    await record_history(temporal_client, done["temporal"]["workflow_id"], "two_turns")


async def test_long_poll_after_a_message_waits_for_the_turn_it_started(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http, model=CALC_SLOW)
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "1 + 1"})).json()
    first = (await tenant.http.get(f"/v1/runs/{run['id']}", params={"wait_s": 30})).json()
    assert (first["status"], first["output"]) == ("completed", "Result — calculator: 2")

    sent = await tenant.http.post(f"/v1/runs/{run['id']}/messages", json={"input": "and 2 * 3?"})
    assert sent.status_code == 202
    body = sent.json()
    assert body["id"] == run["id"]
    assert body["turn"]["number"] == 2
    assert body["turn"]["message_id"] == sent.headers["x-message-id"]
    assert body["turn"]["policy"] == "enqueue"
    waited = (await tenant.http.get(f"/v1/runs/{run['id']}", params={"wait_s": 30})).json()
    assert waited["status"] == "completed"
    assert waited["output"] == "Result — calculator: 6", "the long-poll returned the first turn's answer"
    assert len(waited["steps"]) == 6
    again = (await tenant.http.get(f"/v1/runs/{run['id']}", params={"wait_s": 30})).json()  # that turn has ended
    assert again["output"] == "Result — calculator: 6"


async def test_double_texting_reject_and_enqueue(tenant: TenantCtx) -> None:
    rejecting = await create_agent(tenant.http, model=SLOW, double_texting="reject")
    run = (await tenant.http.post(f"/v1/agents/{rejecting['id']}/runs", json={"input": "hello"})).json()
    await wait_for(tenant, run["id"], lambda r: r["status"] == "running")
    refused = await tenant.http.post(f"/v1/runs/{run['id']}/messages", json={"input": "again"})
    assert refused.status_code == 409
    await wait_run(tenant.http, run["id"])

    queueing = await create_agent(tenant.http, model=SLOW, double_texting="enqueue")
    run = (await tenant.http.post(f"/v1/agents/{queueing['id']}/runs", json={"input": "first"})).json()
    await wait_for(tenant, run["id"], lambda r: r["status"] == "running")
    queued = await tenant.http.post(f"/v1/runs/{run['id']}/messages", json={"input": "second"})
    assert queued.status_code == 202
    assert (queued.json()["turn"]["number"], queued.json()["turn"]["policy"]) == (2, "enqueue")
    done = (await tenant.http.get(f"/v1/runs/{run['id']}", params={"wait_s": 30})).json()  # waits for turn 2
    assert done["output"] == "You said: second"
    assert [s["status"] for s in done["steps"]] == ["completed", "completed"]


async def test_interrupt_cancels_the_model_step_and_answers_both(tenant: TenantCtx, temporal_client: Client) -> None:
    agent = await create_agent(
        tenant.http, model={"provider": "local", "params": {"latency_ms": 3000}}, double_texting="interrupt"
    )
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "first"})).json()
    await wait_for(tenant, run["id"], lambda r: any(s["status"] == "running" for s in r["steps"]))
    interrupting = await tenant.http.post(f"/v1/runs/{run['id']}/messages", json={"input": "actually this"})
    assert interrupting.status_code == 202
    assert (interrupting.json()["turn"]["number"], interrupting.json()["turn"]["policy"]) == (1, "interrupt")
    done = (await tenant.http.get(f"/v1/runs/{run['id']}", params={"wait_s": 30})).json()  # the turn it joined
    assert done["output"] == "You said: actually this"
    assert [s["status"] for s in done["steps"]] == ["cancelled", "completed"]
    thread = (await tenant.http.get(f"/v1/threads/{run['thread_id']}/messages")).json()["items"]
    assert [(m["role"], m["content"]) for m in thread] == [
        ("user", "first"),
        ("user", "actually this"),
        ("assistant", "You said: actually this"),
    ]
    await record_history(temporal_client, done["temporal"]["workflow_id"], "interrupt")


async def test_approval_by_operator_then_deadline_rejects(
    tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    agent = await create_agent(tenant.http, tools=[{"name": "calculator", "requires_approval": True}])
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "6 * 7"})).json()
    waiting = await wait_for(tenant, run["id"], lambda r: r["status"] == "waiting_approval")
    approval = next(s for s in waiting["steps"] if s["kind"] == "approval")
    assert approval["status"] == "waiting"
    url = f"/v1/runs/{run['id']}/approvals/{approval['id']}"
    viewer = {"Authorization": f"Bearer {await tenant.key_for(engine, 'viewer')}"}
    operator = {"Authorization": f"Bearer {await tenant.key_for(engine, 'operator')}"}
    assert (await tenant.http.post(url, json={"decision": "approve"}, headers=viewer)).status_code == 403
    not_waiting = await tenant.http.post(
        f"/v1/runs/{run['id']}/approvals/s1", json={"decision": "approve"}, headers=operator
    )
    assert not_waiting.status_code == 409
    approved = await tenant.http.post(url, json={"decision": "approve", "comment": "ok"}, headers=operator)
    assert approved.status_code == 202
    done = await wait_run(tenant.http, run["id"])
    assert done["output"] == "Result — calculator: 42"
    decided = next(s for s in done["steps"] if s["kind"] == "approval")
    assert decided["status"] == "completed"
    assert decided["output"]["decision"] == "approve"
    assert decided["output"]["comment"] == "ok"
    assert decided["output"]["decided_by"].startswith("key_")
    assert (await tenant.http.post(url, json={"decision": "approve"}, headers=operator)).status_code == 409
    await record_history(temporal_client, done["temporal"]["workflow_id"], "approval")

    timed = await create_agent(
        tenant.http, tools=[{"name": "calculator", "requires_approval": True, "approval_timeout_s": 2}]
    )
    run = (await tenant.http.post(f"/v1/agents/{timed['id']}/runs", json={"input": "6 * 7"})).json()
    began = time.monotonic()
    done = await wait_for(tenant, run["id"], lambda r: r["status"] == "completed")
    assert time.monotonic() - began >= 1.5
    assert "rejected" in done["output"]
    decided = next(s for s in done["steps"] if s["kind"] == "approval")
    assert (decided["status"], decided["output"]["decided_by"]) == ("rejected", "deadline")
    assert next(s for s in done["steps"] if s["kind"] == "tool")["status"] == "failed"


async def test_concurrent_calls_wait_for_their_approvals_together(tenant: TenantCtx, engine: AsyncEngine) -> None:
    agent = await create_agent(tenant.http, tools=[{"name": "calculator", "requires_approval": True}])
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "1 + 1 and 2 + 3"})).json()

    def approvals(r: dict[str, Any]) -> list[dict[str, Any]]:
        return [s for s in r["steps"] if s["kind"] == "approval"]

    waiting = await wait_for(tenant, run["id"], lambda r: [s["status"] for s in approvals(r)] == ["waiting"] * 2)
    assert waiting["status"] == "waiting_approval"
    first, second = (f"/v1/runs/{run['id']}/approvals/{s['id']}" for s in approvals(waiting))
    operator = {"Authorization": f"Bearer {await tenant.key_for(engine, 'operator')}"}
    assert (await tenant.http.post(second, json={"decision": "approve"}, headers=operator)).status_code == 202
    half = await wait_for(tenant, run["id"], lambda r: approvals(r)[1]["status"] == "completed")
    assert half["status"] == "waiting_approval"  # the other call still waits for a human
    assert (await tenant.http.post(first, json={"decision": "reject"}, headers=operator)).status_code == 202
    done = await wait_run(tenant.http, run["id"])
    assert done["output"].startswith("Result — calculator: error: the call was rejected")
    assert done["output"].endswith("; calculator: 5")


async def test_cancel(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http, model=SLOW)
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "long job"})).json()
    await wait_for(tenant, run["id"], lambda r: r["status"] == "running")
    assert (await tenant.http.post(f"/v1/runs/{run['id']}/cancel")).status_code == 202
    done = await wait_run(tenant.http, run["id"])
    assert done["status"] == "cancelled"
    assert (await tenant.http.post(f"/v1/runs/{run['id']}/cancel")).status_code == 409
    assert (await tenant.http.post(f"/v1/runs/{run['id']}/messages", json={"input": "x"})).status_code == 409


async def test_retry_continues_from_the_failed_step(tenant: TenantCtx, temporal_client: Client) -> None:
    agent = await agent_with_deleted_secret(tenant.http, "LATER")
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "9 * 9"})).json()
    failed = await wait_run(tenant.http, run["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["type"] == "ProviderRejected"
    assert "LATER" in failed["error"]["message"]
    assert (await tenant.http.post(f"/v1/runs/{run['id']}/messages", json={"input": "x"})).status_code == 409
    await tenant.http.post("/v1/secrets", json={"name": "LATER", "value": "now-it-exists"})
    retried = await tenant.http.post(f"/v1/runs/{run['id']}/retry")
    assert retried.status_code == 202
    turn = retried.json()["turn"]
    assert (turn["number"], turn["message_id"], turn["policy"]) == (1, None, None)
    done = (await tenant.http.get(f"/v1/runs/{run['id']}", params={"wait_s": 30})).json()  # waits for the retry
    assert done["status"] == "completed"
    assert done["output"] == "Result — calculator: 81"
    assert done["error"] is None
    assert (await tenant.http.post(f"/v1/runs/{run['id']}/retry")).status_code == 409
    await record_history(temporal_client, done["temporal"]["workflow_id"], "retry_after_failure")


async def test_usage_per_agent_and_day(tenant: TenantCtx, engine: AsyncEngine) -> None:
    first = await create_agent(tenant.http, name="first")
    second = await create_agent(tenant.http, name="second")
    first_runs = []
    for agent, n in ((first, 2), (second, 1)):
        for _ in range(n):
            run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "3 + 4"})).json()
            await wait_run(tenant.http, run["id"])
            if agent is first:
                first_runs.append(run["id"])
            else:
                second_run = run["id"]
    usage = (await tenant.http.get("/v1/usage", params={"from": "2020-01-01T00:00:00Z"})).json()
    rows = {row["agent_name"]: row for row in usage["agents"]}
    assert rows["first"]["runs"] == 2
    assert rows["second"]["runs"] == 1
    assert rows["first"]["input_tokens"] == 2 * rows["second"]["input_tokens"] > 0
    assert usage["runs"] == 3
    assert usage["input_tokens"] == sum(r["input_tokens"] for r in rows.values())
    moments = {
        first_runs[0]: "2025-06-01T23:30:00Z",
        first_runs[1]: "2025-06-02T00:30:00Z",
        second_run: "2025-06-02T10:00:00Z",
    }
    async with engine.begin() as conn:  # days are UTC days of each run's creation
        for run_id, moment in moments.items():
            await conn.execute(text("UPDATE run SET created_at = :m WHERE id = :id"), {"m": moment, "id": run_id})
    usage = (await tenant.http.get("/v1/usage", params={"from": "2020-01-01T00:00:00Z"})).json()
    assert [(d["day"], d["agent_id"], d["runs"]) for d in usage["days"]] == sorted(  # by day, then agent id
        [("2025-06-01", first["id"], 1), ("2025-06-02", first["id"], 1), ("2025-06-02", second["id"], 1)]
    )
    assert sum(d["cost_usd"] for d in usage["days"]) == pytest.approx(usage["cost_usd"])
    assert sum(d["input_tokens"] for d in usage["days"]) == usage["input_tokens"]
    assert {row["agent_name"]: row["runs"] for row in usage["agents"]} == {"first": 2, "second": 1}
    june_2 = (await tenant.http.get("/v1/usage", params={"from": "2025-06-02T00:00:00Z"})).json()
    assert {row["agent_name"]: row["runs"] for row in june_2["agents"]} == {"first": 1, "second": 1}
    empty = (await tenant.http.get("/v1/usage", params={"to": "2020-01-01T00:00:00Z"})).json()
    assert (empty["runs"], empty["days"]) == (0, [])
    assert (await tenant.http.get("/v1/usage", params={"from": "yesterday"})).status_code == 422


async def test_run_agent_runs_a_child_agent_and_rolls_up_its_usage(
    tenant: TenantCtx, other_tenant: TenantCtx, temporal_client: Client
) -> None:
    child = await create_agent(tenant.http, name="child")
    parent = await create_agent(tenant.http, name="parent", tools=["run_agent"])
    run = (
        await tenant.http.post(
            f"/v1/agents/{parent['id']}/runs", json={"input": f"use run_agent with agent_id={child['id']} input=6*7"}
        )
    ).json()
    done = await wait_run(tenant.http, run["id"], timeout_s=60)
    assert done["status"] == "completed", done
    assert done["output"] == "Result — run_agent: Result — calculator: 42"
    tool_step = next(s for s in done["steps"] if s["kind"] == "tool")
    child_run = (await tenant.http.get(f"/v1/runs/{tool_step['output']['run_id']}")).json()
    assert child_run["agent_id"] == child["id"]
    assert child_run["status"] == "completed"
    assert child_run["output"] == "Result — calculator: 42"
    assert done["usage"]["input_tokens"] > child_run["usage"]["input_tokens"] > 0
    usage = (await tenant.http.get("/v1/usage")).json()
    assert {row["agent_name"]: row["runs"] for row in usage["agents"]} == {"parent": 1}
    assert usage["input_tokens"] == done["usage"]["input_tokens"], "child usage is counted once, in the parent"
    await record_history(temporal_client, done["temporal"]["workflow_id"], "run_agent")

    foreign = await create_agent(other_tenant.http, name="foreign")
    run = (
        await tenant.http.post(
            f"/v1/agents/{parent['id']}/runs", json={"input": f"use run_agent with agent_id={foreign['id']} input=1+1"}
        )
    ).json()
    done = await wait_run(tenant.http, run["id"], timeout_s=60)
    assert done["status"] == "completed"
    assert "no agent" in done["output"]
    assert (await other_tenant.http.get("/v1/runs")).json()["items"] == []
