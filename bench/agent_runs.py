"""Agent runs through the HTTP API vs. a bare Temporal workflow, on one embedded stack.

Platform: N runs of a calculator agent (local provider) started with
``POST /v1/agents/{id}/runs`` at concurrency C and awaited with the
long-poll ``GET /v1/runs/{id}?wait_s=30``, for two scenarios: one tool call
(begin, model, tool, model, finish = 5 activities) and three tool calls
(7 activities). Then the time from ``POST`` to the first SSE event.

Baselines, in the same invocation and on the same Temporal server: a bare
workflow with the same number of no-op activities, started with the SDK
client and awaited, at the same concurrency — ``raw`` runs them one after
another; ``raw-shape`` runs the tool calls of one model answer concurrently, as
the platform does, so the comparison holds without that advantage. The sides
run in two halves in the order raw, raw-shape, platform, platform, raw-shape,
raw, so that none profits from going first on an emptier server (the dev
server's SQLite grows with every run). Each side's CPU is charged per run to
each service of the stack (agents worker, API, Temporal, PostgreSQL, Redis; the
benchmark process is the load generator and the baselines' worker).

Usage: ``python -m bench.agent_runs [--runs N] [--concurrency C]`` (or ``make bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from bench.baseline import BaselineWorkflow, noop
from bench.cpu import CpuLedger
from bench.load import BENCH_ENV
from workers.embedded.stack import StackProcess


@dataclass
class Figures:
    """Throughput and latency of one side of the benchmark."""

    name: str
    runs: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.runs / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    def __add__(self, other: Figures) -> Figures:
        """Both halves of one side, as one measurement."""
        runs, seconds = self.runs + other.runs, self.seconds + other.seconds
        return Figures(self.name, runs, seconds, self.latencies + other.latencies)

    def row(self) -> str:
        return (
            f"{self.name:<10} {self.runs:>5} {self.rate:>9.1f} "
            f"{self.pct(0.50):>8.0f} {self.pct(0.95):>8.0f} {self.pct(0.99):>8.0f}"
        )


async def bounded(concurrency: int, count: int, one: object) -> tuple[float, list[float]]:
    """Await ``one(i)`` for each of ``count`` indexes, ``concurrency`` at a time: (seconds, each one's latency)."""
    semaphore = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def _task(index: int) -> None:
        async with semaphore:
            began = time.perf_counter()
            await one(index)  # type: ignore[operator]
            latencies.append(time.perf_counter() - began)

    started = time.perf_counter()
    await asyncio.gather(*(_task(i) for i in range(count)))
    return time.perf_counter() - started, latencies


@dataclass(frozen=True)
class Scenario:
    """A kind of run: what the agent is asked, and how much work that is."""

    name: str
    prompt: str
    steps: int
    shape: tuple[int, ...]
    """Activities per stage: begin, model, the answer's tool calls (concurrent), model, finish."""

    @property
    def activities(self) -> int:
        return sum(self.shape)


SCENARIOS = (
    Scenario("1 tool call", "{i} + 1", steps=3, shape=(1, 1, 1, 1, 1)),
    Scenario("3 tool calls", "{i} + 1, 2 * {i} and {i} - 3?", steps=5, shape=(1, 1, 3, 1, 1)),
)


async def platform(stack: StackProcess, scenario: Scenario, runs: int, concurrency: int) -> Figures:
    """Runs through the public API, measured from POST to the long-poll seeing the final status."""
    limits = httpx.Limits(max_connections=concurrency + 5, max_keepalive_connections=concurrency + 5)
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, limits=limits, timeout=60) as http:
        agent = (
            await http.post(
                "/v1/agents", json={"name": "bench", "tools": ["calculator"], "model": {"provider": "local"}}
            )
        ).json()

        async def one(index: int) -> None:
            body = {"input": scenario.prompt.format(i=index)}
            run = (await http.post(f"/v1/agents/{agent['id']}/runs", json=body)).json()
            while run["status"] not in ("completed", "failed", "cancelled"):
                run = (await http.get(f"/v1/runs/{run['id']}", params={"wait_s": 30})).json()
            if run["status"] != "completed" or len(run["steps"]) != scenario.steps:
                raise RuntimeError(f"unexpected run: {run['status']} {run.get('error')} {len(run['steps'])} steps")

        await one(1)  # warm up
        seconds, latencies = await bounded(concurrency, runs, one)
    return Figures("platform", runs, seconds, latencies)


