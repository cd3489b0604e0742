"""A victim tenant's latencies next to a hostile neighbour, against the same traffic on an idle stack.

One embedded stack, one invocation. The victim runs the same workload three times: idle,
while a neighbour attacks, idle again (the two idle halves are the baseline, so neither
side profits from an emptier dev server). The workload: runs of a calculator agent
(``POST …/runs`` to the long-poll seeing ``completed``) and ``GET /v1/runs/{id}`` reads.

The neighbour, during the middle phase: as many webhooks as its limit allows, all to a
black hole on loopback (accepts, never answers); a burst of runs that each fire them; and
500 SSE streams on a run that waits for an approval.

Then capacity: SSE streams held open on one API process, across tenants (each within its
per-tenant limit), counted after a hold of ``--hold-s`` seconds.

Targets: victim p95 ≤ 2× idle, 0 victim errors, 0 5xx; ≥ 1,000 open streams per process at 0 errors.

Usage: ``python -m bench.hostile [--victim-runs N] [--streams S] [--hold-s T]``. Every connection
goes to loopback and every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update
from sqlmodel import col

from core.db.engine import make_engine, make_sessionmaker
from core.db.models import Tenant
from core.provisioning import create_tenant, issue_api_key
from workers.embedded.stack import StackProcess

FINAL = ("completed", "failed", "cancelled")


@dataclass
class Sample:
    """Latencies and outcomes of one kind of request in one phase."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000 if ordered else float("nan")

    def __add__(self, other: Sample) -> Sample:
        return Sample(self.latencies + other.latencies, self.errors + other.errors)


@dataclass
class Phase:
    """The victim's figures in one phase."""

    runs: Sample = field(default_factory=Sample)
    gets: Sample = field(default_factory=Sample)

    def __add__(self, other: Phase) -> Phase:
        return Phase(self.runs + other.runs, self.gets + other.gets)


async def _tenant(engine: Any, name: str, *, allow_loopback: bool = False) -> str:
    """A tenant with an owner key and generous quotas (the limits under test are not request quotas)."""
    async with make_sessionmaker(engine)() as session:
        tenant = await create_tenant(session, f"{name}-{uuid.uuid4().hex[:6]}")
        values: dict[str, Any] = {"quotas": {"requests_per_minute": 1_000_000, "concurrent_runs": 10_000}}
        if allow_loopback:
            values["egress_allowlist"] = ["127.0.0.1"]
        await session.exec(update(Tenant).where(col(Tenant.id) == tenant.id).values(**values))
        await session.commit()
        _, minted = await issue_api_key(session, tenant.id, name="owner", role="owner")
    return minted.key


def _client(stack: StackProcess, key: str, connections: int = 20) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=120
    )


async def _record(sample: Sample, call: Any) -> Any:
    began = time.perf_counter()
    try:
        response: httpx.Response = await call()
    except httpx.HTTPError as exc:
        sample.errors[type(exc).__name__] += 1
        return None
    if response.status_code >= 400:
        sample.errors[str(response.status_code)] += 1
        return None
    sample.latencies.append(time.perf_counter() - began)
    return response


async def victim_phase(http: httpx.AsyncClient, agent_id: str, runs: int, gets: int) -> Phase:
    """``runs`` agent runs (4 at a time) and ``gets`` reads of a finished run (8 at a time)."""
    phase = Phase()
    done = (await http.post(f"/v1/agents/{agent_id}/runs", json={"input": "1 + 1"})).json()

    async def one_run(index: int) -> None:
        began = time.perf_counter()
        try:
            run = (await http.post(f"/v1/agents/{agent_id}/runs", json={"input": f"{index} + 1"})).json()
            for _ in range(10):  # ≤ 10 long-polls of 30 s
                if run["status"] in FINAL:
                    break
                run = (await http.get(f"/v1/runs/{run['id']}", params={"wait_s": 30})).json()
        except (httpx.HTTPError, KeyError) as exc:
            phase.runs.errors[type(exc).__name__] += 1
            return
        if run["status"] != "completed":
            phase.runs.errors[run["status"]] += 1
            return
        phase.runs.latencies.append(time.perf_counter() - began)

    async def bounded(count: int, width: int, one: Any) -> None:
        gate = asyncio.Semaphore(width)

        async def task(i: int) -> None:
            async with gate:
                await one(i)

        await asyncio.gather(*(task(i) for i in range(count)))

    await asyncio.gather(
        bounded(runs, 4, one_run),
        bounded(gets, 8, lambda _: _record(phase.gets, lambda: http.get(f"/v1/runs/{done['id']}"))),
    )
    return phase


