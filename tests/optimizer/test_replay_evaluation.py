"""Counterfactual replay as the optimizer's evaluation source for runs without labels, over HTTP on the simulated
world: each candidate is scored on each recorded run by replaying it (the recorded tool answers, nothing run; a call
not in the recording answered "not in recording" and counted in the run's progress), judged by a rubric."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from core.ids import workflow_id
from core.optimizer.strategies.few_shot import DEMO_HEADER
from simulated.scripted_server import Received, Reply, ScriptedServer, oa_chunk, oa_stream, oa_tool_delta, oa_usage
from simulated.world import SimWorld, question_bank
from tests.conftest import TenantCtx
from tests.optimizer.test_optimizer_runs import SEED, _finished, _sim_agent, _start
from tests.support import receivers
from tests.support.runs import record_history, wait_run

RUNS = 24
NEW_CALL = {"expression": "2 + 2"}
NOT_IN_RECORDING = f"error: not in recording: calculator({json.dumps(NEW_CALL, separators=(',', ':'))})"


def tool_world(world: SimWorld, lookup_url: str) -> Callable[[Received], Reply]:
    """``world`` with a tool habit: a request offering tools first looks the question up (``http_request`` GET
    ``lookup_url``), and a few-shot candidate (demos in its instructions) also checks a sum with ``calculator``, a
    call no recorded run made. Once the tool results are in, the world answers the question; judges as ever."""

    def respond(received: Received) -> Reply:
        body = received.body
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        if not body.get("tools"):
            return world.reply(received)
        if not any(m.get("role") == "tool" for m in messages):
            system = "\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "system")
            calls = [("http_request", {"method": "GET", "url": lookup_url})]
            if DEMO_HEADER in system:
                calls.append(("calculator", NEW_CALL))
            deltas = [
                oa_chunk(oa_tool_delta(i, id=f"call_{i}", name=name, args=json.dumps(args)))
                for i, (name, args) in enumerate(calls)
            ]
            return oa_stream(*deltas, oa_chunk({}, finish="tool_calls"), oa_usage(30, 10))
        question = [m for m in messages if m.get("role") in ("system", "user")]
        return world.reply(Received(received.path, received.headers, {**body, "messages": question, "tools": []}))

    return respond


@pytest.fixture
def lookups() -> list[str]:
    """The bodies the lookup service answered, in order."""
    return []


@pytest.fixture
async def lookup_service(lookups: list[str]) -> Any:
    """An HTTP service whose every answer is new (``lookup #n``): a recorded answer cannot pass for a live one."""

    def answer(_: receivers.Seen) -> receivers.Reply:
        lookups.append(f"lookup #{len(lookups) + 1}")
        return receivers.Reply(body=lookups[-1].encode())

    async with receivers.Receiver(handler=answer) as receiver:
        yield receiver


@pytest.fixture
def server(lookup_service: receivers.Receiver) -> Iterator[ScriptedServer]:
    running = ScriptedServer(respond=tool_world(SimWorld(seed=SEED), lookup_service.url("/lookup"))).start()
    yield running
    running.stop()


def _tool_texts(received: list[Received], name: str) -> list[tuple[str, str]]:
    """``(question, tool message)`` of every request that carries a result of a ``name`` call."""
    found = []
    for request in received:
        messages = request.body.get("messages") or []
        question = next((m["content"] for m in messages if m.get("role") == "user"), "")
        called = {c["id"]: c["function"]["name"] for m in messages for c in m.get("tool_calls") or []}
        found += [
            (question, m["content"])
            for m in messages
            if m.get("role") == "tool" and called.get(m.get("tool_call_id")) == name
        ]
    return found


async def test_an_optimizer_run_over_unlabelled_runs_scores_candidates_by_replaying_each_run(
    tenant: TenantCtx,
    engine: AsyncEngine,
    temporal_client: Client,
    server: ScriptedServer,
    lookups: list[str],
) -> None:
    agent = await _sim_agent(tenant, engine, server, tools=["http_request", "calculator"])
    questions = [e["input"] for e in question_bank(SEED, RUNS)]
    runs = []
    for first in range(0, RUNS, 4):  # a few at a time: the recorded traffic, not a load test
        started = await asyncio.gather(
            *(
                tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": q})
                for q in questions[first : first + 4]
            )
        )
        runs += [await wait_run(tenant.http, s.json()["id"]) for s in started]
    assert all(r["status"] == "completed" for r in runs), [r["error"] for r in runs]
    assert len(lookups) == RUNS, "each recorded run looked its question up, live"
    recorded = dict(_tool_texts(server.received, "http_request"))
    assert len(recorded) == RUNS
    built = await tenant.http.post(f"/v1/agents/{agent['id']}/datasets", json={"name": "traffic", "from_runs": {}})
    assert built.status_code == 201, built.text
    dataset = built.json()
    uploaded = await tenant.http.post(
        f"/v1/agents/{agent['id']}/datasets", json={"name": "up", "examples": [{"input": q} for q in questions[:3]]}
    )
    metric = {"type": "judge", "rubric": "Is the answer to the question right?"}
    refused = await tenant.http.post(
        f"/v1/agents/{agent['id']}/optimizer/runs",
        json={"dataset_id": uploaded.json()["id"], "metric": metric, "evaluation": "replay"},
    )
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["evaluation"]
    before = len(server.received)

    body = {"evaluation": "replay", "metric": metric, "budget": {"max_evals": 90}, "auto_promote": False}
    run = await _finished(tenant, (await _start(tenant, agent["id"], dataset_id=dataset["id"], **body))["id"])

    assert run["status"] == "completed", run
    assert (run["evaluation"], run["dataset_id"], run["metric"]) == ("replay", dataset["id"], metric)
    assert len(lookups) == RUNS, "no evaluation called the lookup service"
    progress = run["progress"]
    assert progress["evals_paid"] == progress["evals_used"] > 0
    assert progress["from_recording"] == progress["evals_used"], "every evaluation's lookup came from its recording"
    during = server.received[before:]
    answered = _tool_texts(during, "http_request")
    assert len(answered) == progress["evals_used"]
    assert all(text == recorded[question] for question, text in answered), "the recorded answer of that very run"
    new_calls = _tool_texts(during, "calculator")
    assert len(run["candidates"]) > 1, run["candidates"]
    assert progress["not_in_recording"] == progress["evals_with_new_calls"] == len(new_calls) > 0, progress
    assert {text for _, text in new_calls} == {NOT_IN_RECORDING}, "refused, not run, although calculator is pure"
    judged = [r for r in during if "<output>" in json.dumps(r.body)]
    assert len(judged) == progress["evals_paid"], "one judge call per evaluation: the rubric, no label"
    await record_history(temporal_client, workflow_id(tenant.id, "optimizer", run["id"]), "optimizer/replay_evaluation")
