"""HTTP load for the API benchmarks: wrk when installed (a cheap client), else httpx; and serving an app to load.

Every load is bounded (a duration, a fixed number of connections) and aimed at loopback.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx

from workers.embedded.stack import StackProcess

BENCH_ENV = {
    "AIMPACT_THREAD_IDLE_S": "0",  # a run ends with its turn instead of idling for the next message
    "AIMPACT_DEFAULT_REQUESTS_PER_MINUTE": "100000000",  # the load measures the platform, not its quotas
    "AIMPACT_EMBEDDER": "hash",  # no minilm model loading (seconds of CPU) during the measurements
}
"""The environment of a benchmark's embedded stack."""

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class Load:
    """Requests per second and latency percentiles (ms) of one timed load."""

    rate: float
    p50: float
    p99: float


def client_name() -> str:
    """The load generator this machine uses."""
    return "wrk" if shutil.which("wrk") else "httpx"


async def load(url: str, headers: dict[str, str], seconds: float, concurrency: int) -> Load:
    """GET ``url`` with ``concurrency`` connections for ``seconds``; every answer must be 200."""
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError(f"benchmarks load loopback only, not {url}")
    if shutil.which("wrk"):
        return await asyncio.to_thread(_wrk, url, headers, seconds, concurrency)
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
    ordered = sorted(latencies)
    return Load(
        len(ordered) / elapsed,
        ordered[len(ordered) // 2] * 1000,
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    )


def _wrk(url: str, headers: dict[str, str], seconds: float, concurrency: int) -> Load:
    argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        sample = httpx.get(url, headers=headers, timeout=10)
        raise RuntimeError(f"GET {url} answered {sample.status_code}: {sample.text[:300]}")

    def percentile(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * _UNITS[unit]

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return Load(rate, percentile("50"), percentile("99"))


def serve(stack: StackProcess, factory: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """uvicorn serving ``factory`` (``module:function``) on ``port`` with the stack's environment plus ``env``."""
    env = stack.env | {"AIMPACT_API_PORT": str(port), "AIMPACT_LOG_LEVEL": "warning"} | env
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", factory, "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_up(url: str) -> None:
    """Wait until ``url`` answers 200 (30 s at most)."""
    for _ in range(300):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")
