"""Scale-out on one machine: 1 → 2 workers on the agents queue, 1 → 2 API processes, and a worker killed under load.

On one embedded stack (``aimpact up``, one worker per queue, one API process):

1. Agent-run throughput (calculator agent, local provider, as in ``bench.agent_runs``) at
   concurrency C with the stack's one agents worker, then with a second
   ``aimpact worker --queue agents`` beside it. The 1-worker side runs in two halves, before
   and after the 2-worker side, so that neither profits from an emptier dev server.
2. Read throughput, ``GET /v1/runs/{id}`` with wrk (httpx without it), against one
   ``aimpact api --reuse-port`` on a port of its own, then two on that same port (the kernel
   spreads connections over them), then one again; the 1-process figure is the mean of both.
3. Lost runs: N runs at concurrency C on two agents workers; the second is SIGKILLed once
   a third of the runs have started. Every run must still complete: Temporal hands the
   killed worker's workflow tasks and activities to the survivor once their timeouts pass
   (``AIMPACT_ACTIVITY_HEARTBEAT_TIMEOUT_S`` for model and tool calls, here 2 s).

The machine's cores bound every ratio: with 2 cores, PostgreSQL, Temporal, Redis, the API
and the load generator share them with the processes being scaled.

Usage: ``python -m bench.scale [--runs N] [--concurrency C] [--seconds S] [--kill-runs K]``;
run it under ``flock /tmp/bench.lock`` on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from bench.agent_runs import SCENARIOS, Figures, platform
from bench.load import BENCH_ENV, load
from workers.embedded.ports import free_port, listens_on
from workers.embedded.process import die_with_parent
from workers.embedded.stack import StackProcess

FINAL = ("completed", "failed", "cancelled")


@contextmanager
def child(stack: StackProcess, name: str, args: list[str], **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """``aimpact <args>`` with the stack's environment plus ``env``, stopped (SIGTERM) on exit unless dead."""
    log = open(stack.home / "logs" / f"bench-{name}.log", "ab")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", *args],
        env=stack.env | {"AIMPACT_LOG_LEVEL": "warning"} | env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent(signal.SIGTERM),
    )
    log.close()
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


async def wait_polling(client: Client, pid: int, timeout_s: float = 90) -> None:
    """Wait until the worker process ``pid`` polls the agents queue for workflow and activity tasks."""
    deadline = time.monotonic() + timeout_s
    kinds = (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
    while time.monotonic() < deadline:
        polling = 0
        for kind in kinds:
            answer = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(namespace="default", task_queue=TaskQueue(name="agents"), task_queue_type=kind)
            )
            polling += any(p.identity.startswith(f"{pid}@") for p in answer.pollers)
        if polling == len(kinds):
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"worker {pid} did not poll the agents queue within {timeout_s} s")


