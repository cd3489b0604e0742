"""Counterfactual replays over HTTP: tool calls answered from the recordings (nothing runs), calls not in the
recording answered with an error and counted, both outputs scored, bad input, Temporal out of reach."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from core.ids import workflow_id
from simulated.scripted_server import ScriptedServer, oa_chunk, oa_stream, oa_tool_delta, oa_usage
from tests.conftest import TenantCtx
from tests.support.api_process import temporal_out_of_reach
from tests.support.receivers import Receiver
from tests.support.runs import create_agent, record_history, wait_run
from workers.embedded.ports import free_port
from workers.embedded.stack import StackProcess

FINAL = ("completed", "failed", "cancelled")
TOOLS = ["calculator", "http_request"]


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    running = ScriptedServer().start()
    yield running
    running.stop()


async def _allow_loopback(engine: AsyncEngine, tenant_id: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("""update tenant set egress_allowlist = '["127.0.0.1"]' where id = :t"""), {"t": tenant_id}
        )


async def _recorded(tenant: TenantCtx, agent_id: str, *inputs: str) -> list[dict[str, Any]]:
    """Completed runs of the agent on ``inputs``, in order."""
    runs = []
    for message in inputs:
        started = (await tenant.http.post(f"/v1/agents/{agent_id}/runs", json={"input": message})).json()
        run = await wait_run(tenant.http, started["id"])
        assert run["status"] == "completed", run
        runs.append(run)
    return runs


async def _judged_later(tenant: TenantCtx, engine: AsyncEngine, question: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """An agent with one completed run of ``question``, and the secret ``JUDGE_KEY`` a judge model can name."""
    await _allow_loopback(engine, tenant.id)
    agent = await create_agent(tenant.http)
    (run,) = await _recorded(tenant, agent["id"], question)
    await tenant.http.post("/v1/secrets", json={"name": "JUDGE_KEY", "value": "sk-judge-0123456789"})
    return agent, run


async def _new_version(tenant: TenantCtx, agent_id: str, **changes: Any) -> int:
    response = await tenant.http.patch(f"/v1/agents/{agent_id}", json=changes | {"promote": False})
    assert response.status_code == 200, response.text
    versions = (await tenant.http.get(f"/v1/agents/{agent_id}/versions")).json()["items"]
    return max(int(v["version"]) for v in versions)


async def _replay(tenant: TenantCtx, agent_id: str, **body: Any) -> dict[str, Any]:
    response = await tenant.http.post(f"/v1/agents/{agent_id}/replays", json=body)
    assert response.status_code == 202, response.text
    started: dict[str, Any] = response.json()
    assert started["status"] == "queued"
    return await _replay_done(tenant, started["id"])


async def _replay_done(tenant: TenantCtx, replay_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        replay: dict[str, Any] = (await tenant.http.get(f"/v1/replays/{replay_id}")).json()
        if replay["status"] in FINAL:
            return replay
        await asyncio.sleep(0.2)
    raise AssertionError(f"replay {replay_id} did not finish: {replay}")


async def test_a_replay_answers_every_recorded_call_from_the_recording_and_nothing_runs(
    tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    await _allow_loopback(engine, tenant.id)
    async with Receiver() as receiver:
        agent = await create_agent(tenant.http, tools=TOOLS)
        hit = f"use http_request with url={receiver.url('/hit')} method=POST"
        runs = await _recorded(tenant, agent["id"], "what is 2 + 40", hit, "what is 6 * 7")
        hits = len(receiver.seen)
        assert hits >= 1, "the recorded run called the receiver"
        version = await _new_version(tenant, agent["id"], instructions="Use the calculator; be brief.")

        replay = await _replay(tenant, agent["id"], version=version, run_ids=[r["id"] for r in runs])

        assert len(receiver.seen) == hits, "the replay did not call the receiver"
    assert replay["status"] == "completed", replay["error"]
    assert (replay["version"], replay["run_ids"], replay["metric"]) == (version, [r["id"] for r in runs], None)
    results = replay["results"]
    assert [r["run_id"] for r in results] == [r["id"] for r in runs]
    for run, result in zip(runs, results, strict=True):
        assert result["outcome"] == "completed"
        assert result["candidate_output"] == result["recorded_output"] == run["output"]
        assert (result["recorded_score"], result["candidate_score"]) == (None, None)
        assert (result["from_recording"], result["not_in_recording"]) == (1, 0)
        assert [c["answered_from"] for c in result["tool_calls"]] == ["recording"]
    assert [c["name"] for r in results for c in r["tool_calls"]] == ["calculator", "http_request", "calculator"]
    assert results[0]["tool_calls"][0]["result"] == "42"
    summary = replay["summary"]
    assert (summary["runs"], summary["failed"], summary["from_recording"]) == (3, 0, 3)
    assert (summary["not_in_recording"], summary["runs_with_new_calls"]) == (0, 0)
    assert (summary["recorded_mean"], summary["candidate_mean"]) == (None, None)
    await record_history(temporal_client, workflow_id(tenant.id, "replay", replay["id"]), "optimizer/replay")

    sampled = await _replay(tenant, agent["id"], version=version, sample=2)
    assert sampled["run_ids"] == [runs[2]["id"], runs[1]["id"]], "the most recent completed runs"
    listed = (await tenant.http.get(f"/v1/agents/{agent['id']}/replays")).json()
    assert [r["id"] for r in listed["items"]] == [sampled["id"], replay["id"]]
    assert listed["items"][0]["results"] is None
    finished = await tenant.http.post(f"/v1/replays/{replay['id']}/cancel")
    assert finished.status_code == 409, finished.text


async def _scripted_candidate(
    tenant: TenantCtx, engine: AsyncEngine, server: ScriptedServer
) -> tuple[dict[str, Any], dict[str, Any], int]:
    """An agent with a recorded run of "what is 2 + 40" (its calculator call), and a version on ``server``'s model."""
    await _allow_loopback(engine, tenant.id)
    agent = await create_agent(tenant.http, tools=TOOLS)
    (run,) = await _recorded(tenant, agent["id"], "what is 2 + 40")
    await tenant.http.post("/v1/secrets", json={"name": "FAKE_KEY", "value": "sk-fake-0123456789"})
    model = {"provider": "openai", "name": "gpt-4o-mini", "base_url": f"{server.url}/v1", "api_key_secret": "FAKE_KEY"}
    return agent, run, await _new_version(tenant, agent["id"], model=model)


