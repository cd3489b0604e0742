"""Pipeline runs through the HTTP API vs. the same work written directly in Temporal, on one embedded stack.

1. Linear: N runs of a pipeline of 10 tool steps, each needing the one before, started with
   ``POST /v1/pipelines/{id}/runs`` at concurrency C. Baseline: ``BaselineWorkflow`` with 10
   sequential no-op activities, started with the SDK client, at the same concurrency.
2. Map: one run of a ``map`` step over 1,000 items at ``max_concurrency`` 50. Baseline:
   ``FanOutWorkflow``, 1,000 no-op activities with at most 50 in flight. Wall time of each.

The platform has no no-op tool: the steps call ``calculator`` on ``"0"``, the cheapest
deterministic built-in (one literal parsed). Both sides await a run through the Temporal
client (the platform's workflow id comes from the ``POST`` answer); the platform's runs are
then read back with ``GET /v1/pipeline-runs/{id}``, outside the timed part, and must be
``completed`` with every step completed. The baselines' worker runs in this process, built
by ``workers.build.make_worker`` as the pipelines worker is (same sandbox, same activity
slots), on the stack's Temporal server. The sides run in halves in the order raw, platform,
platform, raw, so that none profits from going first on an emptier dev server; each side's
CPU is charged per run (per item for the map) to each service of the stack, and the history of
one run of each side is measured (events, activities, workflow tasks).

Usage: ``python -m bench.pipelines [--runs N] [--concurrency C] [--items I] [--max-concurrency M]``
(or ``make bench-pipelines``); run it under ``flock /tmp/bench.lock`` on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from bench.agent_runs import Figures, bounded
from bench.baseline import BaselineWorkflow, FanOutWorkflow, noop
from bench.cpu import CpuLedger
from bench.load import BENCH_ENV
from workers.build import make_worker
from workers.embedded.stack import StackProcess
from workers.registry import PIPELINES

NOOP_STEP: dict[str, Any] = {"type": "tool", "tool": "calculator", "args": {"expression": "0"}}
"""The cheapest deterministic built-in tool call (the platform has no no-op tool)."""


def linear_definition(steps: int) -> dict[str, Any]:
    """``steps`` no-op tool steps, each needing the one before."""
    return {"steps": [{"id": f"s{i}", **NOOP_STEP, **({"needs": [f"s{i - 1}"]} if i else {})} for i in range(steps)]}


def map_definition(max_concurrency: int) -> dict[str, Any]:
    """One ``map`` of the no-op tool step over ``input.items``."""
    return {
        "inputs": {"type": "object", "properties": {"items": {"type": "array"}}, "required": ["items"]},
        "steps": [
            {"id": "m", "type": "map", "over": "input.items", "max_concurrency": max_concurrency, "step": NOOP_STEP}
        ],
    }


@dataclass
class Api:
    """The platform side: pipelines and runs through the HTTP API, awaited through Temporal."""

    http: httpx.AsyncClient
    temporal: Client
    histories: dict[str, str]
    """A workflow id of each side (``linear raw``, ``map platform``, …), whose history is measured at the end."""

    async def pipeline(self, name: str, definition: dict[str, Any]) -> str:
        """Create a pipeline; its id."""
        response = await self.http.post("/v1/pipelines", json={"name": name, "definition": definition})
        if response.status_code != 201:
            raise RuntimeError(f"POST /v1/pipelines answered {response.status_code}: {response.text[:500]}")
        return str(response.json()["id"])

    async def run(self, pipeline_id: str, run_input: dict[str, Any]) -> str:
        """Start a run with ``POST …/runs`` and await its workflow; the run's id."""
        response = await self.http.post(f"/v1/pipelines/{pipeline_id}/runs", json={"input": run_input})
        if response.status_code != 202:
            raise RuntimeError(f"POST …/runs answered {response.status_code}: {response.text[:500]}")
        run = response.json()
        await self.temporal.get_workflow_handle(run["temporal"]["workflow_id"]).result()
        self.histories["latest platform"] = run["temporal"]["workflow_id"]
        return str(run["id"])

    async def completed(self, run_id: str, steps: int) -> dict[str, Any]:
        """The run, which must be ``completed`` with ``steps`` steps, all completed."""
        run: dict[str, Any] = (await self.http.get(f"/v1/pipeline-runs/{run_id}")).json()
        statuses = {s["status"] for s in run.get("steps", [])}
        if run.get("status") != "completed" or len(run["steps"]) != steps or statuses != {"completed"}:
            raise RuntimeError(f"run {run_id}: {run.get('status')}, {len(run.get('steps', []))} steps {statuses}")
        return run

    async def map_completed(self, run_id: str, items: int) -> list[dict[str, Any]]:
        """The items of the run's map ``m`` (read page by page), which must all be ``completed``."""
        await self.completed(run_id, 1)
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"parent": "m", "limit": 200}
        while True:
            page = (await self.http.get(f"/v1/pipeline-runs/{run_id}/steps", params=params)).json()
            found += page["items"]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        statuses = {s["status"] for s in found}
        if len(found) != items or statuses != {"completed"}:
            raise RuntimeError(f"run {run_id}: {len(found)} of {items} map items, {statuses}")
        return found