async def _black_hole() -> tuple[asyncio.Server, int, list[asyncio.StreamWriter]]:
    """A loopback server that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], held


@dataclass
class StreamTally:
    """Outcomes of raw SSE connections."""

    opened: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    ended_early: int = 0
    keepalives: int = 0


async def _sse(port: int, key: str, run_id: str, tally: StreamTally, hold_until: float) -> None:
    """One SSE stream over a raw socket (cheap enough to hold a thousand), read until ``hold_until``."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        tally.refused[type(exc).__name__] += 1
        return
    try:
        writer.write(
            f"GET /v1/runs/{run_id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        status_line = await asyncio.wait_for(reader.readline(), 30)
        status = status_line.split(b" ")[1].decode() if b" " in status_line else "no-answer"
        if status != "200":
            tally.refused[status] += 1
            return
        tally.opened += 1
        while (left := hold_until - time.monotonic()) > 0:
            try:
                line = await asyncio.wait_for(reader.readline(), left)
            except TimeoutError:
                break
            if not line:
                tally.ended_early += 1
                return
            tally.keepalives += line.startswith(b": keep-alive")
    except (OSError, TimeoutError) as exc:
        tally.refused[type(exc).__name__] += 1
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _waiting_run(http: httpx.AsyncClient) -> str:
    """A run that stays in flight: its tool call waits for an approval."""
    agent = (
        await http.post(
            "/v1/agents",
            json={
                "name": "waits",
                "tools": [{"name": "calculator", "requires_approval": True, "approval_timeout_s": 3600}],
            },
        )
    ).json()
    run = (await http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "2 + 2"})).json()
    for _ in range(100):
        run = (await http.get(f"/v1/runs/{run['id']}")).json()
        if run["status"] == "waiting_approval":
            return str(run["id"])
        await asyncio.sleep(0.1)
    raise RuntimeError(f"run did not wait for approval: {run['status']}")


async def neighbour_attack(
    stack: StackProcess, key: str, hole_port: int, runs: int, streams: int, stop: asyncio.Event
) -> dict[str, Any]:
    """Webhooks to a black hole, a burst of runs, and ``streams`` SSE streams, until ``stop``."""
    port = stack.ports["API"]
    async with _client(stack, key, connections=40) as http:
        webhooks = Counter[str]()
        for _ in range(200):  # stops at the tenant's webhook limit
            made = await http.post(
                "/v1/webhooks", json={"url": f"http://127.0.0.1:{hole_port}/hook", "events": ["run.completed"]}
            )
            webhooks[str(made.status_code)] += 1
            if made.status_code != 201:
                break
        agent = (await http.post("/v1/agents", json={"name": "burst", "tools": ["calculator"]})).json()
        waiting = await _waiting_run(http)
        tally = StreamTally()
        hold_until = time.monotonic() + 3600
        stream_tasks = [asyncio.create_task(_sse(port, key, waiting, tally, hold_until)) for _ in range(streams)]
        started = Counter[str]()
        index = 0
        while not stop.is_set() and index < runs:
            batch = [http.post(f"/v1/agents/{agent['id']}/runs", json={"input": f"{index + i} * 3"}) for i in range(20)]
            for response in await asyncio.gather(*batch, return_exceptions=True):
                started[str(getattr(response, "status_code", type(response).__name__))] += 1
            index += 20
        await stop.wait()
        for task in stream_tasks:
            task.cancel()
        await asyncio.gather(*stream_tasks, return_exceptions=True)
    return {"webhooks": dict(webhooks), "runs started": dict(started), "streams": tally}


