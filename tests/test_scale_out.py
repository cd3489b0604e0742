"""``aimpact up --api-processes 2 --workers-per-queue 2``: two API processes share the port,
two workers serve each queue, and each child is restarted on its own while the others serve."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.runs import CALC_AGENT
from workers import registry
from workers.embedded.ports import listens_on
from workers.embedded.stack import StackProcess
from workers.embedded.supervisor import WORKER_PORT_STEP, metrics_ports


def eventually(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` until it holds, or fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
        time.sleep(0.1)


def answers(stack: StackProcess, requests: int) -> list[int]:
    """Statuses of ``requests`` ``GET /v1/agents``, each on a new connection (the kernel picks the process)."""
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    statuses = []
    for _ in range(requests):
        with httpx.Client(base_url=stack.api_url, headers=headers, timeout=10) as client:
            statuses.append(client.get("/v1/agents").status_code)
    return statuses


def test_each_further_worker_of_a_queue_moves_its_metrics_ports_up(monkeypatch: pytest.MonkeyPatch) -> None:
    agents = registry.queue("agents")
    monkeypatch.delenv(agents.metrics.env, raising=False)
    monkeypatch.setenv(agents.sdk_metrics.env, "0")  # disabled stays disabled
    assert metrics_ports(agents, offset=0) == {}
    assert metrics_ports(agents, offset=2 * WORKER_PORT_STEP) == {agents.metrics.env: str(agents.metrics.default + 20)}


@pytest.mark.slow
def test_two_api_processes_share_the_port_and_survive_each_others_death(tmp_path: Path) -> None:
    stack = StackProcess(home=tmp_path / "home", up_args=["--api-processes", "2", "--workers-per-queue", "2"])
    stack.start(timeout_s=240)
    try:
        pids = stack.pids()
        assert {"api-1", "api-2", "worker-agents-1", "worker-agents-2", "worker-webhooks-1"} <= set(pids)
        assert "api" not in pids
        assert "worker-agents" not in pids
        port = stack.ports["API"]
        assert listens_on(pids["api-1"], port)
        assert listens_on(pids["api-2"], port)
        assert "2 API processes, 2 workers per queue" in (stack.home / "up.log").read_text()

        client = httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.api_key}"}, timeout=30)
        agent = client.post("/v1/agents", json=CALC_AGENT).json()
        run = client.post(f"/v1/agents/{agent['id']}/runs", json={"input": "2 + 40"}).json()
        assert client.get(f"/v1/runs/{run['id']}", params={"wait_s": 30}).json()["output"] == "Result — calculator: 42"
        client.close()

        os.kill(pids["api-1"], signal.SIGKILL)
        # A connection the kernel handed to api-1's socket before the process was gone is reset (as
        # behind any load balancer); once its socket is closed, every new connection goes to api-2.
        eventually(lambda: not listens_on(pids["api-1"], port), 10, "the killed api-1 releases its socket")
        assert answers(stack, 10) == [200] * 10  # api-2 serves: a new api-1 takes seconds to listen

        eventually(lambda: stack.pids()["api-1"] != pids["api-1"], 30, "api-1 restarted")
        eventually(lambda: listens_on(stack.pids()["api-1"], port), 60, "the new api-1 listens on the port")
        assert stack.pids()["api-2"] == pids["api-2"]
        assert answers(stack, 10) == [200] * 10
    finally:
        assert stack.stop() == 0