@asynccontextmanager
async def baseline_worker(client: Client) -> AsyncIterator[str]:
    """A worker of the baselines on a task queue of its own, shaped as the pipelines worker; the queue."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    workflows = [BaselineWorkflow, FanOutWorkflow]
    async with make_worker(
        client, queue, workflows=workflows, activities=[noop], activity_slots=PIPELINES.activity_slots
    ):
        yield queue


async def platform_linear(api: Api, pipeline_id: str, steps: int, runs: int, concurrency: int) -> Figures:
    """``runs`` runs of the linear pipeline, ``concurrency`` at a time, then each checked."""
    ids: list[str] = []

    async def one(index: int) -> None:
        ids.append(await api.run(pipeline_id, {}))

    await api.completed(await api.run(pipeline_id, {}), steps)  # warm up
    seconds, latencies = await bounded(concurrency, runs, one)
    for run_id in ids:
        await api.completed(run_id, steps)
    api.histories["linear platform"] = api.histories["latest platform"]
    return Figures("platform", runs, seconds, latencies)


async def raw_linear(api: Api, steps: int, runs: int, concurrency: int) -> Figures:
    """``runs`` bare workflows of ``steps`` sequential no-op activities, ``concurrency`` at a time."""
    async with baseline_worker(api.temporal) as queue:

        async def one(index: int) -> None:
            widths = [1] * steps
            await api.temporal.execute_workflow(BaselineWorkflow.run, widths, id=f"{queue}:{index}", task_queue=queue)

        await one(-1)
        seconds, latencies = await bounded(concurrency, runs, one)
    api.histories["linear raw"] = f"{queue}:-1"
    return Figures("raw", runs, seconds, latencies)


def peak_in_flight(items: list[dict[str, Any]]) -> int:
    """Most map items running at once, from the steps' start and end times (workflow time)."""
    return max(sum(1 for o in items if o["started_at"] <= s["started_at"] < o["ended_at"]) for s in items)


async def platform_map(api: Api, pipeline_id: str, items: int, limit: int) -> tuple[float, int]:
    """Seconds of one map run over ``items`` items (after a warm-up of ``limit`` items); the peak in flight."""
    await api.map_completed(await api.run(pipeline_id, {"items": list(range(limit))}), limit)
    began = time.perf_counter()
    run_id = await api.run(pipeline_id, {"items": list(range(items))})
    seconds = time.perf_counter() - began
    api.histories["map platform"] = api.histories["latest platform"]
    return seconds, peak_in_flight(await api.map_completed(run_id, items))


async def raw_map(api: Api, items: int, limit: int) -> float:
    """Seconds of one bare fan-out of ``items`` no-op activities, ``limit`` in flight (after a warm-up)."""
    client = api.temporal
    async with baseline_worker(client) as queue:
        run = FanOutWorkflow.run
        await client.execute_workflow(run, args=[limit, limit], id=f"{queue}:warm", task_queue=queue)
        began = time.perf_counter()
        done = await client.execute_workflow(run, args=[items, limit], id=f"{queue}:map", task_queue=queue)
        seconds = time.perf_counter() - began
    api.histories["map raw"] = f"{queue}:map"
    if done != items:
        raise RuntimeError(f"the fan-out ran {done} of {items} activities")
    return seconds


async def history_shapes(api: Api) -> list[str]:
    """Events, activities and workflow tasks in the history of one run of each side."""
    lines = [f"{'history of one run':<18} {'events':>7} {'activities':>10} {'workflow tasks':>14}"]
    for side, workflow_id in api.histories.items():
        if side == "latest platform":
            continue
        events = (await api.temporal.get_workflow_handle(workflow_id).fetch_history()).events
        activities = sum(e.HasField("activity_task_scheduled_event_attributes") for e in events)
        tasks = sum(e.HasField("workflow_task_completed_event_attributes") for e in events)
        lines.append(f"{side:<18} {len(events):>7} {activities:>10} {tasks:>14}")
    return lines