async def ready(proc: subprocess.Popen[bytes], url: str, timeout_s: float = 120) -> None:
    """Wait until ``url`` answers 200 while ``proc`` runs."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not answer (see the bench-*.log files under logs/)")


def worker_args() -> list[str]:
    return ["worker", "--queue", "agents"]


# Ports of the extra worker's metrics: 0 disables them (the stack's worker holds the defaults).
NO_METRICS = {"AIMPACT_WORKER_METRICS_PORT": "0", "AIMPACT_WORKER_SDK_METRICS_PORT": "0"}


async def workers_side(stack: StackProcess, client: Client, runs: int, concurrency: int) -> tuple[Figures, Figures]:
    """Agent-run throughput with one agents worker (two halves) and with two."""
    scenario = SCENARIOS[0]
    one = await platform(stack, scenario, runs // 2, concurrency)
    with child(stack, "worker", worker_args(), **NO_METRICS) as extra:
        await wait_polling(client, extra.pid)
        two = await platform(stack, scenario, runs, concurrency)
    one += await platform(stack, scenario, runs - runs // 2, concurrency)
    return one, two


async def reads_side(stack: StackProcess, seconds: float, concurrency: int) -> tuple[float, float, float]:
    """Requests/s of ``GET /v1/runs/{id}``: one API process, two on one port, one again."""
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as http:
        agent = (await http.post("/v1/agents", json={"name": "reads", "tools": ["calculator"]})).json()
        run = (await http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "2 + 2"})).json()
        while run["status"] not in FINAL:
            run = (await http.get(f"/v1/runs/{run['id']}", params={"wait_s": 30})).json()
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/runs/{run['id']}"
    api = ["api", "--reuse-port"]
    with child(stack, "api-1", api, AIMPACT_API_PORT=str(port)) as first:
        await ready(first, f"http://127.0.0.1:{port}/readyz")
        await load(url, headers, 2, concurrency)  # warm up
        single = (await load(url, headers, seconds, concurrency)).rate
        with child(stack, "api-2", api, AIMPACT_API_PORT=str(port)) as second:
            while not listens_on(second.pid, port):
                if second.poll() is not None:
                    raise RuntimeError("the second API process exited")
                await asyncio.sleep(0.2)
            await load(url, headers, 2, concurrency)
            double = (await load(url, headers, seconds, concurrency)).rate
        assert first.poll() is None
        again = (await load(url, headers, seconds, concurrency)).rate
    return single, again, double


async def kill_side(stack: StackProcess, client: Client, runs: int, concurrency: int) -> tuple[Counter[str], float]:
    """Final statuses of ``runs`` when one of two agents workers is SIGKILLed a third of the way in; seconds taken."""
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    limits = httpx.Limits(max_connections=concurrency + 5, max_keepalive_connections=concurrency + 5)
    model = {"provider": "local", "params": {"latency_ms": 200}}
    with child(stack, "victim", worker_args(), **NO_METRICS) as victim:
        await wait_polling(client, victim.pid)
        async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, limits=limits, timeout=60) as http:
            body = {"name": "kill", "tools": ["calculator"], "model": model}
            agent = (await http.post("/v1/agents", json=body)).json()
            semaphore = asyncio.Semaphore(concurrency)
            started = 0
            kill_at = max(1, runs // 3)

            async def one(index: int) -> str:
                nonlocal started
                async with semaphore:
                    response = await http.post(f"/v1/agents/{agent['id']}/runs", json={"input": f"{index} * 3"})
                    response.raise_for_status()
                    run = response.json()
                    started += 1
                    if started == kill_at:
                        os.kill(victim.pid, signal.SIGKILL)
                    deadline = time.monotonic() + 180
                    while run["status"] not in FINAL and time.monotonic() < deadline:
                        run = (await http.get(f"/v1/runs/{run['id']}", params={"wait_s": 30})).json()
                    return str(run["status"])

            began = time.perf_counter()
            statuses = await asyncio.gather(*(one(i) for i in range(runs)), return_exceptions=True)
            took = time.perf_counter() - began
        if victim.poll() != -signal.SIGKILL:
            raise RuntimeError("the victim worker was not killed during the load")
    return Counter(s if isinstance(s, str) else type(s).__name__ for s in statuses), took


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="runs per worker side")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10, help="seconds of each read measurement")
    parser.add_argument("--read-concurrency", type=int, default=32)
    parser.add_argument("--kill-runs", type=int, default=150)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="aimpact-scale-") as home:
        stack = StackProcess(
            home=Path(home),
            extra_env=BENCH_ENV
            | {
                "AIMPACT_ACTIVITY_HEARTBEAT_TIMEOUT_S": "2",
                "AIMPACT_LOG_LEVEL": "warning",
            },
        )
        stack.start()
        try:
            client = await Client.connect(stack.temporal_address)
            one, two = await workers_side(stack, client, args.runs, args.concurrency)
            single, again, double = await reads_side(stack, args.seconds, args.read_concurrency)
            outcomes, took = await kill_side(stack, client, args.kill_runs, args.concurrency)
        finally:
            stack.stop()

    cores = os.cpu_count()
    print(f"\nagent runs (1 tool call, 5 activities), N={args.runs} per side, C={args.concurrency}, {cores} cores")
    print(f"{'':<10} {'runs':>5} {'runs/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for figures, name in ((one, "1 worker"), (two, "2 workers")):
        figures.name = name
        print(figures.row())
    print(f"2/1 workers throughput ratio: {two.rate / one.rate:.2f}")
    client_name = "wrk -t1" if shutil.which("wrk") else "httpx"
    print(f"\nGET /v1/runs/{{id}}, {client_name} c={args.read_concurrency}, {args.seconds:g} s each")
    print(f"1 API process: {single:.0f} then {again:.0f} req/s (mean {(single + again) / 2:.0f})")
    print(f"2 API processes on one port: {double:.0f} req/s")
    print(f"2/1 API processes throughput ratio: {double / ((single + again) / 2):.2f}")
    total, completed = args.kill_runs, outcomes["completed"]
    print(f"\none of two agents workers SIGKILLed after {max(1, total // 3)} of {total} runs started")
    print(f"outcomes: {dict(outcomes)} in {took:.1f} s")
    print(f"lost: {total - completed} of {total}")


if __name__ == "__main__":
    asyncio.run(main())
