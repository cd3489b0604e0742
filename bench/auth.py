"""Cost of authentication: login (argon2id), JWT verification, and API throughput with and without auth.

One invocation, one embedded stack, one API process: ``GET /v1/runs/{id}``
authenticated (API key, then JWT) against ``GET /bench/runs/{id}``, which calls
the same handler with a fixed principal (bench/auth_app.py).

Usage: ``python -m bench.auth [--seconds S] [--concurrency C] [--rounds R]``; uses ``wrk``
(``apt-get install wrk``) as the load generator when it is installed (bench/load.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from pydantic import SecretStr

from bench.load import BENCH_ENV, client_name, load, serve, wait_up
from core.auth.jwt_keys import JwtService
from core.security import hash_password, verify_password
from core.settings import Settings
from workers.embedded.ports import free_port
from workers.embedded.stack import StackProcess


def _per_call_us(fn: object, n: int) -> float:
    began = time.perf_counter()
    for _ in range(n):
        fn()  # type: ignore[operator]
    return (time.perf_counter() - began) / n * 1e6


def micro() -> None:
    """In-process costs of password and token checks."""
    hashed = hash_password("correct horse battery staple")
    argon_ms = _per_call_us(lambda: verify_password(hashed, "correct horse battery staple"), 20) / 1000
    service = JwtService(Settings(jwt_secret=SecretStr("x" * 40)))
    token = service.issue(subject="usr_1", tenant_id="ten_1")
    verify_us = _per_call_us(lambda: service.verify(token), 5000)
    print(f"argon2id verify (t=2, m=19 MiB, p=1): {argon_ms:.1f} ms per login")
    print(f"JWT HS256 verify: {verify_us:.1f} µs per request")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    micro()

    with tempfile.TemporaryDirectory(prefix="aimpact-bench-") as home:
        stack = StackProcess(home=Path(home), extra_env=BENCH_ENV)
        stack.start()
        servers = []
        try:
            key = {"Authorization": f"Bearer {stack.api_key}"}
            async with httpx.AsyncClient(base_url=stack.api_url, headers=key, timeout=30) as http:
                me = (await http.get("/v1/me")).json()
                agent = (await http.post("/v1/agents", json={"name": "b", "tools": ["calculator"]})).json()
                run = (await http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "1+1"})).json()
                await http.get(f"/v1/runs/{run['id']}", params={"wait_s": 30})
                login = await http.post(
                    "/v1/auth/token", json={"email": "owner@demo.aimpact.local", "password": stack.admin_password}
                )
                jwt_headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
                began = time.perf_counter()
                for _ in range(5):
                    await http.post(
                        "/v1/auth/token", json={"email": "owner@demo.aimpact.local", "password": stack.admin_password}
                    )
                print(f"POST /v1/auth/token end to end: {(time.perf_counter() - began) / 5 * 1000:.0f} ms")
            port = free_port()
            twin = "bench.auth_app:app_with_unauthenticated_twin"
            servers.append(serve(stack, twin, port, {"BENCH_TENANT_ID": me["tenant_id"]}))
            wait_up(f"http://127.0.0.1:{port}/healthz")
            base = f"http://127.0.0.1:{port}"
            sides = [
                ("no auth", f"{base}/bench/runs/{run['id']}", {}),
                ("api key", f"{base}/v1/runs/{run['id']}", key),
                ("jwt", f"{base}/v1/runs/{run['id']}", jwt_headers),
            ]
            for _, url, headers in sides:
                await load(url, headers, 2, args.concurrency)  # warm up
            results: dict[str, list[tuple[float, float]]] = {"api key": [], "jwt": [], "no auth": []}
            for round_ in range(args.rounds):  # interleave, alternating order, to even out drift
                for name, url, headers in sides if round_ % 2 == 0 else reversed(sides):
                    measured = await load(url, headers, args.seconds, args.concurrency)
                    results[name].append((measured.rate, measured.p50))
        finally:
            for server in servers:
                server.terminate()
                server.wait()
            stack.stop()

    print(
        f"\nGET /v1/runs/{{id}}, C={args.concurrency}, {args.seconds:.0f} s x {args.rounds} rounds"
        f" ({client_name()}; medians)"
    )
    print(f"{'':<10} {'req/s':>8} {'p50 ms':>8}")
    rates = {}
    for name, rows in results.items():
        rates[name] = statistics.median(r for r, _ in rows)
        print(f"{name:<10} {rates[name]:>8.0f} {statistics.median(p for _, p in rows):>8.1f}")
    for name in ("api key", "jwt"):
        print(f"auth cost ({name}): {(1 - rates[name] / rates['no auth']) * 100:.1f}% (target < 10%)")


if __name__ == "__main__":
    os.environ.setdefault("AIMPACT_LOG_LEVEL", "warning")
    asyncio.run(main())