@dataclass
class MapFigures:
    """Wall times of the map rounds, per side, and the platform's peak of items in flight."""

    raw: list[float]
    platform: list[float]
    peaks: list[int]


async def linear_sides(api: Api, ledger: CpuLedger, args: argparse.Namespace) -> list[Figures]:
    """Raw, platform, platform, raw: the two sides of the linear scenario, each as one measurement."""
    pipeline_id = await api.pipeline("bench-linear", linear_definition(args.steps))
    first, second = args.runs // 2, args.runs - args.runs // 2
    with ledger.charge("raw", first):
        raw = await raw_linear(api, args.steps, first, args.concurrency)
    with ledger.charge("platform", args.runs):
        ours = await platform_linear(api, pipeline_id, args.steps, first, args.concurrency)
        ours += await platform_linear(api, pipeline_id, args.steps, second, args.concurrency)
    with ledger.charge("raw", second):
        raw += await raw_linear(api, args.steps, second, args.concurrency)
    return [raw, ours]


async def map_sides(api: Api, ledger: CpuLedger, args: argparse.Namespace) -> MapFigures:
    """Raw, platform, platform, raw, … over ``args.map_rounds`` rounds of each side."""
    pipeline_id = await api.pipeline("bench-map", map_definition(args.max_concurrency))
    figures = MapFigures([], [], [])
    for index in range(args.map_rounds):
        raw_first = index % 2 == 0
        for side in ("raw", "platform") if raw_first else ("platform", "raw"):
            with ledger.charge(side, args.items):
                if side == "raw":
                    figures.raw.append(await raw_map(api, args.items, args.max_concurrency))
                else:
                    seconds, peak = await platform_map(api, pipeline_id, args.items, args.max_concurrency)
                    figures.platform.append(seconds)
                    figures.peaks.append(peak)
    return figures


def report(
    args: argparse.Namespace, linear: list[Figures], maps: MapFigures, ledgers: list[CpuLedger], shapes: list[str]
) -> None:
    """Print both scenarios' figures next to their baselines."""
    raw, ours = linear
    print(f"\nlinear pipeline: {args.steps} tool steps, N={args.runs} C={args.concurrency}")
    print(f"{'':<10} {'runs':>5} {'runs/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    print(raw.row())
    print(ours.row())
    print(f"platform/raw throughput ratio: {ours.rate / raw.rate:.2f} (target >= 0.8)")
    print(ledgers[0].table())
    print(f"\nmap: {args.items} items, max_concurrency {args.max_concurrency}, {args.map_rounds} rounds a side")
    print("raw s:      " + " ".join(f"{s:7.1f}" for s in maps.raw))
    print("platform s: " + " ".join(f"{s:7.1f}" for s in maps.platform))
    print(f"platform peak items in flight: {max(maps.peaks)}")
    raw_s, ours_s = sum(maps.raw) / len(maps.raw), sum(maps.platform) / len(maps.platform)
    print(f"mean: raw {raw_s:.1f} s, platform {ours_s:.1f} s")
    print(f"platform/raw throughput ratio (raw s / platform s): {raw_s / ours_s:.2f} (target >= 0.8)")
    print("(cpu ms per item)")
    print(ledgers[1].table())
    print()
    print("\n".join(shapes))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="linear runs per side")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--steps", type=int, default=10, help="tool steps of the linear pipeline")
    parser.add_argument("--items", type=int, default=1000, help="items of the map (at most 1,000)")
    parser.add_argument("--max-concurrency", type=int, default=50, help="the map's max_concurrency (at most 50)")
    parser.add_argument("--map-rounds", type=int, default=2, help="map runs per side")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="aimpact-bench-") as home:
        stack = StackProcess(home=Path(home), extra_env=BENCH_ENV)
        stack.start()
        services = {name: pid for name, pid in stack.pids().items() if name != "supervisor"}
        ledgers = [CpuLedger(services), CpuLedger(services)]
        limits = httpx.Limits(max_connections=args.concurrency + 5, max_keepalive_connections=args.concurrency + 5)
        headers = {"Authorization": f"Bearer {stack.api_key}"}
        try:
            async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, limits=limits, timeout=60) as http:
                api = Api(http, await Client.connect(stack.temporal_address), {})
                linear = await linear_sides(api, ledgers[0], args)
                maps = await map_sides(api, ledgers[1], args)
                shapes = await history_shapes(api)
        finally:
            stack.stop()
    report(args, linear, maps, ledgers, shapes)


if __name__ == "__main__":
    asyncio.run(main())
