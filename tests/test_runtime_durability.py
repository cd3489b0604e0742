"""Webhooks fired by runs, a 3 MB tool output kept out of history, effects of retried and killed tool steps."""

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
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowHandle

from core.contracts.agent_run import AgentRunInput
from core.contracts.llm import ToolSchema
from core.db.projection import RunProjection
from core.events import RunEventLog
from core.tools.base import ToolContext, ToolRegistry
from core.tools.builtin import builtin_tools
from tests.conftest import TenantCtx
from tests.support.receivers import Receiver, Reply, Seen
from tests.support.runs import create_agent, insert_run, wait_run
from tests.support.tools import allow_loopback, record_tool
from workers.capabilities.agent_run import build_agent_activities, build_agent_worker
from workers.embedded.stack import StackProcess
from workflows.agent_run import AgentRunWorkflow


async def test_run_completion_is_delivered_to_a_webhook_with_a_valid_signature(
    tenant: TenantCtx, engine: AsyncEngine
) -> None:
    await allow_loopback(engine, tenant.id)
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
    pure = False
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
    run = await insert_run(engine, tenant.id, agent, "use big_output")
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


@asynccontextmanager
async def _first_tool_result_fails(engine: AsyncEngine, tenant_id: str) -> AsyncIterator[None]:
    """The tenant's first tool result written to a thread fails (a transient serialization failure).

    The tool step then fails after its effect was recorded, and Temporal retries it.
    """
    name = f"fail_once_{uuid.uuid4().hex[:12]}"
    async with engine.begin() as conn:
        await conn.execute(text(f"create sequence {name}"))
        await conn.execute(
            text(f"""create function {name}() returns trigger language plpgsql as $$
                     begin
                       if nextval('{name}') = 1 then
                         raise exception 'first tool result refused' using errcode = '40001';
                       end if;
                       return new;
                     end $$""")
        )
        await conn.execute(
            text(f"""create trigger {name} before insert on thread_message for each row
                     when (new.role = 'tool' and new.tenant_id = '{tenant_id}') execute function {name}()""")
        )
    try:
        yield
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"drop trigger {name} on thread_message"))
            await conn.execute(text(f"drop function {name}()"))
            await conn.execute(text(f"drop sequence {name}"))


async def test_a_step_retried_after_its_effect_was_recorded_sends_it_once(
    engine: AsyncEngine, tenant: TenantCtx
) -> None:
    await allow_loopback(engine, tenant.id)
    sent: Counter[str] = Counter()  # idempotency key -> requests received

    def effect(seen: Seen) -> Reply:
        sent[seen.headers.get("idempotency-key", "")] += 1
        return Reply(201, b'{"saved": true}', {"content-type": "application/json"})

    async with Receiver(handler=effect) as receiver, _first_tool_result_fails(engine, tenant.id):
        await record_tool(tenant.http, receiver.url("/notes"))
        agent = await create_agent(tenant.http, tools=["record"])
        started = await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "use record with note=a"})
        run = await wait_run(tenant.http, started.json()["id"])
    assert run["status"] == "completed", run
    assert run["output"].startswith('Result — record: {"status": 201')
    tool = next(s for s in run["steps"] if s["kind"] == "tool")
    assert tool["attempts"] == 2, "the step failed once after its effect was recorded"
    assert list(sent.values()) == [1], f"requests per idempotency key: {dict(sent)}"


