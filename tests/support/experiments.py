"""Online-experiment helpers shared by tests: candidate versions, experiments, runs by arm, feedback."""

from __future__ import annotations

from typing import Any

import httpx

from core.optimizer.experiment_store import CANDIDATE, CONTROL
from tests.support.runs import wait_run


async def candidate_version(http: httpx.AsyncClient, agent_id: str, **changes: Any) -> int:
    """A new version of the agent that does not become current."""
    response = await http.patch(f"/v1/agents/{agent_id}", json={"promote": False, **changes})
    assert response.status_code == 200, response.text
    versions = (await http.get(f"/v1/agents/{agent_id}/versions")).json()["items"]
    return int(versions[0]["version"])


async def start_experiment(http: httpx.AsyncClient, agent_id: str, **body: Any) -> dict[str, Any]:
    response = await http.post(f"/v1/agents/{agent_id}/experiments", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def start_run(http: httpx.AsyncClient, agent_id: str, **body: Any) -> dict[str, Any]:
    response = await http.post(f"/v1/agents/{agent_id}/runs", json={"input": "hello", **body})
    assert response.status_code == 202, response.text
    run: dict[str, Any] = response.json()
    return run


async def runs_by_arm(http: httpx.AsyncClient, agent_id: str, per_arm: int) -> dict[str, list[dict[str, Any]]]:
    """Runs of distinct subjects until each arm has ``per_arm`` of them, each waited for before the next starts.

    One at a time, so both arms' runs take as long (a backlog of one arm would look like a
    latency regression to the guardrail on a loaded machine).
    """
    arms: dict[str, list[dict[str, Any]]] = {CONTROL: [], CANDIDATE: []}
    n = 0
    while min(len(runs) for runs in arms.values()) < per_arm:
        run = await start_run(http, agent_id, subject=f"user-{n}")
        n += 1
        await wait_run(http, run["id"])
        if len(arms[run["experiment_arm"]]) < per_arm:
            arms[run["experiment_arm"]].append(run)
    return arms


async def give_feedback(http: httpx.AsyncClient, run_id: str, score: float) -> None:
    response = await http.post(f"/v1/runs/{run_id}/feedback", json={"score": score})
    assert response.status_code == 201, response.text
