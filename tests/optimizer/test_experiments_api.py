"""Online experiments over HTTP on the real stack: sticky assignment, feedback-driven promotion, guardrails, stop."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from core.optimizer.experiment_store import ARMS, CANDIDATE, CONTROL
from core.optimizer.experiments import assign
from tests.conftest import TenantCtx
from tests.support.experiments import candidate_version, give_feedback, runs_by_arm, start_experiment, start_run
from tests.support.runs import create_agent, wait_run


def first_arm(experiment_id: str, key: str, traffic: float) -> str:
    """The arm a new subject ``key`` gets while the candidate's share is ``traffic``."""
    return assign(experiment_id, key, ARMS, (1.0 - traffic, traffic))


def test_assignment_is_sticky_and_follows_traffic() -> None:
    first = {f"user-{n}": first_arm("exp_share", f"user-{n}", 0.3) for n in range(4_000)}
    assert all(first_arm("exp_share", subject, 0.3) == arm for subject, arm in first.items())
    candidates = sum(arm == CANDIDATE for arm in first.values())
    assert abs(candidates / len(first) - 0.3) < 0.03
    assert set(first.values()) == {CONTROL, CANDIDATE}
    assert {first_arm("exp_all", f"user-{n}", 1.0) for n in range(500)} == {CANDIDATE}


