"""Turns of a multi-turn run on its event stream: where they stand, streams that end with the run.

The streaming tests run their workflows on a worker of the test's own, so that a run
idles only a few seconds between turns (the stack's runs wait minutes) and then closes.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from activities.agent_run import AgentRunActivities
from core.contracts.agent_run import AgentRunInput
from core.db.projection import RunProjection
from core.events import RUN_CLOSED, RunEvent, RunEventLog, TurnState, fold_turns
from core.ids import new_id, run_workflow_id
from tests.api.test_events import _read_events
from tests.conftest import TenantCtx
from tests.support.runs import create_agent, insert_run, record_history, until
from workers.build import make_worker
from workers.capabilities.agent_run import agent_run_activities, build_agent_activities
from workers.embedded.stack import StackProcess
from workflows.agent_run import AgentRunWorkflow

READ_GUARD_S = 90
"""A stream that has not ended by then fails the test (instead of hanging it)."""


def is_close(fn: Callable[..., Any]) -> bool:
    """Whether an activity callable is ``agent_run.close``."""
    return getattr(fn, "__func__", None) is AgentRunActivities.close


def _activities(activities: AgentRunActivities, *, close: bool) -> list[Callable[..., Any]]:
    """The agent worker's activities, with or without ``agent_run.close``."""
    others = [fn for fn in agent_run_activities(activities) if not is_close(fn)]
    return [*others, activities.close] if close else others


OwnWorker = Callable[..., AbstractAsyncContextManager["_Runs"]]


class _Runs:
    """Starts runs on a worker of the test's own."""

    def __init__(self, client: Client, engine: AsyncEngine, queue: str) -> None:
        self.client, self.engine, self.queue = client, engine, queue

    async def start(
        self, tenant: TenantCtx, agent: dict[str, Any], text: str, **kw: Any
    ) -> tuple[str, WorkflowHandle[AgentRunWorkflow, Any]]:
        run = await insert_run(self.engine, tenant.id, agent, text)
        handle = await self.client.start_workflow(
            AgentRunWorkflow.run,
            AgentRunInput(tenant.id, run.id, str(agent["id"]), 1, **kw),
            id=run.workflow_id,
            task_queue=self.queue,
        )
        return run.id, handle


@pytest.fixture
async def events(stack: StackProcess) -> AsyncIterator[RunEventLog]:
    redis = Redis.from_url(stack.redis_url)
    yield RunEventLog(redis)
    await redis.aclose()


@pytest.fixture
def own_worker(temporal_client: Client, engine: AsyncEngine, events: RunEventLog) -> OwnWorker:
    """Runs a worker of the test's own (with ``close=False``: one that does not announce a run's close)."""

    @asynccontextmanager
    async def running(*, close: bool = True) -> AsyncIterator[_Runs]:
        activities = build_agent_activities(RunProjection(engine), events)
        queue = f"test-{uuid.uuid4().hex}"
        fns = _activities(activities, close=close)
        async with make_worker(temporal_client, queue, workflows=[AgentRunWorkflow], activities=fns, activity_slots=20):
            yield _Runs(temporal_client, engine, queue)

    return running


class _Follower:
    """An SSE client reading a run's stream until the server ends it (or the test does)."""

    def __init__(self, tenant: TenantCtx, run_id: str) -> None:
        self.events: list[dict[str, Any]] = []
        self._task = asyncio.ensure_future(self._read(tenant, run_id))

    @classmethod
    @asynccontextmanager
    async def following(cls, tenant: TenantCtx, run_id: str) -> AsyncIterator[_Follower]:
        follower = cls(tenant, run_id)
        try:
            yield follower
        finally:
            follower._task.cancel()
            await asyncio.gather(follower._task, return_exceptions=True)

    async def _read(self, tenant: TenantCtx, run_id: str) -> None:
        async with tenant.http.stream("GET", f"/v1/runs/{run_id}/events") as response:
            assert response.status_code == 200
            frame: dict[str, Any] = {}
            async for line in response.aiter_lines():
                if line.startswith(("id: ", "event: ", "data: ")):
                    key, _, value = line.partition(": ")
                    frame[key] = value
                elif line == "" and "id" in frame:
                    self.events.append({"id": frame["id"], "event": frame["event"], "data": json.loads(frame["data"])})
                    frame = {}

    def names(self) -> list[str]:
        return [e["event"] for e in self.events]

    async def ended(self) -> list[dict[str, Any]]:
        await asyncio.wait_for(self._task, READ_GUARD_S)
        return self.events


