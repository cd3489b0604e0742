"""Stopping and starting the supervisor keeps state and leaves no orphan process."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.support.runs import CALC_AGENT
from workers.embedded.stack import StackProcess

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait(client: httpx.Client, run_id: str) -> dict[str, object]:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run: dict[str, object] = client.get(f"/v1/runs/{run_id}").json()
        if run["status"] in {"completed", "failed"}:
            return run
        time.sleep(0.1)
    raise AssertionError("run did not finish")


def test_restart_keeps_runs_and_stops_every_child(tmp_path: Path) -> None:
    stack = StackProcess(home=tmp_path / "home")
    stack.start()
    try:
        client = httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.api_key}"})
        agent = client.post("/v1/agents", json=CALC_AGENT).json()
        run = client.post(f"/v1/agents/{agent['id']}/runs", json={"input": "2 + 40"}).json()
        assert _wait(client, run["id"])["output"] == "Result — calculator: 42"
        children = stack.pids()
    finally:
        assert stack.stop() == 0
    assert set(children) >= {"supervisor", "postgres", "redis", "temporal", "worker-agents", "api"}
    assert [name for name, pid in children.items() if _alive(pid)] == []

    stack.start()
    try:
        again = client.get(f"/v1/runs/{run['id']}")
        assert again.status_code == 200
        assert again.json()["status"] == "completed"
        assert client.get(f"/v1/agents/{agent['id']}").status_code == 200
        second = client.post(f"/v1/agents/{agent['id']}/runs", json={"input": "3 * 3"}).json()
        assert _wait(client, second["id"])["output"] == "Result — calculator: 9"
        assert len(client.get("/v1/runs").json()["items"]) == 2
    finally:
        client.close()
        assert stack.stop() == 0
