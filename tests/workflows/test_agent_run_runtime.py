"""Runtime races of ``AgentRunWorkflow`` on the real dev server.

Message ids across continue-as-new, the tool-call concurrency limit, a message / retry /
decision that lands in the same workflow task as the timer of its deadline, cancel during
a model step, and cancel of an idle conversation.

To put a timer and an update in one workflow task no worker runs while the timer fires and
the server admits the update; the worker started then gets both in its first task. The SDK's
default order applies the update and checks conditions before it fires the timer, so there
the wait never times out; the single-batch order (``PROCESS_WORKFLOW_ACTIVATION_JOBS_AS_SINGLE_BATCH``,
which the SDK means to make its default) applies both first, so the timeout wins and only the
re-check after it honours the update. Each deadline test runs under both orders.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.update.v1 import UpdateRef, WaitPolicy
from temporalio.api.workflowservice.v1 import PollWorkflowExecutionUpdateRequest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker._workflow_instance import _WorkflowLogicFlag

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
from tests.support.runs import create_agent, insert_run, record_history
from tests.workflows.test_parallel_tools import _BackendDown, _tool_events
from workers.capabilities.agent_run import build_agent_activities, build_agent_worker
from workers.embedded.stack import StackProcess
from workflows.agent_run import (
    DECISION_AT_DEADLINE,
    MAX_CONCURRENT_TOOL_CALLS,
    MESSAGE_AT_IDLE_DEADLINE,
    RETRY_AT_DEADLINE,
    AgentRunWorkflow,
)

Handle = WorkflowHandle[AgentRunWorkflow, Any]
SINGLE_BATCH = _WorkflowLogicFlag.PROCESS_WORKFLOW_ACTIVATION_JOBS_AS_SINGLE_BATCH
ADMITTED = UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED


class _Workers:
    """Workers on one task queue of the test's own, started and stopped at will."""

    def __init__(self, client: Client, activities: AgentRunActivities) -> None:
        self.client, self.activities, self.queue = client, activities, f"test-{uuid.uuid4().hex}"

    @asynccontextmanager
    async def running(self, *, single_batch: bool = False) -> AsyncIterator[None]:
        """A worker on the queue; ``single_batch``: new workflow tasks take the single-batch order."""
        worker = build_agent_worker(self.client, self.activities, self.queue)
        if single_batch:
            worker._set_default_workflow_logic_flag(SINGLE_BATCH, enabled=True)
        async with worker:
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
    run = await insert_run(engine, tenant.id, agent, text)
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


async def _events(handle: Handle) -> list[HistoryEvent]:
    """The run's history events so far."""
    return list((await handle.fetch_history()).events)


async def _deadline_timer(handle: Handle, *, fired: bool) -> None:
    """Wait until the run's latest timer (the deadline) is started, or has fired."""
    deadline = time.monotonic() + 60
    while True:
        events = await _events(handle)
        started = [e.event_id for e in events if e.HasField("timer_started_event_attributes")]
        done = {
            e.timer_fired_event_attributes.started_event_id
            for e in events
            if e.HasField("timer_fired_event_attributes")
        }
        if started and (not fired or started[-1] in done):
            return
        assert time.monotonic() < deadline, f"the deadline timer was never {'fired' if fired else 'started'}"
        await asyncio.sleep(0.2)


