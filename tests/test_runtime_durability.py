"""Webhooks fired by runs, a 3 MB tool output kept out of history, and SIGKILLs during side effects."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import random
import signal
import subprocess
import sys
import uuid
from collections import Counter
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from core.contracts.agent_run import AgentRunInput
from core.contracts.llm import ToolSchema
from core.db.projection import RunProjection
from core.events import RunEventLog
from core.tools.base import ToolContext, ToolRegistry
from core.tools.builtin import builtin_tools
from tests.conftest import TenantCtx
from tests.core.test_egress import Receiver, Reply, Seen
from tests.helpers import create_agent, wait_run
from tests.workflows.test_agent_run_workflow import _insert_run
from workers.agent_worker import build_agent_activities, build_agent_worker
from workers.embedded.stack import StackProcess
from workflows.agent_run import AgentRunWorkflow


async def _allow_loopback(engine: AsyncEngine, tenant_id: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("""update tenant set egress_allowlist = '["127.0.0.1"]' where id = :t"""), {"t": tenant_id}
        )


async def test_run_completion_is_delivered_to_a_webhook_with_a_valid_signature(
    tenant: TenantCtx, engine: AsyncEngine
) -> None:
    await _allow_loopback(engine, tenant.id)
    async with Receiver() as receiver:
        hook = (
            await tenant.http.post("/v1/webhooks", json={"url": receiver.url("/hook"), "events": ["run.completed"]})
        ).json()
        agent = await create_agent(tenant.http)
        run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "5 * 5"})).json()
        await wait_run(tenant.http, run["id"])
        for _ in range(100):
            if receiver.seen:
                break
            await asyncio.sleep(0.1)
    request = receiver.seen[0]
    parts = dict(p.split("=", 1) for p in request.headers["x-aimpact-signature"].split(","))
    expected = hmac.new(hook["secret"].encode(), f"{parts['t']}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    event = json.loads(request.body)
    assert event["type"] == "run.completed"
    assert event["data"]["run_id"] == run["id"]
    assert event["data"]["output"] == "Result — calculator: 25"
    deliveries = (await tenant.http.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["items"]
    for _ in range(50):
        if deliveries and deliveries[0]["status"] == "delivered":
            break
        await asyncio.sleep(0.1)
        deliveries = (await tenant.http.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["items"]
    assert [(d["event_type"], d["status"], d["last_status_code"]) for d in deliveries] == [
        ("run.completed", "delivered", 200)
    ]


class BigOutputTool:
    """Returns 3 MB of text (a document, a long API answer)."""

    side_effects = False
    schema = ToolSchema(name="big_output", description="3 MB of text", parameters={"type": "object"})

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> Any:
        return "x" * (3 * 1024 * 1024)


async def test_three_megabyte_tool_output_stays_out_of_history(
    stack: StackProcess, temporal_client: Client, engine: AsyncEngine, tenant: TenantCtx
) -> None:
    redis = Redis.from_url(stack.redis_url)
    activities = build_agent_activities(RunProjection(engine), RunEventLog(redis))
    activities._tools = ToolRegistry([*builtin_tools(), BigOutputTool()])  # the test's own tool set
    queue = f"test-{uuid.uuid4().hex}"
    agent = await create_agent(tenant.http, tools=[])
    async with engine.begin() as conn:  # give the stored agent version the test tool
        await conn.execute(
            # and a context budget that lets the whole output reach the model (the default truncates it)
            text("""update agent_version set config = jsonb_set(
                        jsonb_set(config, '{tools}', '[{"name": "big_output"}]'), '{memory,context_tokens}', '2000000')
                    where agent_id = :a"""),
            {"a": agent["id"]},
        )
    run = await _insert_run(engine, tenant.id, agent, "use big_output")
    async with build_agent_worker(temporal_client, activities, queue):
        result = await temporal_client.execute_workflow(
            AgentRunWorkflow.run,
            AgentRunInput(tenant.id, run.id, str(agent["id"]), 1),
            id=run.workflow_id,
            task_queue=queue,
        )
    await redis.aclose()
    assert result.output == "", "the 3 MB answer is passed by reference, not returned through history"
    history = await temporal_client.get_workflow_handle(run.workflow_id).fetch_history()
    assert len(history.to_json()) < 512 * 1024, "the 3 MB output is not in the workflow history"
    thread = (await tenant.http.get(f"/v1/threads/{run.thread_id}/messages")).json()["items"]
    assert len(next(m for m in thread if m["role"] == "tool")["content"]) == 3 * 1024 * 1024
    stored = (await tenant.http.get(f"/v1/runs/{run.id}")).json()
    assert stored["steps"][1]["output"]["size"] == 3 * 1024 * 1024
    assert stored["output"].startswith("Result — big_output: xxx")
    assert len(stored["output"]) > 3 * 1024 * 1024


def _worker(stack: StackProcess, queue: str) -> subprocess.Popen[bytes]:
    env = stack.env | {
        "AIMPACT_AGENTS_TASK_QUEUE": queue,
        "AIMPACT_WORKER_METRICS_PORT": "0",
        "AIMPACT_WORKER_SDK_METRICS_PORT": "0",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


@pytest.mark.slow
async def test_ten_sigkills_during_side_effecting_calls_apply_each_effect_once(
    stack: StackProcess, temporal_client: Client, engine: AsyncEngine, tenant: TenantCtx
) -> None:
    await _allow_loopback(engine, tenant.id)
    applied: Counter[str] = Counter()
    requests: Counter[str] = Counter()

    async def effect(seen: Seen) -> Reply:
        key = seen.headers.get("idempotency-key", "")
        requests[key] += 1
        await asyncio.sleep(random.uniform(0, 0.3))  # a slow side effect: kills land mid-request too
        if key not in applied:
            applied[key] += 1  # the receiver applies each key once, as an idempotent API does
        return Reply(201, b'{"saved": true}', {"content-type": "application/json"})

    runs = 10
    async with Receiver(handler=effect) as receiver:
        created = await tenant.http.post(
            "/v1/tools",
            json={
                "name": "record",
                "description": "records a note",
                "parameters": {"type": "object", "properties": {"note": {"type": "string"}}, "required": ["note"]},
                "method": "POST",
                "url": receiver.url("/notes"),
            },
        )
        assert created.status_code == 201, created.text
        agent = await create_agent(
            tenant.http, tools=["record"], model={"provider": "local", "params": {"latency_ms": 300}}
        )
        queue = f"kill-{uuid.uuid4().hex[:8]}"
        worker = _worker(stack, queue)
        handles = []
        for n in range(runs):
            run = await _insert_run(engine, tenant.id, agent, f"use record with note=n{n}")
            handles.append(
                await temporal_client.start_workflow(
                    AgentRunWorkflow.run,
                    AgentRunInput(tenant.id, run.id, str(agent["id"]), 1, heartbeat_timeout_s=1.5),
                    id=run.workflow_id,
                    task_queue=queue,
                )
            )
        try:
            for _ in range(10):
                await asyncio.sleep(random.uniform(0.4, 1.5))
                os.kill(worker.pid, signal.SIGKILL)
                worker.wait()
                worker = _worker(stack, queue)
            results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), timeout=180)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
    assert all(r.output.startswith("Result — record: ") for r in results)
    keys = [k for k in requests if k]
    assert len(keys) == runs, "one stable idempotency key per tool step"
    assert all(count == 1 for count in applied.values())
    assert sum(applied.values()) == runs
