"""Runtime races of ``AgentRunWorkflow`` on the real dev server.

Message ids across continue-as-new, the tool-call concurrency limit, a message / retry /
decision that lands in the same workflow task as the timer of its deadline, cancel during
a model step, and cancel of an idle conversation.

To put a timer and an update in one workflow task the worker is stopped while the timer
fires and the update is sent, then started again: its first task holds both.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError

from activities.agent_run import AgentRunActivities
from core.contracts.agent_run import (
    AgentRunInput,
    ApprovalDecision,
    RetryRequest,
    RunStateView,
    SendMessage,
    StateQuery,
)
from core.db.projection import RunProjection
from core.events import RunEventLog
from tests.conftest import TenantCtx
from tests.helpers import create_agent, record_history
from tests.workflows.test_agent_run_workflow import _insert_run
from tests.workflows.test_parallel_tools import _BackendDown, _tool_events
from workers.agent_worker import build_agent_activities, build_agent_worker
from workers.embedded.stack import StackProcess
from workflows.agent_run import MAX_CONCURRENT_TOOL_CALLS, AgentRunWorkflow

Handle = WorkflowHandle[AgentRunWorkflow, Any]


class _Workers:
    """Workers on one task queue of the test's own, started and stopped at will."""

    def __init__(self, client: Client, activities: AgentRunActivities) -> None:
        self.client, self.activities, self.queue = client, activities, f"test-{uuid.uuid4().hex}"

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with build_agent_worker(self.client, self.activities, self.queue):
            yield


@pytest.fixture
async def workers(stack: StackProcess, temporal_client: Client, engine: AsyncEngine) -> AsyncIterator[_Workers]:
    redis = Redis.from_url(stack.redis_url)
    activities = build_agent_activities(RunProjection(engine), RunEventLog(redis))
    activities.__class__ = _BackendDown  # its clock tool fails while ``_BackendDown.down`` holds
    _BackendDown.down = False
    yield _Workers(temporal_client, activities)
    _BackendDown.down = True
    await redis.aclose()


async def _start(
    workers: _Workers, engine: AsyncEngine, tenant: TenantCtx, agent: dict[str, Any], text: str, **kw: Any
) -> tuple[str, Handle]:
    run = await _insert_run(engine, tenant.id, agent, text)
    handle = await workers.client.start_workflow(
        AgentRunWorkflow.run,
        AgentRunInput(tenant.id, run.id, str(agent["id"]), 1, **kw),
        id=run.workflow_id,
        task_queue=workers.queue,
    )
    return run.id, handle


async def _until(handle: Handle, check: Callable[[RunStateView], bool], timeout_s: float = 30) -> RunStateView:
    deadline = time.monotonic() + timeout_s
    while True:
        state = await handle.query(AgentRunWorkflow.state, StateQuery())
        if check(state):
            return state
        assert time.monotonic() < deadline, f"state never matched: {state}"
        await asyncio.sleep(0.1)


async def _in_the_deadline_task(workers: _Workers, deadline_in_s: float, update: Callable[[], Awaitable[Any]]) -> Any:
    """Stop the worker, let the deadline pass, send ``update``, start a worker: timer and update in one task."""
    await asyncio.sleep(deadline_in_s + 1.0)  # the timer fired on the server; no worker took its task
    sent = asyncio.ensure_future(update())
    await asyncio.sleep(1.0)  # the update waits on the server for the same workflow task
    async with workers.running():
        return await asyncio.wait_for(sent, 60)


async def test_message_ids_stay_unique_across_continue_as_new(
    engine: AsyncEngine, tenant: TenantCtx, workers: _Workers
) -> None:
    agent = await create_agent(tenant.http, tools=["calculator"])
    texts = {"3 * 3": 9, "5 - 1": 4, "6 * 7": 42}
    async with workers.running():
        run_id, handle = await _start(
            workers, engine, tenant, agent, "2 + 2", idle_timeout_s=3, max_turns_per_execution=1
        )
        await _until(handle, lambda s: s.status == "completed" and s.turn == 1)
        ids = []
        for turn, (text, value) in enumerate(texts.items(), start=2):
            accepted = await handle.execute_update(AgentRunWorkflow.send_message, SendMessage(text=text))
            ids.append(accepted.message_id)
            state = await _until(handle, lambda s, t=turn: s.status == "completed" and s.turn == t)  # type: ignore[misc]
            assert state.output == f"Result — calculator: {value}", f"turn {turn} answered another message"
        result = await handle.result()
    await record_history(workers.client, handle.id, "continue_as_new_turns")

    assert len(set(ids)) == len(ids) == 3
    assert result.turns == 4
    thread = (await tenant.http.get(f"/v1/runs/{run_id}")).json()["thread_id"]
    items = (await tenant.http.get(f"/v1/threads/{thread}/messages")).json()["items"]
    assert [m["content"] for m in items if m["role"] == "user"] == ["2 + 2", *texts]