def _stream(*chunks: Any, usage: tuple[int, int]) -> Any:
    return oa_stream(*chunks, oa_chunk({}, finish="stop"), oa_usage(*usage))


async def test_a_call_not_in_the_recording_is_answered_with_an_error_counted_and_both_outputs_scored(
    tenant: TenantCtx, engine: AsyncEngine, server: ScriptedServer
) -> None:
    agent, run, version = await _scripted_candidate(tenant, engine, server)
    server.push(
        oa_stream(
            oa_chunk(oa_tool_delta(0, id="call_1", name="calculator", args=json.dumps({"expression": "2 * 21"}))),
            oa_chunk({}, finish="tool_calls"),
            oa_usage(20, 10),
        ),
        _stream(oa_chunk({"content": "I could not compute it."}), usage=(30, 5)),
    )
    metric = {"type": "regex", "pattern": r"\b42\b"}

    replay = await _replay(tenant, agent["id"], version=version, run_ids=[run["id"]], metric=metric)

    assert replay["status"] == "completed", replay["error"]
    (result,) = replay["results"]
    missing = 'error: not in recording: calculator({"expression":"2 * 21"})'
    assert result["tool_calls"] == [
        {
            "name": "calculator",
            "arguments": {"expression": "2 * 21"},
            "answered_from": "refused",
            "result": missing,
            "is_error": True,
        }
    ]
    tool_messages = [m for m in server.received[1].body["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == [missing], "the model read the error"
    assert (result["from_recording"], result["not_in_recording"]) == (0, 1)
    assert (result["recorded_output"], result["candidate_output"]) == (run["output"], "I could not compute it.")
    assert (result["recorded_score"], result["candidate_score"]) == (1.0, 0.0)
    summary = replay["summary"]
    assert (summary["runs_with_new_calls"], summary["not_in_recording"]) == (1, 1)
    assert (summary["recorded_mean"], summary["candidate_mean"]) == (1.0, 0.0)
    assert (summary["input_tokens"], summary["output_tokens"]) == (50, 15)


async def test_bad_input_names_the_field(tenant: TenantCtx, other_tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    other = await create_agent(tenant.http, name="other")
    (mine,) = await _recorded(tenant, agent["id"], "what is 1 + 1")
    (theirs,) = await _recorded(tenant, other["id"], "what is 2 + 2")
    path = f"/v1/agents/{agent['id']}/replays"

    async def field_of(body: dict[str, Any], at: str = path) -> str:
        response = await tenant.http.post(at, json=body)
        assert response.status_code == 422, response.text
        return str(response.json()["errors"][0]["field"])

    assert await field_of({"version": 9}) == "version"
    assert await field_of({"version": 1, "run_ids": [mine["id"], theirs["id"]]}) == "run_ids[1]"
    assert await field_of({"version": 1, "run_ids": [mine["id"], "run_nope"]}) == "run_ids[1]"
    assert await field_of({"version": 1, "run_ids": [mine["id"], mine["id"]]}) == "run_ids[1]"
    assert await field_of({"version": 1, "run_ids": [mine["id"]], "sample": 1}) == "sample"
    assert await field_of({"version": 1, "metric": {"type": "exact"}}) == "metric"
    assert await field_of({"version": 1, "metric": {"type": "judge"}}) == "metric.rubric"
    assert await field_of({"version": 1, "sample": 0}) == "sample"
    idle = await create_agent(tenant.http, name="idle")
    assert await field_of({"version": 1}, f"/v1/agents/{idle['id']}/replays") == "sample", "no completed run"

    foreign = await other_tenant.http.post(path, json={"version": 1})
    assert foreign.status_code == 404, foreign.text
    assert (await other_tenant.http.get(f"/v1/agents/{agent['id']}/replays")).status_code == 404
    assert (await tenant.http.delete(f"/v1/agents/{other['id']}")).status_code == 204
    archived = await tenant.http.post(f"/v1/agents/{other['id']}/replays", json={"version": 1})
    assert archived.status_code == 409, archived.text
    assert (await tenant.http.get("/v1/replays/rpl_nope")).status_code == 404


async def test_temporal_out_of_reach_answers_503_and_the_replay_stays_queued(
    stack: StackProcess, tenant: TenantCtx
) -> None:
    agent = await create_agent(tenant.http)
    await _recorded(tenant, agent["id"], "what is 3 + 4")
    async with temporal_out_of_reach(stack, tenant.key) as down:
        started = await down.post(f"/v1/agents/{agent['id']}/replays", json={"version": 1})
    assert started.status_code == 503, started.text
    assert started.headers["retry-after"] == "2"
    (queued,) = (await tenant.http.get(f"/v1/agents/{agent['id']}/replays")).json()["items"]
    assert queued["status"] == "queued"
    never_started = await tenant.http.post(f"/v1/replays/{queued['id']}/cancel")
    assert never_started.status_code == 202, never_started.text
    assert never_started.json()["status"] == "cancelled"


async def test_a_judge_metric_scores_the_recorded_output_and_the_candidates_alike(
    tenant: TenantCtx, engine: AsyncEngine, server: ScriptedServer
) -> None:
    agent, run = await _judged_later(tenant, engine, "what is 5 + 5")
    judge = {"provider": "openai", "name": "gpt-4o-mini", "base_url": f"{server.url}/v1", "api_key_secret": "JUDGE_KEY"}
    server.push(
        _stream(oa_chunk({"content": '{"score": 0.9, "reason": "right"}'}), usage=(40, 8)),
        _stream(oa_chunk({"content": '{"score": 0.4, "reason": "terse"}'}), usage=(40, 8)),
    )
    metric = {"type": "judge", "rubric": "Is the sum right?", "model": judge}

    replay = await _replay(tenant, agent["id"], version=1, run_ids=[run["id"]], metric=metric)

    assert replay["status"] == "completed", replay["error"]
    (result,) = replay["results"]
    assert result["candidate_output"] == result["recorded_output"] == run["output"]
    assert (result["recorded_score"], result["recorded_reason"]) == (0.9, "right")
    assert (result["candidate_score"], result["candidate_reason"]) == (0.4, "terse")
    prompts = [r.body["messages"][-1]["content"] for r in server.received]
    assert len(prompts) == 2
    assert all("Is the sum right?" in p and run["output"] in p for p in prompts)
    summary = replay["summary"]
    assert (summary["recorded_mean"], summary["candidate_mean"]) == (0.9, 0.4)
    usage = run["usage"]  # the candidate is the recorded version on the recorded answers: the same usage
    spent = (summary["input_tokens"], summary["output_tokens"])
    assert spent == (usage["input_tokens"] + 80, usage["output_tokens"] + 16), "the judge's calls are counted"


async def test_a_judge_that_stays_down_fails_the_replay_naming_it(
    tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    agent, run = await _judged_later(tenant, engine, "what is 4 + 4")
    down = {"provider": "openai", "name": "judge-down", "base_url": f"http://127.0.0.1:{free_port()}/v1"}
    metric = {"type": "judge", "rubric": "Is the sum right?", "model": down | {"api_key_secret": "JUDGE_KEY"}}

    replay = await _replay(tenant, agent["id"], version=1, run_ids=[run["id"]], metric=metric)

    assert replay["status"] == "failed", replay
    assert replay["error"]["type"] == "JudgeFailed", replay["error"]
    assert "judge model openai:judge-down" in replay["error"]["message"]
    assert replay["summary"] is None
    await record_history(temporal_client, workflow_id(tenant.id, "replay", replay["id"]), "optimizer/replay_failed")


async def test_a_replay_blocked_on_the_database_longer_than_its_heartbeat_timeout_is_not_run_twice(
    tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client, server: ScriptedServer
) -> None:
    """The activity heartbeats while it reads the recording too: a slow read does not start a second attempt
    beside the first, which would spend the scripted answers (or a real model's money) twice."""
    agent, run, version = await _scripted_candidate(tenant, engine, server)
    server.push(_stream(oa_chunk({"content": "42"}), usage=(10, 1)))

    async with engine.begin() as conn:  # the recording's steps cannot be read for twice the heartbeat timeout (2 s)
        await conn.execute(text("lock table run_step in access exclusive mode"))
        response = await tenant.http.post(
            f"/v1/agents/{agent['id']}/replays", json={"version": version, "run_ids": [run["id"]]}
        )
        assert response.status_code == 202, response.text
        await asyncio.sleep(4)
    replay = await _replay_done(tenant, response.json()["id"])

    assert replay["status"] == "completed", replay["error"]
    assert replay["results"][0]["candidate_output"] == "42"
    assert len(server.received) == 1, "one model call: the attempt was not started again beside itself"
    handle = temporal_client.get_workflow_handle(workflow_id(tenant.id, "replay", replay["id"]))
    attempts = [
        e.activity_task_started_event_attributes.attempt
        async for e in handle.fetch_history_events()
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert attempts == [1, 1, 1], "record running, replay the run, record completed: each once"