def _worker(stack: StackProcess, queue: str, name: str) -> subprocess.Popen[bytes]:
    """An agent worker on ``queue``; its database connections carry the application name ``name``."""
    env = stack.env | {
        "AIMPACT_AGENTS_TASK_QUEUE": queue,
        "AIMPACT_WORKER_METRICS_PORT": "0",
        "AIMPACT_WORKER_SDK_METRICS_PORT": "0",
        "PGAPPNAME": name,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def _ledger_after(engine: AsyncEngine, tenant_id: str, name: str) -> set[str]:
    """The tenant's recorded effects once the dead worker ``name``'s database sessions have ended.

    A statement it sent before it died may still commit until its session ends; after that
    nothing it did can change the ledger.
    """
    sessions = text("select count(*) from pg_stat_activity where application_name = :n")
    for _ in range(300):
        async with engine.connect() as conn:
            if not (await conn.execute(sessions, {"n": name})).scalar_one():
                keys = await conn.execute(text("select key from step_effect where tenant_id = :t"), {"t": tenant_id})
                return set(keys.scalars())
        await asyncio.sleep(0.1)
    raise AssertionError(f"the sessions of worker {name} never ended")


async def _tool_attempts(handle: WorkflowHandle[Any, Any]) -> dict[str, int]:
    """Attempts the run's tool steps took, by effect key (workflow id + step id)."""
    history = await handle.fetch_history()
    keys: dict[int, str] = {}
    attempts: dict[str, int] = {}
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled = event.activity_task_scheduled_event_attributes
            if scheduled.activity_type.name == "agent_run.tool":
                keys[event.event_id] = f"{handle.id}:{json.loads(scheduled.input.payloads[0].data)['step_id']}"
        if event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes
            if started.scheduled_event_id in keys:
                attempts[keys[started.scheduled_event_id]] = started.attempt
    return attempts


@pytest.mark.slow
async def test_sigkills_during_side_effecting_calls_resend_only_unrecorded_effects(
    stack: StackProcess, temporal_client: Client, engine: AsyncEngine, tenant: TenantCtx
) -> None:
    """Three workers killed while their side effects are in flight; a fourth finishes the runs.

    Every request the receiver gets is counted, per idempotency key and per worker that sent
    it. An attempt cut short before its effect was recorded (a kill mid-request, a heartbeat
    timeout) may have sent it: the next attempt sends it again under the same key. What
    the platform must never do is send an effect twice in one attempt, or at all from a
    worker started after the effect was recorded, nor keep two results of one step. Each
    worker sends to a URL of its own (``/notes/<n>``, set while no worker runs), so every
    request is attributed to the worker that sent it.
    """
    await allow_loopback(engine, tenant.id)
    sent: Counter[tuple[str, int]] = Counter()  # (idempotency key, worker) -> requests received
    sending: dict[int, asyncio.Event] = defaultdict(asyncio.Event)  # worker -> it has sent a request

    async def effect(seen: Seen) -> Reply:
        worker = int(seen.path.rsplit("/", 1)[1])
        sent[seen.headers.get("idempotency-key", ""), worker] += 1
        sending[worker].set()
        await asyncio.sleep(random.uniform(0, 0.3))  # a slow side effect: kills land mid-request too
        return Reply(201, b'{"saved": true}', {"content-type": "application/json"})

    runs = 10
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    async with Receiver(handler=effect) as receiver:

        async def start_worker(n: int) -> subprocess.Popen[bytes]:
            async with engine.begin() as conn:  # no worker runs now: worker n alone sends to /notes/n
                await conn.execute(
                    text("update tenant_tool set url = :u where tenant_id = :t and name = 'record'"),
                    {"u": receiver.url(f"/notes/{n}"), "t": tenant.id},
                )
            return _worker(stack, queue, f"{queue}-{n}")

        await record_tool(tenant.http, receiver.url("/notes/0"))
        agent = await create_agent(  # enough attempts for a step that every kill cuts short
            tenant.http,
            tools=[{"name": "record", "max_attempts": 20}],
            model={"provider": "local", "params": {"latency_ms": 300, "max_attempts": 20}},
        )
        workers = 0
        worker = await start_worker(workers)
        ledgers: list[set[str]] = []  # ledgers[n]: the effects recorded once worker n was gone
        runs_and_handles = []
        for n in range(runs):
            run = await insert_run(engine, tenant.id, agent, f"use record with note=n{n}")
            handle = await temporal_client.start_workflow(
                AgentRunWorkflow.run,
                AgentRunInput(tenant.id, run.id, str(agent["id"]), 1, heartbeat_timeout_s=1.5),
                id=run.workflow_id,
                task_queue=queue,
            )
            runs_and_handles.append((run, handle))
        finished = asyncio.gather(*(h.result() for _, h in runs_and_handles))
        try:
            for _ in range(3):  # kill each worker while its first side effects are in flight or unrecorded
                sent_one = asyncio.ensure_future(sending[workers].wait())
                await asyncio.wait([finished, sent_one], timeout=120, return_when=asyncio.FIRST_COMPLETED)
                sent_one.cancel()
                if finished.done():
                    break
                assert sending[workers].is_set(), f"worker {workers} sent nothing for 120 s"
                await asyncio.sleep(random.uniform(0, 0.3))
                os.kill(worker.pid, signal.SIGKILL)
                worker.wait()
                ledgers.append(await _ledger_after(engine, tenant.id, f"{queue}-{workers}"))
                workers += 1
                worker = await start_worker(workers)
            results = await asyncio.wait_for(finished, 180)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        ledgers.append(await _ledger_after(engine, tenant.id, f"{queue}-{workers}"))
    assert all(r.output.startswith("Result — record: ") for r in results)
    attempts: dict[str, int] = {}
    for run, handle in runs_and_handles:
        attempts |= await _tool_attempts(handle)
        thread = (await tenant.http.get(f"/v1/threads/{run.thread_id}/messages")).json()["items"]
        assert [m["role"] for m in thread].count("tool") == 1, "one result per tool step"
    assert {key for key, _ in sent} == set(attempts), "one stable idempotency key per tool step"
    for key, tries in attempts.items():
        by_worker = {n: count for (k, n), count in sent.items() if k == key}
        recorder = next(n for n, ledger in enumerate(ledgers) if key in ledger)
        assert sum(by_worker.values()) <= tries, f"{key}: {by_worker} requests (by worker) in {tries} attempts"
        assert max(by_worker) == recorder, f"{key}: sent by worker {max(by_worker)} after worker {recorder} recorded it"
