"""workers/health.py in isolation: the probe server, port settings and the SDK runtime."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from workers.health import (
    DEFAULT_METRICS_PORT,
    METRICS_PORT_ENV,
    ProbeServer,
    port_from_env,
    start_probe_server,
    temporal_runtime,
)


async def _ok() -> None:
    return None


async def _down() -> None:
    raise ConnectionRefusedError("database is down")


async def _hangs() -> None:
    await asyncio.sleep(60)


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("probe_test_events_total", "Events.", ["kind"], registry=registry).labels("a").inc(3)
    return registry


async def test_readyz_names_each_failing_check_and_answers_503(registry: CollectorRegistry) -> None:
    server = ProbeServer(
        host="127.0.0.1",
        port=0,
        checks={"database": _down, "temporal": _ok, "redis": _hangs},
        registry=registry,
        check_timeout_s=0.2,
    )
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.bound_port}") as http:
            ready = await http.get("/readyz")
            healthz = await http.get("/healthz")
            metrics = await http.get("/metrics")
            openmetrics = await http.get("/metrics", headers={"Accept": "application/openmetrics-text"})
            with_query = await http.get("/healthz?verbose=1")
    finally:
        await server.stop()
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "not ready",
        "checks": {"database": "error: ConnectionRefusedError", "temporal": "ok", "redis": "error: TimeoutError"},
    }
    assert healthz.status_code == with_query.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'probe_test_events_total{kind="a"} 3.0' in metrics.text
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")


async def test_draining_worker_is_not_ready(registry: CollectorRegistry) -> None:
    server = ProbeServer(host="127.0.0.1", port=0, checks={"temporal": _ok}, registry=registry)
    await server.start()
    try:
        url = f"http://127.0.0.1:{server.bound_port}/readyz"
        async with httpx.AsyncClient() as http:
            assert (await http.get(url)).status_code == 200
            server.draining = True
            response = await http.get(url)
    finally:
        await server.stop()
    assert response.status_code == 503
    assert response.json()["checks"] == {"temporal": "ok", "worker": "draining"}


async def test_malformed_and_oversized_requests_get_no_crash(registry: CollectorRegistry) -> None:
    server = ProbeServer(host="127.0.0.1", port=0, checks={}, registry=registry)
    await server.start()
    try:
        port = server.bound_port
        for payload in (b"NONSENSE\r\n\r\n", b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(payload)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), timeout=5)
            writer.close()
            assert answer == b"" or answer.startswith(b"HTTP/1.1 400")
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
    finally:
        await server.stop()


async def test_taken_port_or_zero_disables_the_endpoint_without_failing() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert await start_probe_server("127.0.0.1", port, {}) is None
        assert temporal_runtime("127.0.0.1", port) is None
    assert await start_probe_server("127.0.0.1", 0, {}) is None
    assert temporal_runtime("127.0.0.1", 0) is None


def test_ports_come_from_the_environment_with_clear_errors() -> None:
    assert port_from_env(METRICS_PORT_ENV, DEFAULT_METRICS_PORT, {}) == 9464
    assert port_from_env(METRICS_PORT_ENV, DEFAULT_METRICS_PORT, {METRICS_PORT_ENV: " 0 "}) == 0
    assert port_from_env(METRICS_PORT_ENV, DEFAULT_METRICS_PORT, {METRICS_PORT_ENV: "19464"}) == 19464
    with pytest.raises(ValueError, match="AIMPACT_WORKER_METRICS_PORT='metrics' is not a port number"):
        port_from_env(METRICS_PORT_ENV, DEFAULT_METRICS_PORT, {METRICS_PORT_ENV: "metrics"})
    with pytest.raises(ValueError, match=r"outside 0\.\.65535"):
        port_from_env(METRICS_PORT_ENV, DEFAULT_METRICS_PORT, {METRICS_PORT_ENV: "70000"})
