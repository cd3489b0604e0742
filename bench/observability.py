"""Cost of request metrics + log context on API throughput, and how many series the API exports.

One embedded stack, two API processes on the same database: the real app and the
same app without ``ObservabilityMiddleware``; ``GET /v1/runs/{id}`` on each,
interleaved over several rounds (wrk when installed). Then N runs across T tenants
and the number of distinct series in the API's ``/metrics``.

Usage: ``python -m bench.observability [--seconds S] [--rounds R] [--runs N] [--tenants T]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

import httpx

from bench.load import BENCH_ENV, load, serve, wait_up
from workers.embedded.ports import free_port
from workers.embedded.stack import StackProcess


def _series(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--tenants", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="aimpact-bench-") as home:
        stack = StackProcess(home=Path(home), extra_env=BENCH_ENV)
        stack.start()
        servers = []
        try:
            key = {"Authorization": f"Bearer {stack.api_key}"}
            async with httpx.AsyncClient(base_url=stack.api_url, headers=key, timeout=60) as http:
                agent = (await http.post("/v1/agents", json={"name": "o", "tools": ["calculator"]})).json()
                run = (await http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "1+1"})).json()
                await http.get(f"/v1/runs/{run['id']}", params={"wait_s": 30})
                before = _series((await http.get("/metrics")).text)
            ports = {"instrumented": free_port(), "bare": free_port()}
            servers.append(serve(stack, "api.app:create_app", ports["instrumented"], {}))
            servers.append(serve(stack, "bench.observability_app:uninstrumented_app", ports["bare"], {}))
            for port in ports.values():
                wait_up(f"http://127.0.0.1:{port}/healthz")
            sides = [(name, f"http://127.0.0.1:{port}/v1/runs/{run['id']}") for name, port in ports.items()]
            for _, url in sides:
                await load(url, key, 2, args.concurrency)
            results: dict[str, list[float]] = {name: [] for name, _ in sides}
            for round_ in range(args.rounds):
                for name, url in sides if round_ % 2 == 0 else reversed(sides):
                    results[name].append((await load(url, key, args.seconds, args.concurrency)).rate)
            after = await _many_runs(stack, args.runs, args.tenants)
        finally:
            for server in servers:
                server.terminate()
                server.wait()
            stack.stop()

    instrumented, bare = (statistics.median(results[n]) for n in ("instrumented", "bare"))
    print(f"\nGET /v1/runs/{{id}}: instrumented {instrumented:.0f} req/s, without middleware {bare:.0f} req/s")
    print(f"instrumentation cost: {(1 - instrumented / bare) * 100:.1f}% (medians of {args.rounds} rounds)")
    print(
        f"API /metrics series: {before} after 1 run, {after} after {args.runs} more runs across {args.tenants} tenants"
    )


async def _many_runs(stack: StackProcess, runs: int, tenants: int) -> int:
    """Start ``runs`` runs spread over ``tenants`` new tenants; return the API's series count after."""
    admin = httpx.AsyncClient(base_url=stack.api_url, timeout=60)
    token = (
        await admin.post("/v1/auth/token", json={"email": "admin@aimpact.local", "password": stack.admin_password})
    ).json()["access_token"]
    admin.headers["Authorization"] = f"Bearer {token}"
    clients = []
    for n in range(tenants):
        email = f"owner{n}@bench.example.com"
        await admin.post(
            "/v1/tenants", json={"name": f"t{n}", "owner_email": email, "owner_password": "bench-password-1"}
        )
        pair = (await admin.post("/v1/auth/token", json={"email": email, "password": "bench-password-1"})).json()
        client = httpx.AsyncClient(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {pair['access_token']}"}, timeout=60
        )
        agent = (await client.post("/v1/agents", json={"name": "a", "tools": ["calculator"]})).json()
        clients.append((client, agent["id"]))
    semaphore = asyncio.Semaphore(20)

    async def one(index: int) -> None:
        client, agent_id = clients[index % tenants]
        async with semaphore:
            run = (await client.post(f"/v1/agents/{agent_id}/runs", json={"input": f"{index} + 1"})).json()
            await client.get(f"/v1/runs/{run['id']}", params={"wait_s": 30})

    await asyncio.gather(*(one(i) for i in range(runs)))
    count = _series((await admin.get("/metrics")).text)
    for client, _ in clients:
        await client.aclose()
    await admin.aclose()
    return count


if __name__ == "__main__":
    asyncio.run(main())
