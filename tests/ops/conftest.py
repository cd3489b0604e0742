"""Fixtures of the operations tests: a stack whose worker exposes its metrics ports, and scrapes.

``ops_stack`` is a second embedded stack (the session ``stack`` of tests/conftest.py has no
worker metrics ports of its own) started with ``AIMPACT_WORKER_METRICS_PORT`` and
``AIMPACT_WORKER_SDK_METRICS_PORT`` on free ports.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

import core.telemetry.metrics  # noqa: F401 - registers the platform's metrics
from tests.ops.support import PROMETHEUS_GENERATED, exposition_sample_names, registry_sample_names
from workers.embedded.ports import free_port
from workers.embedded.stack import StackProcess


@dataclass
class OpsStack:
    """The stack plus its worker's endpoints."""

    stack: StackProcess
    worker_port: int
    sdk_port: int

    @property
    def worker_url(self) -> str:
        """Base URL of the worker's /metrics, /healthz, /readyz."""
        return f"http://127.0.0.1:{self.worker_port}"

    @property
    def sdk_url(self) -> str:
        """Base URL of the worker's Temporal SDK metrics."""
        return f"http://127.0.0.1:{self.sdk_port}"

    @property
    def auth(self) -> dict[str, str]:
        """Headers of the seeded bootstrap key (owner of the demo tenant)."""
        return {"Authorization": f"Bearer {self.stack.api_key}"}

    def run_agent(self, http: httpx.Client, text: str, agent_id: str | None = None, timeout_s: float = 30) -> dict:
        """Start a run of the demo agent (or ``agent_id``) and poll it to a final status."""
        if agent_id is None:
            agent_id = http.get("/v1/agents").json()["items"][0]["id"]
        started = http.post(f"/v1/agents/{agent_id}/runs", json={"input": text})
        assert started.status_code == 202, started.text
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run: dict = http.get(f"/v1/runs/{started.json()['id']}").json()
            if run["status"] in {"completed", "failed", "cancelled"}:
                return run
            time.sleep(0.05)
        raise AssertionError(f"run not final after {timeout_s}s: {run}")

    def client(self, headers: dict[str, str] | None = None) -> httpx.Client:
        """An HTTP client of the API."""
        return httpx.Client(base_url=self.stack.api_url, headers=headers or self.auth, timeout=30)


@pytest.fixture(scope="session")
def ops_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsStack]:
    """An embedded stack whose worker serves metrics and probes on known ports."""
    worker_port, sdk_port = free_port(), free_port()
    stack = StackProcess(
        home=Path(tmp_path_factory.mktemp("ops-stack")),
        extra_env={
            "AIMPACT_WORKER_METRICS_PORT": str(worker_port),
            "AIMPACT_WORKER_SDK_METRICS_PORT": str(sdk_port),
            # Close each agent thread right after its turn, so workflows complete and the SDK
            # exports its completion metrics (temporal_workflow_completed_total, ..._endtoend_...).
            "AIMPACT_THREAD_IDLE_S": "0",
            # Run reconciliation every second, so its first pass (and the SDK series it adds)
            # happens before a test takes its baseline of series, not in the middle of it.
            "AIMPACT_RECONCILE_INTERVAL_S": "1",
        },
    )
    stack.start()
    ops = OpsStack(stack=stack, worker_port=worker_port, sdk_port=sdk_port)
    try:
        _wait_ready(f"{ops.worker_url}/readyz", timeout_s=60)  # `aimpact up` does not wait for workers
        yield ops
    finally:
        stack.stop()


def _wait_ready(url: str, timeout_s: float) -> None:
    """Poll ``url`` until it answers 200, as a startup probe would."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready after {timeout_s}s")


@dataclass
class Scrapes:
    """Expositions of the API, the worker and the worker's SDK runtime after one completed run."""

    run: dict
    api: str
    worker: str
    sdk: str


@pytest.fixture(scope="session")
def scrapes(ops_stack: OpsStack) -> Scrapes:
    """Run one agent run end to end, then scrape every metrics endpoint."""
    with ops_stack.client() as http:
        run = ops_stack.run_agent(http, "What is 6 * 7?")
        assert run["status"] == "completed", run
        api = http.get("/metrics").text
    worker = httpx.get(f"{ops_stack.worker_url}/metrics", timeout=10).text
    sdk = httpx.get(f"{ops_stack.sdk_url}/metrics", timeout=10).text
    return Scrapes(run=run, api=api, worker=worker, sdk=sdk)


@pytest.fixture(scope="session")
def exported_names(scrapes: Scrapes) -> set[str]:
    """Every metric sample name the code exports: the prometheus_client registry + the Temporal SDK."""
    names = registry_sample_names(REGISTRY) | exposition_sample_names(scrapes.sdk) | PROMETHEUS_GENERATED
    assert "temporal_workflow_task_schedule_to_start_latency_bucket" in names
    return names


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool (Debian package ``prometheus``; .ci/run installs it)."""
    found = shutil.which("promtool")
    if not found:
        pytest.skip("promtool not installed: apt-get install -y --no-install-recommends prometheus")
    return found
