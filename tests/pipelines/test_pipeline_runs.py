"""Pipeline runs end to end on the embedded stack: PipelineWorkflow on the pipelines worker, the projection, the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from core.contracts.pipelines import APPROVAL_REJECTED, APPROVAL_TIMED_OUT, STEP_FAILED, TOOL_FAILED
from core.pipelines.runs import IdempotencyKeyReusedError
from tests.conftest import TenantCtx
from tests.support.pipelines import map_items, start, steps_of, wait_pipeline_run
from tests.support.runs import create_agent, record_history, wait_run
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
    await record_history(temporal_client, run.workflow_id, "pipelines/parallel_tools")
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
    await record_history(temporal_client, run.workflow_id, "pipelines/retry_continue")
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


def waiting(step_id: str) -> Callable[[dict[str, Any]], bool]:
    """The step waits for a decision, and so does the run."""
    return lambda run: (
        run["status"] == "waiting_approval" and steps_of(run).get(step_id, {}).get("status") == "waiting_approval"
    )


async def test_approval_approve_then_reject_and_wrong_steps(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx
) -> None:
    definition = {
        "steps": [
            {"id": "ok", "type": "approval", "prompt": "ship ${input.what}?"},
            {"id": "no", "type": "approval", "needs": ["ok"]},
        ]
    }
    run = await start(engine, temporal_client, tenant.id, definition, {"what": "it"})
    await wait_pipeline_run(tenant.http, run.id, waiting("ok"))
    assert (
        await tenant.http.post(f"/v1/pipeline-runs/{run.id}/approvals/no", json={"decision": "approve"})
    ).status_code == 409
    bad = await tenant.http.post(f"/v1/pipeline-runs/{run.id}/approvals/ok", json={"decision": "maybe"})
    assert bad.status_code == 422
    approved = await tenant.http.post(
        f"/v1/pipeline-runs/{run.id}/approvals/ok", json={"decision": "approve", "comment": "go"}
    )
    assert approved.status_code == 202, approved.text
    await wait_pipeline_run(tenant.http, run.id, waiting("no"))
    rejected = await tenant.http.post(f"/v1/pipeline-runs/{run.id}/approvals/no", json={"decision": "reject"})
    assert rejected.status_code == 202, rejected.text
    body = await wait_pipeline_run(tenant.http, run.id)
    await record_history(temporal_client, run.workflow_id, "pipelines/approvals")
    assert body["status"] == "failed"
    steps = steps_of(body)
    assert steps["ok"]["status"] == "completed"
    assert steps["ok"]["output"]["decision"] == "approve"
    assert steps["ok"]["output"]["comment"] == "go"
    assert steps["no"]["status"] == "failed"
    assert steps["no"]["error"]["type"] == APPROVAL_REJECTED
    again = await tenant.http.post(f"/v1/pipeline-runs/{run.id}/approvals/no", json={"decision": "approve"})
    assert again.status_code == 409


async def test_approval_deadlines_and_wait(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx
) -> None:
    definition = {
        "steps": [
            {"id": "pause", "type": "wait", "seconds": 0.5},
            {"id": "yes", "type": "approval", "timeout_s": 0.5, "on_timeout": "approve", "needs": ["pause"]},
            {"id": "no", "type": "approval", "timeout_s": 0.5, "on_error": "continue"},
        ],
        "output": "[steps.yes.output.decision, steps.no.error.type]",
    }
    run = await start(engine, temporal_client, tenant.id, definition)
    body = await wait_pipeline_run(tenant.http, run.id)
    await record_history(temporal_client, run.workflow_id, "pipelines/deadlines_wait")
    assert body["status"] == "completed", str(body)
    assert body["output"] == ["approve", APPROVAL_TIMED_OUT]
    steps = steps_of(body)
    assert steps["yes"]["started_at"] >= steps["pause"]["ended_at"]
    assert steps["pause"]["ended_at"] > steps["pause"]["started_at"]


async def test_map_runs_at_most_max_concurrency_items_at_once(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx
) -> None:
    definition = {
        "steps": [
            {
                "id": "m",
                "type": "map",
                "over": "input.items",
                "max_concurrency": 10,
                "step": {"type": "tool", "tool": "calculator", "args": {"expression": "${item} * 2"}},
            }
        ],
        "output": "steps.m.output.map(o, o.value)",
    }
    run = await start(engine, temporal_client, tenant.id, definition, {"items": list(range(200))})
    body = await wait_pipeline_run(tenant.http, run.id, timeout_s=240)
    await record_history(temporal_client, run.workflow_id, "pipelines/map_chunked")
    assert body["status"] == "completed", str(body)[:2000]
    assert body["output"] == [i * 2 for i in range(200)]
    # more than MAP_INLINE_ITEMS: the items ran in PipelineMapChunkWorkflow children, two lanes of 5
    chunk = temporal_client.get_workflow_handle(f"{tenant.id}:pipeline-map:{run.id}:m:0")
    assert (await chunk.describe()).workflow_type == "PipelineMapChunkWorkflow"
    await record_history(temporal_client, chunk.id, "pipelines/map_chunk")
    history = await temporal_client.get_workflow_handle(run.workflow_id).fetch_history()
    assert len(history.events) < 200  # the parent's history grows per chunk, not per item
    assert [(s["id"], s["items"]) for s in body["steps"]] == [("m", 200)]  # items are paged apart
    items = await map_items(tenant.http, run.id, "m", limit=64)
    assert sorted(s["id"] for s in items) == sorted(f"m[{i}]" for i in range(200))  # each once, over 4 pages
    assert all(s["status"] == "completed" for s in items)
    # at each start, the items running (started, not ended) never exceed 10; and 10 did run at once
    running_at = [sum(1 for o in items if o["started_at"] <= s["started_at"] < o["ended_at"]) for s in items]
    assert max(running_at) == 10


async def test_map_items_skip_and_fail_per_their_step(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx
) -> None:
    item_step = {
        "type": "tool",
        "tool": "calculator",
        "args": {"expression": "${item}"},
        "if": "index % 3 != 0",
        "on_error": "continue",
    }
    definition = {
        "steps": [{"id": "m", "type": "map", "over": "input.items", "max_concurrency": 3, "step": item_step}],
        "output": "steps.m.output.map(o, o == null ? null : o.value)",
    }
    items = ["1", "2", "3", "4", "nope", "6", "7"]
    run = await start(engine, temporal_client, tenant.id, definition, {"items": items})
    body = await wait_pipeline_run(tenant.http, run.id)
    await record_history(temporal_client, run.workflow_id, "pipelines/map")
    assert body["status"] == "completed", str(body)
    assert body["output"] == [None, 2, 3, None, None, 6, None]
    statuses = {s["id"]: s["status"] for s in [*body["steps"], *await map_items(tenant.http, run.id, "m")]}
    assert statuses["m[0]"] == statuses["m[3]"] == statuses["m[6]"] == "skipped"
    assert statuses["m[4]"] == "failed"
    assert statuses["m"] == "completed"


async def test_cancel_cancels_running_steps(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx
) -> None:
    definition = {
        "steps": [
            {"id": "long", "type": "wait", "seconds": 600},
            {"id": "gate", "type": "approval"},
            calc("later", "1", needs=["long"]),
        ]
    }
    run = await start(engine, temporal_client, tenant.id, definition)
    await wait_pipeline_run(tenant.http, run.id, waiting("gate"))
    cancelled = await tenant.http.post(f"/v1/pipeline-runs/{run.id}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    body = await wait_pipeline_run(tenant.http, run.id)
    await record_history(temporal_client, run.workflow_id, "pipelines/cancel")
    assert body["status"] == "cancelled"
    assert {s["id"]: s["status"] for s in body["steps"]} == {
        "long": "cancelled",
        "gate": "cancelled",
        "later": "cancelled",
    }
    assert (await tenant.http.post(f"/v1/pipeline-runs/{run.id}/cancel")).status_code == 409


async def test_agent_step_runs_a_visible_child_run(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx
) -> None:
    agent = await create_agent(tenant.http, tools=[])
    definition = {
        "steps": [{"id": "ask", "type": "agent", "agent_id": agent["id"], "input": "say ${input.word}"}],
        "output": "steps.ask.output",
    }
    run = await start(engine, temporal_client, tenant.id, definition, {"word": "hello"})
    body = await wait_pipeline_run(tenant.http, run.id, timeout_s=120)
    await record_history(temporal_client, run.workflow_id, "pipelines/agent_step")
    assert body["status"] == "completed", str(body)
    assert "hello" in body["output"]
    runs = (await tenant.http.get("/v1/runs", params={"agent_id": agent["id"]})).json()["items"]
    assert len(runs) == 1
    child = await wait_run(tenant.http, runs[0]["id"])
    assert child["status"] == "completed"
    assert child["input"] == "say hello"
    assert child["output"] == body["output"]
    assert child["usage"]["output_tokens"] > 0
    assert body["usage"] == child["usage"]  # the agent step's usage rolls up into the pipeline run


async def test_reads_lists_and_isolation(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    definition = {"steps": [calc("one", "1 + 1")], "output": "steps.one.output.value"}
    first = await start(engine, temporal_client, tenant.id, definition, pipeline_id="pln_reads_a")
    second = await start(engine, temporal_client, tenant.id, definition, pipeline_id="pln_reads_b", key="k-1")
    again = await start(engine, temporal_client, tenant.id, definition, pipeline_id="pln_reads_b", key="k-1")
    assert again.id == second.id
    with pytest.raises(IdempotencyKeyReusedError):
        await start(engine, temporal_client, tenant.id, definition, {"x": 1}, pipeline_id="pln_reads_b", key="k-1")
    for run in (first, second):
        assert (await wait_pipeline_run(tenant.http, run.id))["output"] == 2
    listed = (await tenant.http.get("/v1/pipeline-runs")).json()
    assert [r["id"] for r in listed["items"]] == [second.id, first.id]
    only_b = (await tenant.http.get("/v1/pipeline-runs", params={"pipeline_id": "pln_reads_b"})).json()["items"]
    assert [r["id"] for r in only_b] == [second.id]
    assert (await tenant.http.get("/v1/pipeline-runs", params={"status": "failed"})).json()["items"] == []
    page = (await tenant.http.get("/v1/pipeline-runs", params={"limit": 1})).json()
    rest = (await tenant.http.get("/v1/pipeline-runs", params={"limit": 1, "cursor": page["next_cursor"]})).json()
    assert [r["id"] for r in page["items"] + rest["items"]] == [second.id, first.id]
    outsider = other_tenant.http
    assert (await outsider.get(f"/v1/pipeline-runs/{first.id}")).status_code == 404
    assert (await outsider.post(f"/v1/pipeline-runs/{first.id}/cancel")).status_code == 404
    decision = {"decision": "approve"}
    assert (await outsider.post(f"/v1/pipeline-runs/{first.id}/approvals/one", json=decision)).status_code == 404
    assert (await outsider.get("/v1/pipeline-runs")).json()["items"] == []
