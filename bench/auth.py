"""Cost of authentication: login (argon2id), JWT verification, and API throughput with and without auth.

One invocation, one embedded stack, one API process: ``GET /v1/runs/{id}``
authenticated (API key, then JWT) against ``GET /bench/runs/{id}``, which calls
the same handler with a fixed principal (bench/auth_app.py).

Usage: ``python -m bench.auth [--seconds S] [--concurrency C] [--rounds R]``; uses ``wrk``
(``apt-get install wrk``) as the load generator when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from pydantic import SecretStr

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


async def _load(url: str, headers: dict[str, str], seconds: float, concurrency: int) -> tuple[float, float]:
    """Requests/s and p50 latency (ms) of GET ``url`` for ``seconds`` (wrk when installed: a cheap client)."""
    if shutil.which("wrk"):
        return _wrk(url, headers, seconds, concurrency)
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                began = time.perf_counter()
                response = await client.get(url)
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return len(latencies) / elapsed, statistics.median(latencies) * 1000


def _wrk(url: str, headers: dict[str, str], seconds: float, concurrency: int) -> tuple[float, float]:
    argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(out)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50, unit = re.search(r"50%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return rate, float(p50) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _serve(stack: StackProcess, factory: str, port: int, tenant_id: str) -> subprocess.Popen[bytes]:
    env = stack.env | {"AIMPACT_API_PORT": str(port), "BENCH_TENANT_ID": tenant_id, "AIMPACT_LOG_LEVEL": "warning"}
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", factory, "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait(url: str) -> None:
    for _ in range(300):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    micro()

    with tempfile.TemporaryDirectory(prefix="aimpact-bench-") as home:
        stack = StackProcess(home=Path(home), extra_env={"AIMPACT_DEFAULT_REQUESTS_PER_MINUTE": "100000000"})
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
            servers.append(_serve(stack, "bench.auth_app:app_with_unauthenticated_twin", port, me["tenant_id"]))
            _wait(f"http://127.0.0.1:{port}/healthz")
            base = f"http://127.0.0.1:{port}"
            sides = [
                ("no auth", f"{base}/bench/runs/{run['id']}", {}),
                ("api key", f"{base}/v1/runs/{run['id']}", key),
                ("jwt", f"{base}/v1/runs/{run['id']}", jwt_headers),
            ]
            for _, url, headers in sides:
                await _load(url, headers, 2, args.concurrency)  # warm up
            results: dict[str, list[tuple[float, float]]] = {"api key": [], "jwt": [], "no auth": []}
            for round_ in range(args.rounds):  # interleave, alternating order, to even out drift
                for name, url, headers in sides if round_ % 2 == 0 else reversed(sides):
                    results[name].append(await _load(url, headers, args.seconds, args.concurrency))
        finally:
            for server in servers:
                server.terminate()
                server.wait()
            stack.stop()

    client = "wrk" if shutil.which("wrk") else "httpx"
    print(
        f"\nGET /v1/runs/{{id}}, C={args.concurrency}, {args.seconds:.0f} s x {args.rounds} rounds ({client}; medians)"
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
