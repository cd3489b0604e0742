"""Pipeline runs end to end on the embedded stack: PipelineWorkflow on the pipelines worker, the projection, the API."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from core.contracts.pipelines import STEP_FAILED, TOOL_FAILED
from tests.conftest import TenantCtx
from tests.support.pipelines import start, steps_of, wait_pipeline_run
from workers.embedded.stack import StackProcess


def calc(step_id: str, expression: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "tool", "tool": "calculator", "args": {"expression": expression}, **extra}


async def test_parallel_tools_if_and_skip_propagation(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx
) -> None:
    definition = {
        "steps": [
            calc("a", "${input.n} * 2"),
            calc("b", "${input.n} + 1"),
            calc("sum", "${steps.a.output.value} + ${steps.b.output.value}", needs=["a", "b"]),
            calc("never", "1", needs=["a"], **{"if": "steps.a.output.value > 1000"}),
            calc("after_never", "2", needs=["never"]),
        ],
        "output": "{'sum': steps.sum.output.value, 'never': steps.never.status}",
    }
    run = await start(engine, temporal_client, tenant.id, definition, {"n": 5})
    body = await wait_pipeline_run(tenant.http, run.id)
    assert body["status"] == "completed", str(body)
    steps = steps_of(body)
    assert [s["status"] for s in body["steps"]] == ["completed", "completed", "completed", "skipped", "skipped"]
    assert body["output"] == {"sum": 16, "never": "skipped"}
    a, b = steps["a"], steps["b"]
    # a and b ran at once: each started before the other ended
    assert a["started_at"] < b["ended_at"]
    assert b["started_at"] < a["ended_at"]
    assert steps["sum"]["started_at"] >= max(a["ended_at"], b["ended_at"])
    assert steps["never"]["started_at"] is None
    assert steps["after_never"]["started_at"] is None
    assert body["temporal"]["workflow_id"] == f"{tenant.id}:pipeline:{run.id}"
    assert body["temporal"]["run_id"]


async def test_retries_then_continue(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx
) -> None:
    definition = {
        "steps": [
            calc("bad", "1 +", retry={"max_attempts": 3, "backoff_s": 0.05}, on_error="continue"),
            calc("next", "40 + 2", needs=["bad"]),
        ],
        "output": "{'next': steps.next.output.value, 'bad': steps.bad.status, 'why': steps.bad.error.type}",
    }
    run = await start(engine, temporal_client, tenant.id, definition)
    body = await wait_pipeline_run(tenant.http, run.id)
    assert body["status"] == "completed", str(body)
    bad = steps_of(body)["bad"]
    assert bad["status"] == "failed"
    assert bad["attempts"] == 3
    assert bad["error"]["type"] == TOOL_FAILED
    assert body["output"] == {"next": 42, "bad": "failed", "why": TOOL_FAILED}


async def test_a_failing_step_fails_the_run_and_cancels_the_rest(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx
) -> None:
    definition = {"steps": [calc("bad", "nope"), {"id": "slow", "type": "wait", "seconds": 30}]}
    run = await start(engine, temporal_client, tenant.id, definition)
    body = await wait_pipeline_run(tenant.http, run.id)
    assert body["status"] == "failed"
    assert body["error"]["type"] == STEP_FAILED
    assert body["error"]["step_id"] == "bad"
    assert steps_of(body)["slow"]["status"] == "cancelled"
