"""The read path: the platform's hot reads against bare FastAPI + psycopg routes reading the same rows.

One embedded stack. Its API (one process, authenticated with an API key, request metrics,
rate limits: everything a tenant gets) serves

- ``GET /v1/runs/{id}`` of a run with 3 steps and of one with 30 steps,
- ``GET /v1/runs?limit=50`` (50 runs of 3 steps each),
- ``GET /v1/threads/{id}/messages`` (a thread of 20 messages),

and bench/reads_app.py serves the same reads, bare, from a uvicorn process of its own on the
same database. The rows are written straight into the database (the shapes the workers write),
so both sides read exactly the same rows. Each pair is loaded in rounds that alternate which
side goes first; the figures are the medians of the rounds.

Usage: ``python -m bench.reads [--seconds S] [--concurrency C] [--rounds R]``; uses ``wrk``
(``apt-get install wrk``) when it is installed (bench/load.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from bench.load import BENCH_ENV, Load, client_name, load, serve, wait_up
from workers.embedded.ports import free_port
from workers.embedded.stack import StackProcess

TARGET = 0.6


@dataclass
class Seeded:
    """What the load reads."""

    tenant_id: str
    run_3: str
    run_30: str
    thread_id: str


def _step(tenant_id: str, run_id: str, seq: int, began: datetime) -> dict[str, object]:
    tool = seq % 2 == 1
    return {
        "tenant_id": tenant_id,
        "run_id": run_id,
        "step_id": f"s{seq}",
        "seq": seq,
        "kind": "tool" if tool else "llm",
        "name": "calculator" if tool else "local/echo",
        "status": "completed",
        "attempts": 1,
        "input": json.dumps({"expression": f"{seq} * 7"} if tool else {"messages": 3, "tools": ["calculator"]}),
        "output": json.dumps({"result": seq * 7} if tool else {"content": f"step {seq}: the answer is {seq * 7}."}),
        "started_at": began + timedelta(milliseconds=10 * seq),
        "ended_at": began + timedelta(milliseconds=10 * seq + 8),
    }


def seed(stack: StackProcess, tenant_id: str, agent_id: str) -> Seeded:
    """A run of 3 steps, one of 30, 50 more of 3 steps for the list, and a thread of 20 messages."""
    now = datetime.now(UTC)
    runs = [(f"run_bench{n:04d}", 30 if n == 1 else 3) for n in range(52)]
    thread_id = "thr_bench"
    with psycopg.connect(stack.database_url.replace("+psycopg", "")) as conn:
        for n, (run_id, steps) in enumerate(runs):
            created = now - timedelta(seconds=len(runs) - n)
            conn.execute(
                "INSERT INTO run (id, tenant_id, agent_id, agent_version, thread_id, status, input, output,"
                " metadata, input_tokens, output_tokens, cost_usd, workflow_id, workflow_run_id,"
                " created_at, updated_at) VALUES (%s, %s, %s, 1, %s, 'completed', %s, %s, %s, 120, 45,"
                " 0.00042, %s, %s, %s, %s)",
                (
                    run_id,
                    tenant_id,
                    agent_id,
                    thread_id,
                    f"What is {n} * 7? Show the steps.",
                    f"{n} * 7 = {n * 7}.",
                    json.dumps({"source": "bench", "n": n}),
                    f"{tenant_id}:run:{run_id}",
                    f"0198a0b2-{n:04d}-7000-8000-000000000000",
                    created,
                    created,
                ),
            )
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO run_step (tenant_id, run_id, step_id, seq, kind, name, status, attempts, input,"
                    " output, input_tokens, output_tokens, cost_usd, started_at, ended_at) VALUES (%(tenant_id)s,"
                    " %(run_id)s, %(step_id)s, %(seq)s, %(kind)s, %(name)s, %(status)s, %(attempts)s, %(input)s,"
                    " %(output)s, 40, 15, 0.00014, %(started_at)s, %(ended_at)s)",
                    [_step(tenant_id, run_id, seq, created) for seq in range(steps)],
                )
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO thread_message (tenant_id, thread_id, run_id, message_key, seq, role, content,"
                " tool_calls, kind, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'message', %s)",
                [
                    (
                        tenant_id,
                        thread_id,
                        runs[0][0],
                        f"bench:{seq}",
                        seq,
                        "user" if seq % 2 else "assistant",
                        f"message {seq}: " + "a sentence of an ordinary conversation. " * 3,
                        "[]",
                        now,
                    )
                    for seq in range(1, 21)
                ],
            )
    return Seeded(tenant_id=tenant_id, run_3=runs[-1][0], run_30=runs[1][0], thread_id=thread_id)


async def _prepare(stack: StackProcess) -> Seeded:
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.api_key}"}, timeout=30
    ) as http:
        tenant_id = (await http.get("/v1/me")).json()["tenant_id"]
        agent = (await http.post("/v1/agents", json={"name": "reads", "tools": ["calculator"]})).json()
    return seed(stack, tenant_id, agent["id"])


def _row(name: str, ours: Load, bare: Load) -> str:
    ratio = ours.rate / bare.rate
    mark = "ok" if ratio >= TARGET else "below target"
    return (
        f"{name:<34} {ours.rate:>8.0f} {ours.p50:>7.1f} {ours.p99:>7.1f}   {bare.rate:>8.0f} {bare.p50:>7.1f}"
        f" {bare.p99:>7.1f}   {ratio:>5.2f} {mark}"
    )


def _median(loads: list[Load]) -> Load:
    return Load(*(statistics.median(getattr(x, f) for x in loads) for f in ("rate", "p50", "p99")))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="aimpact-bench-") as home:
        stack = StackProcess(home=Path(home), extra_env=BENCH_ENV)
        stack.start()
        bare = None
        try:
            seeded = await _prepare(stack)
            port = free_port()
            dsn = stack.database_url.replace("+psycopg", "")
            bare = serve(
                stack, "bench.reads_app:bare_app", port, {"BENCH_DSN": dsn, "BENCH_TENANT_ID": seeded.tenant_id}
            )
            wait_up(f"http://127.0.0.1:{port}/healthz")
            api, base = stack.api_url, f"http://127.0.0.1:{port}/bare"
            pairs = {
                "GET /v1/runs/{id} (3 steps)": (f"{api}/v1/runs/{seeded.run_3}", f"{base}/runs/{seeded.run_3}"),
                "GET /v1/runs/{id} (30 steps)": (f"{api}/v1/runs/{seeded.run_30}", f"{base}/runs/{seeded.run_30}"),
                "GET /v1/runs?limit=50": (f"{api}/v1/runs?limit=50", f"{base}/runs?limit=50"),
                "GET /v1/threads/{id}/messages": (
                    f"{api}/v1/threads/{seeded.thread_id}/messages",
                    f"{base}/threads/{seeded.thread_id}/messages",
                ),
            }
            key = {"Authorization": f"Bearer {stack.api_key}"}
            results: dict[str, tuple[list[Load], list[Load]]] = {name: ([], []) for name in pairs}
            for ours_url, bare_url in pairs.values():  # warm up: caches, prepared statements, pools
                await load(ours_url, key, 1, args.concurrency)
                await load(bare_url, {}, 1, args.concurrency)
            for round_ in range(args.rounds):
                for name, (ours_url, bare_url) in pairs.items():
                    ours, theirs = results[name]
                    if round_ % 2 == 0:
                        ours.append(await load(ours_url, key, args.seconds, args.concurrency))
                        theirs.append(await load(bare_url, {}, args.seconds, args.concurrency))
                    else:
                        theirs.append(await load(bare_url, {}, args.seconds, args.concurrency))
                        ours.append(await load(ours_url, key, args.seconds, args.concurrency))
        finally:
            if bare is not None:
                bare.terminate()
                bare.wait()
            stack.stop()

    print(
        f"\nC={args.concurrency}, {args.seconds:.0f} s x {args.rounds} rounds ({client_name()}; medians);"
        f" target platform/bare >= {TARGET}"
    )
    print(f"{'':<34} {'platform':>8} {'p50 ms':>7} {'p99 ms':>7}   {'bare':>8} {'p50 ms':>7} {'p99 ms':>7}   ratio")
    for name, (ours, theirs) in results.items():
        print(_row(name, _median(ours), _median(theirs)))


if __name__ == "__main__":
    asyncio.run(main())
