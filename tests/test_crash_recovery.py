"""A worker killed with SIGKILL mid-run: the supervisor restarts it and the run completes."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from tests.conftest import TenantCtx
from tests.support.runs import create_agent, record_history, wait_run
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