async def _to_the_end(tenant: TenantCtx, run_id: str, **kw: Any) -> list[dict[str, Any]]:
    """Every frame of the run's stream until the server ends it."""
    return await asyncio.wait_for(_read_events(tenant.http, run_id, until=None, **kw), READ_GUARD_S)


async def test_a_stream_follows_every_turn_and_ends_when_the_run_closes(
    tenant: TenantCtx, temporal_client: Client, own_worker: OwnWorker
) -> None:
    agent = await create_agent(tenant.http)
    async with own_worker() as runs:
        run_id, handle = await runs.start(tenant, agent, "1 + 1", idle_timeout_s=5)
        first = await tenant.http.get(f"/v1/runs/{run_id}", params={"wait_s": 30})
        assert first.json()["output"] == "Result — calculator: 2"
        async with _Follower.following(tenant, run_id) as whole:  # turn 1 is over: it replays it and goes on
            assert await until(lambda: "run.completed" in whole.names(), 30)
            turn_1_end = whole.events[-1]

            sent = await tenant.http.post(f"/v1/runs/{run_id}/messages", json={"input": "2 * 3"})
            assert sent.status_code == 202, sent.text
            turn = sent.json()["turn"]
            assert turn == {
                "number": 2,
                "message_id": sent.headers["x-message-id"],
                "policy": "enqueue",
                "after_event_id": turn_1_end["id"],  # nothing came after turn 1's run.completed
            }
            followed = await _to_the_end(tenant, run_id, after=turn["after_event_id"])
            streamed = await whole.ended()
        await handle.result()
    await record_history(temporal_client, handle.id, "run_closed")

    names = [e["event"] for e in followed]
    accepted = next(e for e in followed if e["event"] == "turn.accepted")
    assert accepted["data"] == {"turn": 2} | {k: v for k, v in turn.items() if k != "number"}
    assert {e["data"]["turn"] for e in followed if "turn" in e["data"]} == {2}, "an event of turn 1 was replayed"
    assert {e["data"]["step_id"] for e in followed if "step_id" in e["data"]} == {"s4", "s5", "s6"}
    assert names[-2:] == ["run.completed", RUN_CLOSED]
    assert followed[-2]["data"]["output"] == "Result — calculator: 6"
    assert followed[-1]["data"] == {"status": "completed", "turn": 2}

    assert [e["data"]["turn"] for e in streamed if e["event"] == "run.completed"] == [1, 2]
    assert streamed[-len(followed) :] == followed, "the stream did not go on across the end of turn 1"
    assert streamed[0]["event"] == "run.started"
    replayed = await _to_the_end(tenant, run_id)  # the run is closed: its stored events, then the end
    assert replayed == streamed
    closed = (await tenant.http.get(f"/v1/runs/{run_id}", params={"wait_s": 30})).json()
    assert (closed["status"], closed["output"]) == ("completed", "Result — calculator: 6")


async def test_a_run_that_closes_without_announcing_it_ends_its_stream(
    tenant: TenantCtx, own_worker: OwnWorker, events: RunEventLog
) -> None:
    agent = await create_agent(tenant.http)
    async with own_worker(close=False) as runs:  # a worker of before ``run.closed``: the workflow closes silently
        run_id, handle = await runs.start(tenant, agent, "3 * 3")
        async with _Follower.following(tenant, run_id) as follower:
            await handle.result()
            streamed = await follower.ended()

    assert [e["event"] for e in streamed][-1] == "run.completed"
    assert streamed[-1]["data"]["output"] == "Result — calculator: 9"
    assert not (await events.turns(tenant.id, run_id)).closed


async def test_a_failing_run_announces_its_close(tenant: TenantCtx, own_worker: OwnWorker, events: RunEventLog) -> None:
    agent = await create_agent(tenant.http)
    async with own_worker() as runs:
        missing = new_id("run")
        handle = await runs.client.start_workflow(
            AgentRunWorkflow.run,
            AgentRunInput(tenant.id, missing, str(agent["id"]), 1),
            id=run_workflow_id(tenant.id, missing),
            task_queue=runs.queue,
        )
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    await record_history(runs.client, handle.id, "run_closed_failed")

    stored = await events.range(tenant.id, missing)
    assert [(e.type, e.data) for e in stored] == [(RUN_CLOSED, {"status": "failed", "turn": 1})]


