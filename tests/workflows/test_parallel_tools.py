"""The tool calls of one model answer run concurrently, each still its own durable, retriable step."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError

from activities.agent_run import AgentRunActivities
from core.contracts.agent_run import AgentRunInput, RetryRequest, StateQuery, ToolStepInput, ToolStepResult
from core.db.projection import RunProjection
from core.events import RunEventLog
from tests.conftest import TenantCtx
from tests.support.runs import create_agent, insert_run, record_history
from workers.capabilities.agent_run import build_agent_activities, build_agent_worker
from workers.embedded.stack import StackProcess
from workflows.agent_run import AgentRunWorkflow


class _BackendDown(AgentRunActivities):
    """Agent-run activities whose ``current_time`` tool fails for good while ``down`` holds,
    or hangs (heartbeating, so a cancel reaches it) while ``hang`` holds."""

    down = True
    hang = False
    slow_expression: str | None = None
    """A calculator call with this expression answers half a second late (it finishes last)."""

    @activity.defn(name="agent_run.tool")
    async def tool(self, inp: ToolStepInput) -> ToolStepResult:
        if inp.call.arguments.get("expression") == type(self).slow_expression:
            await asyncio.sleep(0.5)
        if inp.call.name == "current_time" and type(self).hang:
            while True:
                activity.heartbeat()
                await asyncio.sleep(0.1)
        if inp.call.name == "current_time" and type(self).down:
            raise ApplicationError("the clock service is down", type="ClockDown", non_retryable=True)
        return await super().tool(inp)


@pytest.fixture
async def queues(stack: StackProcess, temporal_client: Client, engine: AsyncEngine) -> AsyncIterator[tuple[str, str]]:
    """Two task queues of this test's own: real activities, and ones whose clock tool is down."""
    redis = Redis.from_url(stack.redis_url)
    plain, flaky = f"test-{uuid.uuid4().hex}", f"test-{uuid.uuid4().hex}"
    activities = build_agent_activities(RunProjection(engine), RunEventLog(redis))
    failing = build_agent_activities(RunProjection(engine), RunEventLog(redis))
    failing.__class__ = _BackendDown
    async with (
        build_agent_worker(temporal_client, activities, plain),
        build_agent_worker(temporal_client, failing, flaky),
    ):
        yield plain, flaky
    await redis.aclose()


async def _tool_events(handle: WorkflowHandle[AgentRunWorkflow, object]) -> list[tuple[str, int, str]]:
    """``(scheduled|completed|failed, scheduled event id, tool name)`` of the tool activities, in history order."""
    history = await handle.fetch_history()
    names: dict[int, str] = {}
    seen: list[tuple[str, int, str]] = []
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled = event.activity_task_scheduled_event_attributes
            if scheduled.activity_type.name == "agent_run.tool":
                names[event.event_id] = json.loads(scheduled.input.payloads[0].data)["call"]["name"]
                seen.append(("scheduled", event.event_id, names[event.event_id]))
        for kind in ("completed", "failed"):
            field = f"activity_task_{kind}_event_attributes"
            if event.HasField(field) and getattr(event, field).scheduled_event_id in names:
                scheduled_id = getattr(event, field).scheduled_event_id
                seen.append((kind, scheduled_id, names[scheduled_id]))
    return seen


async def _start(
    client: Client, engine: AsyncEngine, tenant: TenantCtx, agent: dict[str, object], text: str, queue: str
) -> tuple[str, WorkflowHandle[AgentRunWorkflow, object]]:
    run = await insert_run(engine, tenant.id, agent, text)
    handle = await client.start_workflow(
        AgentRunWorkflow.run,
        AgentRunInput(tenant.id, run.id, str(agent["id"]), 1, retry_window_s=60, heartbeat_timeout_s=5),
        id=run.workflow_id,
        task_queue=queue,
    )
    return run.id, handle


