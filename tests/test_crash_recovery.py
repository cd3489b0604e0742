"""A worker killed with SIGKILL mid-run (agents, pipelines): the supervisor restarts it and the run completes."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from tests.conftest import TenantCtx
from tests.support.pipelines import steps_of, wait_pipeline_run
from tests.support.receivers import Receiver, Reply, Seen
from tests.support.runs import create_agent, record_history, wait_run
from tests.support.tools import allow_loopback, record_tool
from workers.embedded.stack import StackProcess

pytestmark = pytest.mark.slow


async def _wait_for_running_step(tenant: TenantCtx, run_id: str, step_id: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = (await tenant.http.get(f"/v1/runs/{run_id}")).json()
        if any(s["id"] == step_id and s["status"] == "running" for s in run["steps"]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"step {step_id} never ran")


async def test_sigkill_worker_mid_run_completes_with_effects_once(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    agent = await create_agent(tenant.http, model={"provider": "local", "params": {"latency_ms": 1500}})
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "What is 6 * 7?"})).json()

    await _wait_for_running_step(tenant, run["id"], "s1")
    victim = stack.pids()["worker-agents"]
    os.kill(victim, signal.SIGKILL)

    finished = await wait_run(tenant.http, run["id"], timeout_s=90)

    assert finished["status"] == "completed", finished
    assert finished["output"] == "Result — calculator: 42"
    steps = {s["id"]: s for s in finished["steps"]}
    assert list(steps) == ["s1", "s2", "s3"]
    assert steps["s1"]["attempts"] >= 2, "the interrupted model call was retried"
    assert stack.pids()["worker-agents"] != victim, "the supervisor restarted the worker"
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("select step_id, count(*) from run_step where run_id = :r group by step_id"), {"r": run["id"]}
            )
        ).all()
        effects = (
            await conn.execute(
                text("select count(*) from step_effect where key like :k"), {"k": f"%:run:{run['id']}:%"}
            )
        ).scalar_one()
    assert sorted(rows) == [("s1", 1), ("s2", 1), ("s3", 1)]
    assert effects == 1, "the tool's effect is recorded exactly once"
    await record_history(temporal_client, finished["temporal"]["workflow_id"], "crash_recovery")


def _record(step_id: str, **extra: Any) -> dict[str, Any]:
    """A tool step posting ``{note: step_id}`` to the receiver through the tenant tool ``record``."""
    return {"id": step_id, "type": "tool", "tool": "record", "args": {"note": step_id}, **extra}


async def test_sigkill_pipelines_worker_mid_run_completes_with_each_effect_once(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    """The pipelines worker dies during a ``wait`` between two side-effecting tool steps."""
    await allow_loopback(engine, tenant.id)
    sent: Counter[str] = Counter()  # idempotency key -> requests received

    def effect(seen: Seen) -> Reply:
        sent[seen.headers.get("idempotency-key", "")] += 1
        return Reply(201, b'{"saved": true}', {"content-type": "application/json"})

    definition = {
        "steps": [
            _record("before"),
            {"id": "pause", "type": "wait", "seconds": 4, "needs": ["before"]},
            _record("after", needs=["pause"]),
        ],
        "output": "[steps.before.output.status, steps.after.output.status]",
    }
    async with Receiver(handler=effect) as receiver:
        await record_tool(tenant.http, receiver.url("/notes"))
        created = await tenant.http.post("/v1/pipelines", json={"name": "crash", "definition": definition})
        assert created.status_code == 201, created.text
        run = (await tenant.http.post(f"/v1/pipelines/{created.json()['id']}/runs", json={"input": {}})).json()
        workflow_id = run["temporal"]["workflow_id"]

        def pausing(body: dict[str, Any]) -> bool:
            return steps_of(body).get("pause", {}).get("status") == "running"

        await wait_pipeline_run(tenant.http, run["id"], pausing, timeout_s=30)
        victim = stack.pids()["worker-pipelines"]
        os.kill(victim, signal.SIGKILL)
        assert set(sent) == {f"{workflow_id}:before"}, "the kill landed before the second effect"

        finished = await wait_pipeline_run(tenant.http, run["id"], timeout_s=90)

    assert finished["status"] == "completed", finished
    assert finished["output"] == [201, 201]
    steps = steps_of(finished)
    assert [(s["id"], s["status"]) for s in finished["steps"]] == [
        ("before", "completed"),
        ("pause", "completed"),
        ("after", "completed"),
    ]
    assert steps["before"]["attempts"] == steps["after"]["attempts"] == 1
    assert stack.pids()["worker-pipelines"] != victim, "the supervisor restarted the worker"
    keys = [f"{workflow_id}:before", f"{workflow_id}:after"]
    assert sent == Counter(dict.fromkeys(keys, 1)), f"requests per idempotency key: {dict(sent)}"
    async with engine.connect() as conn:
        effects = (
            await conn.execute(
                text("select key, count(*) from step_effect where key like :k group by key"), {"k": f"{workflow_id}:%"}
            )
        ).all()
    assert sorted(effects) == sorted((key, 1) for key in keys), "each tool effect is recorded once"
    await temporal_client.get_workflow_handle(workflow_id).result()  # the recorded history ends with the workflow
    await record_history(temporal_client, workflow_id, "pipelines/crash_recovery")