def _ev(n: int, type_: str, **data: Any) -> RunEvent:
    return RunEvent(id=f"{n}-0", type=type_, data=data)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param([], TurnState("0", 1, None), id="empty"),
        pytest.param([_ev(1, "run.queued")], TurnState("1-0", 1, None), id="queued"),
        pytest.param([_ev(1, "run.started", turn=1), _ev(2, "token.delta")], TurnState("2-0", 1, True), id="turn-1"),
        pytest.param([_ev(1, "run.started"), _ev(2, "run.completed")], TurnState("2-0", 1, False), id="no-turn-data"),
        pytest.param(
            [_ev(1, "run.started", turn=1), _ev(2, "run.completed", turn=1), _ev(3, "turn.accepted", turn=2)],
            TurnState("3-0", 2, True),
            id="message-between-turns",
        ),
        pytest.param(
            [_ev(1, "run.started", turn=1), _ev(2, "turn.accepted", turn=2), _ev(3, "run.completed", turn=1)],
            TurnState("3-0", 2, True),
            id="message-queued-during-a-turn",
        ),
        pytest.param(
            [
                _ev(1, "run.completed", turn=1),
                _ev(2, "run.started", turn=2),
                _ev(3, "run.completed", turn=2),
                _ev(4, "turn.accepted", turn=2, after_event_id="1-0"),
            ],
            TurnState("4-0", 2, False),
            id="message-announced-after-its-turn-ended",
        ),
        pytest.param(
            [_ev(1, "run.started", turn=3), _ev(2, "turn.accepted", turn=3, after_event_id="1-0")],
            TurnState("2-0", 3, True),
            id="interrupting-message",
        ),
        pytest.param(
            [
                _ev(1, "run.started", turn=1),
                _ev(2, "run.failed", turn=1),
                _ev(3, "turn.retried", turn=1, after_event_id="2-0"),
            ],
            TurnState("3-0", 1, True),
            id="retry",
        ),
        pytest.param(
            [
                _ev(2, "run.failed", turn=1),
                _ev(3, "run.started", turn=1),
                _ev(4, "run.failed", turn=1),
                _ev(5, "turn.retried", turn=1, after_event_id="2-0"),
            ],
            TurnState("5-0", 1, False),
            id="retry-announced-after-it-failed-again",
        ),
        pytest.param(
            [_ev(1, "run.completed", turn=2), _ev(2, RUN_CLOSED, turn=2)],
            TurnState("2-0", 2, False, closed=True),
            id="closed",
        ),
    ],
)
def test_fold_turns(events: list[RunEvent], expected: TurnState) -> None:
    assert fold_turns(events) == expected


async def test_turns_read_back_to_the_turn_start_across_pages(tenant: TenantCtx, events: RunEventLog) -> None:
    run_id = new_id("run")
    await events.publish(tenant.id, run_id, "run.started", {"turn": 1})
    await events.publish(tenant.id, run_id, "run.completed", {"turn": 1})
    await events.publish(tenant.id, run_id, "run.started", {"turn": 2})
    for n in range(250):  # more than a page of the backward read
        await events.publish(tenant.id, run_id, "token.delta", {"text": str(n)})
    completed = await events.publish(tenant.id, run_id, "run.completed", {"turn": 2})
    assert await events.turns(tenant.id, run_id) == TurnState(completed, 2, False)
    accepted = await events.publish(tenant.id, run_id, "turn.accepted", {"turn": 3, "after_event_id": completed})
    assert await events.turns(tenant.id, run_id) == TurnState(accepted, 3, True)
    assert await events.last_id(tenant.id, run_id) == accepted
    assert await events.turns(tenant.id, new_id("run")) == TurnState("0", 1, None)


async def test_openapi_declares_the_bodies_of_the_202_routes(stack: StackProcess) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        document = (await client.get("/openapi.json")).json()
    expected = {
        "/v1/runs/{run_id}/messages": "RunTurnPublic",
        "/v1/runs/{run_id}/retry": "RunTurnPublic",
        "/v1/runs/{run_id}/cancel": "RunPublic",
        "/v1/runs/{run_id}/approvals/{step_id}": "RunPublic",
    }
    for path, model in expected.items():
        accepted = document["paths"][path]["post"]["responses"]["202"]
        assert accepted["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{model}"}, path
    schemas = document["components"]["schemas"]
    assert schemas["RunTurnPublic"]["properties"]["turn"] == {"$ref": "#/components/schemas/TurnPublic"}
    assert set(schemas["TurnPublic"]["required"]) == {"number", "message_id", "policy", "after_event_id"}
    usage = document["paths"]["/v1/usage"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert usage == {"$ref": "#/components/schemas/UsageReport"}
    assert {"UsagePublic", "UsageReport", "UsageRow"} <= set(schemas)
    assert not [name for name in schemas if name.endswith("__UsagePublic")], "two schemas named UsagePublic"