async def baseline(
    stack: StackProcess, widths: list[int], runs: int, concurrency: int, *, name: str = "raw"
) -> Figures:
    """The bare workflow with the same activity count, staged as ``widths``, through the SDK client."""
    client = await Client.connect(stack.temporal_address)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[BaselineWorkflow], activities=[noop]):

        async def one(index: int) -> None:
            await client.execute_workflow(BaselineWorkflow.run, widths, id=f"bench:{queue}:{index}", task_queue=queue)

        await one(-1)
        seconds, latencies = await bounded(concurrency, runs, one)
    return Figures(name, runs, seconds, latencies)


async def time_to_first_event(stack: StackProcess, runs: int) -> tuple[list[float], list[float]]:
    """Seconds to a run's first SSE event, one run at a time: from ``POST …/runs``, and from opening the stream."""
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    samples, from_open = [], []
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=30) as http:
        agent = (await http.post("/v1/agents", json={"name": "ttfe", "tools": ["calculator"]})).json()
        for index in range(runs):
            began = time.perf_counter()
            run = (await http.post(f"/v1/agents/{agent['id']}/runs", json={"input": f"{index} * 2"})).json()
            opened = time.perf_counter()
            async with http.stream("GET", f"/v1/runs/{run['id']}/events") as stream:
                async for line in stream.aiter_lines():
                    if line.startswith("event: "):
                        samples.append(time.perf_counter() - began)
                        from_open.append(time.perf_counter() - opened)
                        break
    return samples, from_open


async def _scenario(
    stack: StackProcess, scenario: Scenario, services: dict[str, int], runs: int, concurrency: int
) -> tuple[Figures, Figures | None, Figures, CpuLedger]:
    """The sides of one scenario in two halves (raw, raw-shape, platform, platform, raw-shape, raw)."""
    cpu = CpuLedger(services)
    first, second = runs // 2, runs - runs // 2
    sequential, staged = [1] * scenario.activities, list(scenario.shape)
    shaped = staged != sequential
    with cpu.charge("raw", first):
        raw = await baseline(stack, sequential, first, concurrency)
    same = None
    if shaped:
        with cpu.charge("raw-shape", first):
            same = await baseline(stack, staged, first, concurrency, name="raw-shape")
    with cpu.charge("platform", runs):
        ours = await platform(stack, scenario, first, concurrency)
        ours += await platform(stack, scenario, second, concurrency)
    if same is not None:
        with cpu.charge("raw-shape", second):
            same += await baseline(stack, staged, second, concurrency, name="raw-shape")
    with cpu.charge("raw", second):
        raw += await baseline(stack, sequential, second, concurrency)
    return raw, same, ours, cpu


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--ttfe-runs", type=int, default=50)
    parser.add_argument("--only-ttfe", action="store_true", help="skip the throughput scenarios")
    args = parser.parse_args()

    results: list[tuple[Scenario, Figures, Figures | None, Figures, CpuLedger]] = []
    with tempfile.TemporaryDirectory(prefix="aimpact-bench-") as home:
        # The scenarios' agents have no long-term memory: the hash embedder spares the minilm model
        # load (seconds of CPU at start-up) that would otherwise overlap the first baseline.
        stack = StackProcess(home=Path(home), extra_env=BENCH_ENV)
        stack.start()
        services = {name: pid for name, pid in stack.pids().items() if name != "supervisor"}
        try:
            for scenario in () if args.only_ttfe else SCENARIOS:
                results.append((scenario, *await _scenario(stack, scenario, services, args.runs, args.concurrency)))
            ttfe, from_open = await time_to_first_event(stack, args.ttfe_runs)
        finally:
            stack.stop()

    for scenario, raw, same, ours, cpu in results:
        print(f"\n{scenario.name}: N={args.runs} C={args.concurrency}, {scenario.activities} activities per run")
        print(f"{'':<10} {'runs':>5} {'runs/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
        for figures in (raw, same, ours):
            if figures is not None:
                print(figures.row())
        print(f"platform/raw throughput ratio: {ours.rate / raw.rate:.2f} (target >= 0.8)")
        print(f"platform/raw p50 latency ratio: {ours.pct(0.5) / raw.pct(0.5):.2f}")
        shape = same or raw  # one tool call: the sequential baseline already has the platform's shape
        print(f"platform/raw-shape throughput ratio: {ours.rate / shape.rate:.2f} (target >= 0.9)")
        print(cpu.table())
    for label, values in (("opening the stream", from_open), ("POST …/runs (includes starting the workflow)", ttfe)):
        first = Figures("ttfe", len(values), 1.0, values)
        print(f"\ntime to first SSE event from {label}, {len(values)} runs one at a time:")
        print(
            f"p50 {first.pct(0.5):.0f} ms, p95 {first.pct(0.95):.0f} ms, p99 {first.pct(0.99):.0f} ms"
            " (target p50 < 100 ms)"
        )


if __name__ == "__main__":
    asyncio.run(main())