async def _admitted(client: Client, handle: Handle, update_id: str) -> None:
    """Wait until the server holds the update ``update_id`` (admitted, no worker has seen it)."""
    request = PollWorkflowExecutionUpdateRequest(
        namespace=client.namespace,
        update_ref=UpdateRef(workflow_execution=WorkflowExecution(workflow_id=handle.id), update_id=update_id),
        identity="test",
        wait_policy=WaitPolicy(lifecycle_stage=ADMITTED),
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            await client.workflow_service.poll_workflow_execution_update(request, timeout=timedelta(seconds=5))
            return
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        assert time.monotonic() < deadline, f"update {update_id} never reached the server"
        await asyncio.sleep(0.1)


async def _in_the_deadline_task(
    workers: _Workers, handle: Handle, update: Callable[[str], Awaitable[Any]], *, single_batch: bool
) -> Any:
    """With no worker running: the deadline's timer fires, ``update`` (given its id) is admitted; then a worker.

    Its first workflow task holds both; checked in the history (one task between the timer
    firing and the update's acceptance).
    """
    await _deadline_timer(handle, fired=True)
    update_id = f"deadline-{uuid.uuid4().hex[:8]}"
    sent = asyncio.ensure_future(update(update_id))
    await _admitted(workers.client, handle, update_id)
    async with workers.running(single_batch=single_batch):
        answer = await asyncio.wait_for(sent, 60)
    events = await _events(handle)
    fired = max(i for i, e in enumerate(events) if e.HasField("timer_fired_event_attributes"))
    accepted = next(
        i
        for i, e in enumerate(events)
        if e.HasField("workflow_execution_update_accepted_event_attributes")
        and e.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id == update_id
    )
    completed = [e for e in events[fired:accepted] if e.HasField("workflow_task_completed_event_attributes")]
    assert len(completed) == 1, "the timer and the update reached the worker in one workflow task"
    return answer


def _patches(events: list[HistoryEvent]) -> set[str]:
    """Patch ids recorded in the history's markers."""
    patches = set()
    for event in events:
        marker = event.marker_recorded_event_attributes
        if event.HasField("marker_recorded_event_attributes") and marker.marker_name == "core_patch":
            patches.add(json.loads(marker.details["patch-data"].payloads[0].data)["id"])
    return patches


ORDERS = pytest.mark.parametrize("single_batch", [False, True], ids=["sdk-default-order", "single-batch-order"])
"""The two orders the SDK applies a workflow task's jobs in (see the module docstring)."""


def _deadline_history(name: str, single_batch: bool) -> str:
    """The name a deadline test records its history under (one per order)."""
    return f"{name}_single_batch" if single_batch else name


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


@ORDERS
async def test_message_in_the_task_of_the_idle_timeout_starts_a_turn(
    engine: AsyncEngine, tenant: TenantCtx, workers: _Workers, single_batch: bool
) -> None:
    agent = await create_agent(tenant.http, tools=["calculator"])
    async with workers.running():
        _, handle = await _start(workers, engine, tenant, agent, "2 + 2", idle_timeout_s=3)
        await _until(handle, lambda s: s.status == "completed")
        await _deadline_timer(handle, fired=False)
    accepted = await _in_the_deadline_task(
        workers,
        handle,
        lambda update_id: handle.execute_update(AgentRunWorkflow.send_message, SendMessage(text="3 * 3"), id=update_id),
        single_batch=single_batch,
    )
    async with workers.running(single_batch=single_batch):
        result = await handle.result()
    await record_history(workers.client, handle.id, _deadline_history("message_at_idle_deadline", single_batch))

    assert accepted.turn == 2
    assert (result.turns, result.output) == (2, "Result — calculator: 9")
    assert (MESSAGE_AT_IDLE_DEADLINE in _patches(await _events(handle))) is single_batch, "the re-check decided"


@ORDERS
async def test_retry_in_the_task_of_the_window_end_continues_the_run(
    engine: AsyncEngine, tenant: TenantCtx, workers: _Workers, single_batch: bool
) -> None:
    agent = await create_agent(tenant.http, tools=["current_time"])
    _BackendDown.down = True
    async with workers.running():
        _, handle = await _start(workers, engine, tenant, agent, "what time is it?", retry_window_s=3)
        await _until(handle, lambda s: s.status == "failed")
        await _deadline_timer(handle, fired=False)
    _BackendDown.down = False
    answer = await _in_the_deadline_task(
        workers,
        handle,
        lambda update_id: handle.execute_update(AgentRunWorkflow.retry, RetryRequest(), id=update_id),
        single_batch=single_batch,
    )
    async with workers.running(single_batch=single_batch):
        try:
            result = await handle.result()
        finally:
            await record_history(workers.client, handle.id, _deadline_history("retry_at_window_end", single_batch))

    assert answer == "retrying"
    assert result.output.startswith("Result — current_time: ")
    assert (RETRY_AT_DEADLINE in _patches(await _events(handle))) is single_batch, "the re-check decided"


@ORDERS
async def test_decision_in_the_task_of_the_deadline_is_honoured(
    engine: AsyncEngine, tenant: TenantCtx, workers: _Workers, single_batch: bool
) -> None:
    agent = await create_agent(
        tenant.http, tools=[{"name": "calculator", "requires_approval": True, "approval_timeout_s": 3}]
    )
    async with workers.running():
        _, handle = await _start(workers, engine, tenant, agent, "2 + 2")
        state = await _until(handle, lambda s: bool(s.waiting_approval))
        await _deadline_timer(handle, fired=False)
    decision = ApprovalDecision(state.waiting_approval[0], "approve", "tester")
    answer = await _in_the_deadline_task(
        workers,
        handle,
        lambda update_id: handle.execute_update(AgentRunWorkflow.decide_approval, decision, id=update_id),
        single_batch=single_batch,
    )
    async with workers.running(single_batch=single_batch):
        result = await handle.result()
        state = await handle.query(AgentRunWorkflow.state, StateQuery())
    await record_history(workers.client, handle.id, _deadline_history("decision_at_deadline", single_batch))

    assert answer == "approve"
    assert [s.status for s in state.steps if s.kind == "approval"] == ["completed"]
    assert result.output == "Result — calculator: 4"
    assert (DECISION_AT_DEADLINE in _patches(await _events(handle))) is single_batch, "the re-check decided"


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