async def stream_capacity(stack: StackProcess, engine: Any, total: int, per_tenant: int, hold_s: float) -> StreamTally:
    """``total`` streams on one API process, ``per_tenant`` per tenant, held ``hold_s`` seconds."""
    tally = StreamTally()
    hold_until = time.monotonic() + hold_s + 30
    tasks: list[asyncio.Task[None]] = []
    for _ in range(-(-total // per_tenant)):
        key = await _tenant(engine, "streams")
        async with _client(stack, key) as http:
            run_id = await _waiting_run(http)
        count = min(per_tenant, total - len(tasks))
        tasks += [asyncio.create_task(_sse(stack.ports["API"], key, run_id, tally, hold_until)) for _ in range(count)]
    await asyncio.sleep(hold_s)
    opened_at_hold = tally.opened - tally.ended_early
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    tally.opened = opened_at_hold
    return tally


def _row(name: str, sample: Sample) -> str:
    errors = sum(sample.errors.values())
    return (
        f"{name:<22} {len(sample.latencies):>6} {sample.pct(0.5):>9.1f} {sample.pct(0.95):>9.1f} {errors:>7}"
        f"  {dict(sample.errors) or ''}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--victim-runs", type=int, default=40)
    parser.add_argument("--victim-gets", type=int, default=400)
    parser.add_argument("--neighbour-runs", type=int, default=400)
    parser.add_argument("--neighbour-streams", type=int, default=500)
    parser.add_argument("--streams", type=int, default=1000, help="streams held open on one API process")
    parser.add_argument("--per-tenant", type=int, default=100)
    parser.add_argument("--hold-s", type=float, default=40.0)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    with tempfile.TemporaryDirectory(prefix="aimpact-hostile-") as home:
        stack = StackProcess(home=Path(home), extra_env={"AIMPACT_EMBEDDER": "hash", "AIMPACT_THREAD_IDLE_S": "0"})
        stack.start()
        engine = make_engine(stack.database_url, pool_size=2)
        hole, hole_port, held = await _black_hole()
        try:
            victim_key = await _tenant(engine, "victim")
            neighbour_key = await _tenant(engine, "neighbour", allow_loopback=True)
            async with _client(stack, victim_key) as victim:
                agent = (await victim.post("/v1/agents", json={"name": "victim", "tools": ["calculator"]})).json()
                await victim_phase(victim, agent["id"], 4, 20)  # warm up
                idle = await victim_phase(victim, agent["id"], args.victim_runs // 2, args.victim_gets // 2)
                stop = asyncio.Event()
                attack = asyncio.create_task(
                    neighbour_attack(stack, neighbour_key, hole_port, args.neighbour_runs, args.neighbour_streams, stop)
                )
                await asyncio.sleep(10)  # let the webhooks, the burst and the streams build up
                hostile = await victim_phase(victim, agent["id"], args.victim_runs, args.victim_gets)
                stop.set()
                neighbour = await attack
                idle += await victim_phase(victim, agent["id"], args.victim_runs - args.victim_runs // 2,
                                           args.victim_gets - args.victim_gets // 2)  # fmt: skip
            capacity = await stream_capacity(stack, engine, args.streams, args.per_tenant, args.hold_s)
            server_errors = _server_errors(stack)
        finally:
            hole.close()
            for writer in held:
                writer.close()
            await engine.dispose()
            stack.stop()

    print(f"\nvictim: {args.victim_runs} runs (4 at a time) and {args.victim_gets} GETs (8 at a time) per phase")
    print(f"{'':<22} {'n':>6} {'p50 ms':>9} {'p95 ms':>9} {'errors':>7}")
    for name, phase in (("idle", idle), ("neighbour attacking", hostile)):
        print(_row(f"runs, {name}", phase.runs))
        print(_row(f"GETs, {name}", phase.gets))
    for kind in ("runs", "gets"):
        ratio = getattr(hostile, kind).pct(0.95) / getattr(idle, kind).pct(0.95)
        print(f"victim {kind} p95 attacked/idle: {ratio:.2f} (target <= 2.0)")
    tally: StreamTally = neighbour["streams"]
    print(f"\nneighbour: webhooks {neighbour['webhooks']}, runs {neighbour['runs started']}")
    print(
        f"neighbour streams: {tally.opened} opened, refused {dict(tally.refused)}, {tally.ended_early} ended early,"
        f" {tally.keepalives} keep-alives"
    )
    print(
        f"\nstreams held on one API process for {args.hold_s:.0f} s: {capacity.opened} of {args.streams}"
        f" (target >= 1000), refused {dict(capacity.refused)}, ended early {capacity.ended_early},"
        f" keep-alives {capacity.keepalives}"
    )
    print(f"5xx answers logged by the API: {server_errors} (target 0)")


def _server_errors(stack: StackProcess) -> int:
    """Requests the API logged as failed (status ≥ 500)."""
    log = stack.home / "logs" / "api.log"
    return sum(1 for line in log.read_text(errors="replace").splitlines() if '"request failed"' in line)


if __name__ == "__main__":
    asyncio.run(main())
