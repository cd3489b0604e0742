"""AgentRunWorkflow on the real Temporal server with an in-process worker on its own task queue.

With ``AIMPACT_RECORD_HISTORIES=1`` each test stores its workflow history under
``tests/replay/histories/`` for the replay test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from core.contracts.agent_run import AgentRunInput, SendMessage, StateQuery
from core.db.projection import RunProjection
from core.events import RunEventLog
from core.ids import new_id, run_workflow_id
from tests.conftest import TenantCtx
from tests.support.runs import create_agent, insert_run, record_history
from workers.capabilities.agent_run import build_agent_activities, build_agent_worker
from workers.embedded.stack import StackProcess
from workflows.agent_run import AgentRunWorkflow


@pytest.fixture
async def task_queue(stack: StackProcess, temporal_client: Client, engine: AsyncEngine) -> AsyncIterator[str]:
    """A worker on a task queue of this test's own."""
    queue = f"test-{uuid.uuid4().hex}"
    redis = Redis.from_url(stack.redis_url)
    activities = build_agent_activities(RunProjection(engine), RunEventLog(redis))
    worker: Worker = build_agent_worker(temporal_client, activities, queue)
    async with worker:
        yield queue
    await redis.aclose()


async def test_tool_loop_result_and_state_query(
    temporal_client: Client, engine: AsyncEngine, tenant: TenantCtx, task_queue: str
) -> None:
    agent = await create_agent(tenant.http)
    run = await insert_run(engine, tenant.id, agent, "what is 2 ** 10 and the time?")
    handle = await temporal_client.start_workflow(
        AgentRunWorkflow.run,
        AgentRunInput(tenant.id, run.id, str(agent["id"]), 1),
        id=run.workflow_id,
        task_queue=task_queue,
    )
    result = await handle.result()
    state = await handle.query(AgentRunWorkflow.state, StateQuery())
    await record_history(temporal_client, handle.id, "tool_loop")

    assert result.output.startswith("Result — calculator: 1024; current_time: ")
    assert result.steps == 4
    assert state.status == "completed"
    assert [(s.kind, s.name, s.status) for s in state.steps] == [
        ("llm", "local:local-echo", "completed"),
        ("tool", "calculator", "completed"),
        ("tool", "current_time", "completed"),
        ("llm", "local:local-echo", "completed"),
    ]
    assert state.usage.input_tokens == result.usage.input_tokens > 0


async def test_step_limit_fails_the_run_with_a_typed_error(
    temporal_client: Client, engine: AsyncEngine, tenant: TenantCtx, task_queue: str
) -> None:
    agent = await create_agent(tenant.http)
    run = await insert_run(engine, tenant.id, agent, "1 + 1")
    handle = await temporal_client.start_workflow(
        AgentRunWorkflow.run,
        AgentRunInput(tenant.id, run.id, str(agent["id"]), 1, max_steps=1),
        id=run.workflow_id,
        task_queue=task_queue,
    )
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    await record_history(temporal_client, handle.id, "step_limit")

    assert isinstance(failure.value.cause, ApplicationError)
    assert failure.value.cause.type == "StepLimitReached"
    stored = (await tenant.http.get(f"/v1/runs/{run.id}")).json()
    assert stored["status"] == "failed"
    assert stored["error"]["type"] == "StepLimitReached"


async def test_missing_run_fails_without_retrying(temporal_client: Client, tenant: TenantCtx, task_queue: str) -> None:
    run_id = new_id("run")
    handle = await temporal_client.start_workflow(
        AgentRunWorkflow.run,
        AgentRunInput(tenant.id, run_id, "agt_missing", 1),
        id=run_workflow_id(tenant.id, run_id),
        task_queue=task_queue,
    )
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    await record_history(temporal_client, handle.id, "missing_run")
    assert isinstance(failure.value.cause, ApplicationError)
    assert failure.value.cause.type == "RunNotFound"


async def test_continue_as_new_between_turns_keeps_the_conversation(
    temporal_client: Client, engine: AsyncEngine, tenant: TenantCtx, task_queue: str
) -> None:
    agent = await create_agent(tenant.http)
    run = await insert_run(engine, tenant.id, agent, "2 + 2")
    handle = await temporal_client.start_workflow(
        AgentRunWorkflow.run,
        AgentRunInput(tenant.id, run.id, str(agent["id"]), 1, idle_timeout_s=1.5, max_turns_per_execution=1),
        id=run.workflow_id,
        task_queue=task_queue,
    )
    for _ in range(100):
        if (await handle.query(AgentRunWorkflow.state, StateQuery())).status == "completed":
            break
        await asyncio.sleep(0.1)
    accepted = await handle.execute_update(AgentRunWorkflow.send_message, SendMessage(text="3 * 3"))
    assert accepted.turn == 2
    result = await handle.result()
    await record_history(temporal_client, handle.id, "continue_as_new")

    assert result.turns == 2
    assert result.output == "Result — calculator: 9"
    assert result.steps == 6
    description = await handle.describe()
    assert description.run_id != handle.first_execution_run_id, "the second turn ran in a new execution"
    thread = (await tenant.http.get(f"/v1/threads/{run.thread_id}/messages")).json()["items"]
    assert [m["role"] for m in thread] == ["user", "assistant", "tool", "assistant"] * 2