async def test_calls_of_one_answer_run_concurrently_and_read_in_call_order(
    temporal_client: Client, engine: AsyncEngine, tenant: TenantCtx, queues: tuple[str, str]
) -> None:
    agent = await create_agent(tenant.http, tools=["calculator"])
    _BackendDown.slow_expression = "12 * 12"
    try:
        _, handle = await _start(temporal_client, engine, tenant, agent, "12 * 12, 2 ** 5 and 100 - 1?", queues[1])
        result = await handle.result()
    finally:
        _BackendDown.slow_expression = None
    await record_history(temporal_client, handle.id, "parallel_tools")

    events = await _tool_events(handle)
    kinds = [kind for kind, _, _ in events]
    assert kinds == ["scheduled"] * 3 + ["completed"] * 3  # all three were in flight together
    assert events[-1][1] == events[0][1]  # the first call finished last; its result still reads first
    assert result.output == "Result — calculator: 144; calculator: 32; calculator: 99"
    state = await handle.query(AgentRunWorkflow.state, StateQuery())
    assert [(s.kind, s.status) for s in state.steps] == [("llm", "completed")] + [("tool", "completed")] * 3 + [
        ("llm", "completed")
    ]


async def test_agent_can_keep_calls_one_by_one(
    temporal_client: Client, engine: AsyncEngine, tenant: TenantCtx, queues: tuple[str, str]
) -> None:
    agent = await create_agent(tenant.http, tools=["calculator"], parallel_tool_calls=False)
    assert agent["parallel_tool_calls"] is False
    _, handle = await _start(temporal_client, engine, tenant, agent, "1 + 1 and 3 * 3", queues[0])
    result = await handle.result()

    kinds = [kind for kind, _, _ in await _tool_events(handle)]
    assert kinds == ["scheduled", "completed"] * 2
    assert result.output == "Result — calculator: 2; calculator: 9"


async def test_retry_after_one_concurrent_call_failed_reruns_only_that_call(
    temporal_client: Client, engine: AsyncEngine, tenant: TenantCtx, queues: tuple[str, str]
) -> None:
    _BackendDown.down = True
    agent = await create_agent(tenant.http)
    run_id, handle = await _start(temporal_client, engine, tenant, agent, "what is 2 ** 10 and the time?", queues[1])
    for _ in range(100):
        state = await handle.query(AgentRunWorkflow.state, StateQuery())
        if state.status == "failed":
            break
        await asyncio.sleep(0.1)
    assert state.status == "failed"
    stored = (await tenant.http.get(f"/v1/runs/{run_id}")).json()
    assert stored["error"]["type"] == "ClockDown"

    _BackendDown.down = False
    await handle.execute_update(AgentRunWorkflow.retry, RetryRequest())
    result = await handle.result()
    await record_history(temporal_client, handle.id, "parallel_retry")

    assert result.output.startswith("Result — calculator: 1024; current_time: ")
    attempts = [(kind, name) for kind, _, name in await _tool_events(handle) if kind == "scheduled"]
    assert attempts.count(("scheduled", "calculator")) == 1  # its completed effect is not repeated
    assert attempts.count(("scheduled", "current_time")) == 2


async def test_cancel_during_a_tool_step_cancels_the_run(
    temporal_client: Client, engine: AsyncEngine, tenant: TenantCtx, queues: tuple[str, str]
) -> None:
    _BackendDown.hang = True
    try:
        agent = await create_agent(tenant.http)
        run_id, handle = await _start(temporal_client, engine, tenant, agent, "what time is it?", queues[1])
        for _ in range(100):
            if [kind for kind, _, _ in await _tool_events(handle)] == ["scheduled"]:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # the tool is running
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    finally:
        _BackendDown.hang = False
    await record_history(temporal_client, handle.id, "cancel_in_tool")

    assert isinstance(failure.value.cause, CancelledError)
    stored = (await tenant.http.get(f"/v1/runs/{run_id}")).json()
    assert stored["status"] == "cancelled"
    assert [s["status"] for s in stored["steps"] if s["kind"] == "tool"] != ["completed"]