async def test_a_subject_keeps_its_arm_and_runs_record_it(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    candidate = await candidate_version(tenant.http, agent["id"], instructions="Answer briefly.")
    experiment = await start_experiment(tenant.http, agent["id"], candidate_version=candidate, traffic=0.5)
    assert (experiment["status"], experiment["control_version"], experiment["candidate_version"]) == (
        "running",
        1,
        candidate,
    )
    assert [(a["arm"], a["version"], a["n"], a["mean"]) for a in experiment["arms"]] == [
        ("control", 1, 0, None),
        ("candidate", candidate, 0, None),
    ]
    expected_arm = first_arm(experiment["id"], "the-same-user", 0.5)
    expected_version = candidate if expected_arm == CANDIDATE else 1
    seen: Counter[tuple[str, int, str]] = Counter()
    for _ in range(4):
        batch = await asyncio.gather(*(start_run(tenant.http, agent["id"], subject="the-same-user") for _ in range(25)))
        for run in batch:
            seen[(run["experiment_arm"], run["agent_version"], run["experiment_id"])] += 1
        for run in batch:
            await wait_run(tenant.http, run["id"])
    assert seen == {(expected_arm, expected_version, experiment["id"]): 100}

    # a run without a subject is assigned by its thread; the read path shows the fields too
    thread = await start_run(tenant.http, agent["id"], thread_id="thread-a")
    thread_arm = first_arm(experiment["id"], "thread-a", 0.5)
    thread_version = candidate if thread_arm == CANDIDATE else 1
    shown = await wait_run(tenant.http, thread["id"])
    assert (shown["experiment_id"], shown["experiment_arm"], shown["agent_version"]) == (
        experiment["id"],
        thread_arm,
        thread_version,
    )
    listed = (await tenant.http.get("/v1/runs", params={"agent_id": agent["id"], "limit": 1})).json()["items"]
    assert listed[0]["experiment_id"] == experiment["id"]


async def test_feedback_promotes_a_bettercandidate_version(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    candidate = await candidate_version(tenant.http, agent["id"], instructions="Answer briefly.")
    experiment = await start_experiment(
        tenant.http, agent["id"], candidate_version=candidate, traffic=0.5, min_samples=5
    )
    arms = await runs_by_arm(tenant.http, agent["id"], per_arm=20)
    assert {run["agent_version"] for run in arms[CANDIDATE]} == {candidate}
    assert {run["agent_version"] for run in arms[CONTROL]} == {1}
    status = "running"
    given = 0
    for control_run, candidate_run in zip(arms[CONTROL], arms[CANDIDATE], strict=True):
        await give_feedback(tenant.http, candidate_run["id"], 1.0)
        await give_feedback(tenant.http, control_run["id"], 0.0)
        given += 1
        shown = (await tenant.http.get(f"/v1/experiments/{experiment['id']}")).json()
        status = shown["status"]
        if status != "running":
            break
    assert (status, shown["decision"]) == ("promoted", "promote"), shown
    assert given >= 5  # not before min_samples on each arm
    assert "beats" in shown["reason"]
    by_arm = {a["arm"]: a for a in shown["arms"]}
    assert (by_arm["candidate"]["mean"], by_arm["control"]["mean"]) == (1.0, 0.0)
    assert by_arm["candidate"]["p_best"] > 0.99
    assert (await tenant.http.get(f"/v1/agents/{agent['id']}")).json()["version"] == candidate
    events = (await tenant.http.get("/v1/audit-events", params={"action": "experiment.promoted"})).json()["items"]
    assert [(e["target_id"], e["data"]["id"]) for e in events] == [(agent["id"], experiment["id"])]

    # the experiment has ended: new runs take the (promoted) current version, unassigned
    after = await start_run(tenant.http, agent["id"], subject="user-0")
    assert (after["agent_version"], after["experiment_id"], after["experiment_arm"]) == (candidate, None, None)
    late = await tenant.http.post(f"/v1/runs/{arms[CONTROL][-1]['id']}/feedback", json={"score": 0.0})
    assert late.status_code == 201
    assert (await tenant.http.get(f"/v1/experiments/{experiment['id']}")).json()["arms"] == shown["arms"]


async def test_a_failing_candidate_is_rolled_back(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    assert (await tenant.http.post("/v1/secrets", json={"name": "GONE", "value": "soon"})).status_code == 201
    model = {"provider": "local", "api_key_secret": "GONE"}
    candidate = await candidate_version(tenant.http, agent["id"], model=model)
    assert (await tenant.http.delete("/v1/secrets/GONE")).status_code == 204
    experiment = await start_experiment(
        tenant.http, agent["id"], candidate_version=candidate, traffic=0.5, min_samples=3
    )
    arms = await runs_by_arm(tenant.http, agent["id"], per_arm=3)
    for run in arms[CANDIDATE]:
        assert (await wait_run(tenant.http, run["id"]))["status"] == "failed"
    await give_feedback(tenant.http, arms[CANDIDATE][0]["id"], 1.0)
    shown = (await tenant.http.get(f"/v1/experiments/{experiment['id']}")).json()
    assert (shown["status"], shown["decision"]) == ("rolled_back", "rollback"), shown
    assert "failure rate 100.0% vs control 0.0%" in shown["reason"]
    assert (await tenant.http.get(f"/v1/agents/{agent['id']}")).json()["version"] == 1
    events = (await tenant.http.get("/v1/audit-events", params={"action": "experiment.rolled_back"})).json()
    assert [e["data"]["decision"] for e in events["items"]] == ["rollback"]
    after = await start_run(tenant.http, agent["id"], subject="user-0")
    assert (after["agent_version"], after["experiment_id"]) == (1, None)


async def test_stop_ends_assignment_and_one_experiment_runs_per_agent(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    candidate = await candidate_version(tenant.http, agent["id"], instructions="Answer briefly.")
    experiment = await start_experiment(tenant.http, agent["id"], candidate_version=candidate, traffic=1.0)
    second = await tenant.http.post(
        f"/v1/agents/{agent['id']}/experiments", json={"candidate_version": candidate, "traffic": 0.5}
    )
    assert second.status_code == 409, second.text
    assert experiment["id"] in second.json()["detail"]
    during = await start_run(tenant.http, agent["id"], subject="someone")
    assert (during["agent_version"], during["experiment_arm"]) == (candidate, "candidate")

    stopped = await tenant.http.post(f"/v1/experiments/{experiment['id']}/stop")
    assert stopped.status_code == 200, stopped.text
    assert (stopped.json()["status"], stopped.json()["decision"]) == ("stopped", "stopped")
    again = await tenant.http.post(f"/v1/experiments/{experiment['id']}/stop")
    assert again.json()["ended_at"] == stopped.json()["ended_at"]
    after = await start_run(tenant.http, agent["id"], subject="someone")
    assert (after["agent_version"], after["experiment_id"]) == (1, None)
    await wait_run(tenant.http, during["id"])
    await give_feedback(tenant.http, during["id"], 1.0)  # feedback after the stop counts for nothing
    arms = (await tenant.http.get(f"/v1/experiments/{experiment['id']}")).json()["arms"]
    assert [a["n"] for a in arms] == [0, 0]
    newer = await start_experiment(tenant.http, agent["id"], candidate_version=candidate, traffic=0.2)
    listed = (await tenant.http.get(f"/v1/agents/{agent['id']}/experiments", params={"limit": 1})).json()
    assert [(e["id"], e["status"]) for e in listed["items"]] == [(newer["id"], "running")]
    rest = await tenant.http.get(f"/v1/agents/{agent['id']}/experiments", params={"cursor": listed["next_cursor"]})
    assert [(e["id"], e["status"]) for e in rest.json()["items"]] == [(experiment["id"], "stopped")]


def _fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [error["field"] for error in response.json()["errors"]]


async def test_bad_input(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    other = await create_agent(tenant.http)
    candidate = await candidate_version(tenant.http, other["id"], instructions="Another agent's version.")
    url = f"/v1/agents/{agent['id']}/experiments"
    assert _fields(await tenant.http.post(url, json={"candidate_version": candidate, "traffic": 0.5})) == [
        "candidate_version"
    ]
    assert _fields(await tenant.http.post(url, json={"candidate_version": 1, "traffic": 0.5})) == ["candidate_version"]
    mine = await candidate_version(tenant.http, agent["id"], instructions="Mine.")
    for traffic in (0, -0.1, 1.5):
        assert _fields(await tenant.http.post(url, json={"candidate_version": mine, "traffic": traffic})) == ["traffic"]
    assert _fields(await tenant.http.post(url, json={"candidate_version": mine, "traffic": 0.5, "min_samples": 1})) == [
        "min_samples"
    ]
    missing = await tenant.http.post("/v1/agents/agt_missing/experiments", json={"candidate_version": 2, "traffic": 1})
    assert missing.status_code == 404
    assert (await tenant.http.get("/v1/experiments/exp_missing")).status_code == 404
    assert (await tenant.http.post("/v1/experiments/exp_missing/stop")).status_code == 404
    assert (await tenant.http.delete(f"/v1/agents/{agent['id']}")).status_code == 204
    archived = await tenant.http.post(url, json={"candidate_version": mine, "traffic": 0.5})
    assert archived.status_code == 409
    assert archived.json()["type"].endswith("agent-archived")
