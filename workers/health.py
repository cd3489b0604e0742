"""The worker's own HTTP endpoint: ``/metrics``, ``/healthz`` and ``/readyz`` on one port.

A deliberately tiny HTTP/1.1 server on ``asyncio`` (GET and HEAD, one request per
connection), so a worker process needs neither a web framework nor a thread:

- ``/healthz``: 200 while the event loop answers (liveness).
- ``/readyz``: 200 when every readiness check passes, else 503 with the failing
  check named (``{"status": "not ready", "checks": {"temporal": "error: ..."}}``).
- ``/metrics``: the Prometheus exposition of the process registry.

Ports come from ``AIMPACT_WORKER_METRICS_PORT`` (default 9464) and
``AIMPACT_WORKER_SDK_METRICS_PORT`` (default 9465, the Temporal SDK's own metrics);
``0`` disables either. The bind address is ``AIMPACT_WORKER_METRICS_HOST`` (default:
the API host setting, so ``AIMPACT_API_HOST=0.0.0.0`` in a container opens both).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import structlog
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

log = structlog.get_logger(__name__)

METRICS_PORT_ENV = "AIMPACT_WORKER_METRICS_PORT"
SDK_METRICS_PORT_ENV = "AIMPACT_WORKER_SDK_METRICS_PORT"
METRICS_HOST_ENV = "AIMPACT_WORKER_METRICS_HOST"
DEFAULT_METRICS_PORT = 9464
DEFAULT_SDK_METRICS_PORT = 9465

Check = Callable[[], Awaitable[object]]
"""A readiness check: returns when healthy, raises when not."""

_MAX_LINE = 8192
_MAX_HEADERS = 100
_READ_TIMEOUT_S = 5.0
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def port_from_env(name: str, default: int, env: Mapping[str, str] | None = None) -> int:
    """A TCP port from variable ``name`` (``0`` = disabled); ``ValueError`` naming the variable when invalid."""
    raw = (os.environ if env is None else env).get(name, "").strip()
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a port number (0 disables)") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{name}={port} is outside 0..65535 (0 disables)")
    return port


@dataclass
class ProbeServer:
    """Serves ``/healthz``, ``/readyz`` and ``/metrics`` until :meth:`stop`."""

    host: str
    port: int
    checks: Mapping[str, Check]
    registry: CollectorRegistry = REGISTRY
    check_timeout_s: float = 3.0
    draining: bool = False
    _server: asyncio.Server | None = field(default=None, init=False, repr=False)

    @property
    def bound_port(self) -> int:
        """The port actually listened on (useful when started with port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("probe server is not running")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        """Listen on ``host:port``; ``OSError`` when the port is taken."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port, limit=_MAX_LINE)

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def readiness(self) -> tuple[bool, dict[str, str]]:
        """Run every check concurrently; ``(ready, {name: "ok" | "error: <Type>"})``."""

        async def run(check: Check) -> str:
            try:
                await asyncio.wait_for(check(), timeout=self.check_timeout_s)
            except Exception as exc:  # readiness reports every failure as data
                return f"error: {type(exc).__name__}"
            return "ok"

        names = list(self.checks)
        outcomes = await asyncio.gather(*(run(self.checks[name]) for name in names))
        results = dict(zip(names, outcomes, strict=True))
        if self.draining:
            results["worker"] = "draining"
        return all(v == "ok" for v in results.values()), results

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(_read_request(reader), timeout=_READ_TIMEOUT_S)
            if request is None:
                await _respond(writer, 400, b"bad request\n", "text/plain; charset=utf-8", head=False)
                return
            method, path, headers = request
            head = method == "HEAD"
            if method not in {"GET", "HEAD"}:
                await _respond(writer, 405, b"method not allowed\n", "text/plain; charset=utf-8", head=False)
            elif path == "/healthz":
                await _respond(writer, 200, b'{"status": "ok"}', "application/json", head=head)
            elif path == "/readyz":
                ready, results = await self.readiness()
                body = json.dumps({"status": "ready" if ready else "not ready", "checks": results}).encode()
                await _respond(writer, 200 if ready else 503, body, "application/json", head=head)
            elif path == "/metrics":
                encoder, content_type = choose_encoder(headers.get("accept", ""))
                await _respond(writer, 200, encoder(self.registry), content_type, head=head)
            else:
                await _respond(writer, 404, b"not found\n", "text/plain; charset=utf-8", head=head)
        except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass  # a slow, broken or oversized request gets no answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]] | None:
    """``(method, path, headers)`` of one request, or ``None`` when it is malformed."""
    parts = (await reader.readline()).decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    method, target, _ = parts
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS):
        line = (await reader.readline()).decode("latin-1").strip()
        if not line:
            return method, target.split("?", 1)[0], headers
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return None


async def _respond(writer: asyncio.StreamWriter, status: int, body: bytes, content_type: str, *, head: bool) -> None:
    head_lines = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    )
    writer.write(head_lines.encode("latin-1") + (b"" if head else body))
    await writer.drain()


async def start_probe_server(host: str, port: int, checks: Mapping[str, Check]) -> ProbeServer | None:
    """A running :class:`ProbeServer`, or ``None`` when ``port`` is 0 or taken (logged, not fatal).

    A taken port must not stop the worker: several workers on one machine (``aimpact up``
    with more queues, or several stacks) would otherwise crash-loop on the default port.
    Kubernetes notices the missing endpoint through the failing probes.
    """
    if port == 0:
        log.info("worker metrics endpoint disabled", env=METRICS_PORT_ENV)
        return None
    server = ProbeServer(host=host, port=port, checks=checks)
    try:
        await server.start()
    except OSError as exc:
        log.error("worker metrics endpoint not started", host=host, port=port, error=str(exc), env=METRICS_PORT_ENV)
        return None
    log.info("worker metrics endpoint listening", host=host, port=server.bound_port)
    return server


def temporal_runtime(host: str, port: int) -> Runtime | None:
    """A Temporal runtime exporting the SDK's metrics on ``host:port``; ``None`` (the default runtime) when off.

    Durations are in seconds and counters end in ``_total`` (Prometheus conventions),
    e.g. ``temporal_workflow_task_schedule_to_start_latency_bucket`` and
    ``temporal_workflow_completed_total``. Labels are the namespace, task queue and
    workflow/activity type: bounded. A taken port is logged and tolerated, like
    :func:`start_probe_server`.
    """
    if port == 0:
        log.info("temporal SDK metrics disabled", env=SDK_METRICS_PORT_ENV)
        return None
    config = PrometheusConfig(bind_address=f"{host}:{port}", durations_as_seconds=True, counters_total_suffix=True)
    try:
        runtime = Runtime(telemetry=TelemetryConfig(metrics=config))
    except ValueError as exc:
        log.error("temporal SDK metrics not started", host=host, port=port, error=str(exc), env=SDK_METRICS_PORT_ENV)
        return None
    log.info("temporal SDK metrics listening", host=host, port=port)
    return runtime