async def test_more_calls_than_the_limit_run_at_most_the_limit_at_once(
    engine: AsyncEngine, tenant: TenantCtx, workers: _Workers
) -> None:
    calls = MAX_CONCURRENT_TOOL_CALLS + 2
    agent = await create_agent(
        tenant.http,
        tools=["calculator"],
        model={"provider": "local", "name": "local-echo", "params": {"max_calls": 16}},
    )
    text = ", ".join(f"{n} + {n}" for n in range(1, calls + 1))
    async with workers.running():
        _, handle = await _start(workers, engine, tenant, agent, text)
        result = await handle.result()
    await record_history(workers.client, handle.id, "many_tool_calls")

    kinds = [kind for kind, _, _ in await _tool_events(handle)]
    assert kinds.count("scheduled") == calls
    assert kinds[: MAX_CONCURRENT_TOOL_CALLS + 1] == ["scheduled"] * MAX_CONCURRENT_TOOL_CALLS + ["completed"]
    assert result.output == "Result — " + "; ".join(f"calculator: {2 * n}" for n in range(1, calls + 1))


async def test_message_in_the_task_of_the_idle_timeout_starts_a_turn(
    engine: AsyncEngine, tenant: TenantCtx, workers: _Workers
) -> None:
    agent = await create_agent(tenant.http, tools=["calculator"])
    async with workers.running():
        _, handle = await _start(workers, engine, tenant, agent, "2 + 2", idle_timeout_s=2)
        await _until(handle, lambda s: s.status == "completed")
    accepted = await _in_the_deadline_task(
        workers, 2, lambda: handle.execute_update(AgentRunWorkflow.send_message, SendMessage(text="3 * 3"))
    )
    async with workers.running():
        result = await handle.result()
    await record_history(workers.client, handle.id, "message_at_idle_deadline")

    assert accepted.turn == 2
    assert (result.turns, result.output) == (2, "Result — calculator: 9")


async def test_retry_in_the_task_of_the_window_end_continues_the_run(
    engine: AsyncEngine, tenant: TenantCtx, workers: _Workers
) -> None:
    agent = await create_agent(tenant.http, tools=["current_time"])
    _BackendDown.down = True
    async with workers.running():
        _, handle = await _start(workers, engine, tenant, agent, "what time is it?", retry_window_s=2)
        await _until(handle, lambda s: s.status == "failed")
    _BackendDown.down = False
    answer = await _in_the_deadline_task(
        workers, 2, lambda: handle.execute_update(AgentRunWorkflow.retry, RetryRequest())
    )
    async with workers.running():
        try:
            result = await handle.result()
        finally:
            await record_history(workers.client, handle.id, "retry_at_window_end")

    assert answer == "retrying"
    assert result.output.startswith("Result — current_time: ")


async def test_decision_in_the_task_of_the_deadline_is_honoured(
    engine: AsyncEngine, tenant: TenantCtx, workers: _Workers
) -> None:
    agent = await create_agent(
        tenant.http, tools=[{"name": "calculator", "requires_approval": True, "approval_timeout_s": 2}]
    )
    async with workers.running():
        _, handle = await _start(workers, engine, tenant, agent, "2 + 2")
        state = await _until(handle, lambda s: bool(s.waiting_approval))
    step_id = state.waiting_approval[0]
    decision = ApprovalDecision(step_id, "approve", "tester")
    answer = await _in_the_deadline_task(
        workers, 2, lambda: handle.execute_update(AgentRunWorkflow.decide_approval, decision)
    )
    async with workers.running():
        result = await handle.result()
        state = await handle.query(AgentRunWorkflow.state, StateQuery())
    await record_history(workers.client, handle.id, "decision_at_deadline")

    assert answer == "approve"
    assert [s.status for s in state.steps if s.kind == "approval"] == ["completed"]
    assert result.output == "Result — calculator: 4"


async def test_cancel_during_a_model_step_cancels_the_model_call(
    engine: AsyncEngine, tenant: TenantCtx, workers: _Workers
) -> None:
    agent = await create_agent(
        tenant.http, tools=[], model={"provider": "local", "name": "local-echo", "params": {"latency_ms": 8000}}
    )
    async with workers.running():
        run_id, handle = await _start(workers, engine, tenant, agent, "hello", heartbeat_timeout_s=1.5)
        await _until(handle, lambda s: bool(s.steps) and s.steps[0].status == "running")
        await asyncio.sleep(0.5)  # the model call is in flight
        cancelled_at = time.monotonic()
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        step: dict[str, Any] = {}
        while time.monotonic() - cancelled_at < 6:
            run = (await tenant.http.get(f"/v1/runs/{run_id}")).json()
            step = next(s for s in run["steps"] if s["kind"] == "llm")
            if step["status"] != "running":
                break
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - cancelled_at
    await record_history(workers.client, handle.id, "cancel_in_model_step")

    assert isinstance(failure.value.cause, CancelledError)
    assert run["status"] == "cancelled"
    assert step["status"] == "cancelled"
    assert step["ended_at"] is not None
    assert elapsed < 5, "the model call ran on after the cancel"


async def test_cancel_of_an_idle_conversation_keeps_its_answer(
    engine: AsyncEngine, tenant: TenantCtx, workers: _Workers
) -> None:
    agent = await create_agent(tenant.http, tools=["calculator"])
    async with workers.running():
        run_id, handle = await _start(workers, engine, tenant, agent, "2 + 2", idle_timeout_s=60)
        await _until(handle, lambda s: s.status == "completed")
        response = await tenant.http.post(f"/v1/runs/{run_id}/cancel")
        assert response.status_code == 202, response.text
        result = await asyncio.wait_for(handle.result(), 30)
    await record_history(workers.client, handle.id, "cancel_idle")

    assert result.output == "Result — calculator: 4"
    stored = (await tenant.http.get(f"/v1/runs/{run_id}")).json()
    assert (stored["status"], stored["output"]) == ("completed", "Result — calculator: 4")
