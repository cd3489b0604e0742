"""Runs the worker of one task queue until SIGTERM/SIGINT, with its probe and metrics endpoints."""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from core.db.engine import make_engine
from core.settings import Settings
from core.telemetry.tracing import configure_tracing, temporal_interceptors
from core.temporal import check_search_attributes, connect_temporal
from workers import registry
from workers.build import plan_worker
from workers.deps import WorkerDeps
from workers.health import METRICS_HOST_ENV, Check, port_from_env, start_probe_server, temporal_runtime

log = structlog.get_logger(__name__)


@dataclass
class _Readiness:
    """What ``/readyz`` checks; filled in as the worker comes up."""

    engine: AsyncEngine
    redis: Redis
    client: Client | None = None
    worker: Worker | None = None

    async def database(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("select 1"))

    async def redis_ping(self) -> None:
        await self.redis.ping()

    async def temporal(self) -> None:
        if self.client is None:
            raise ConnectionError("not connected to Temporal yet")
        await self.client.service_client.check_health()

    async def polling(self) -> None:
        if self.worker is None or not self.worker.is_running:
            raise RuntimeError("worker not running")

    def checks(self) -> dict[str, Check]:
        return {"database": self.database, "redis": self.redis_ping, "temporal": self.temporal, "worker": self.polling}


async def run_worker(
    settings: Settings,
    queue: str,
    *,
    metrics_port: int | None = None,
    sdk_metrics_port: int | None = None,
    metrics_host: str | None = None,
) -> None:
    """Run the worker of the registered queue ``queue`` until SIGTERM/SIGINT.

    ``metrics_port`` serves ``/metrics``, ``/healthz`` and ``/readyz``; ``sdk_metrics_port``
    the Temporal SDK's metrics. ``None`` reads the queue's variables in workers/registry.py
    (``AIMPACT_WORKER_METRICS_PORT`` 9464 and ``AIMPACT_WORKER_SDK_METRICS_PORT`` 9465 for
    ``agents``, ``AIMPACT_WEBHOOKS_WORKER_METRICS_PORT`` 9466 and
    ``AIMPACT_WEBHOOKS_WORKER_SDK_METRICS_PORT`` 9467 for ``webhooks``, so they run side by
    side under ``aimpact up``); 0 disables. All bind ``metrics_host`` (default
    ``AIMPACT_WORKER_METRICS_HOST``, else the API host setting).

    Raises:
        registry.UnknownQueueError: No capability targets ``queue``.
    """
    target = registry.queue(queue)
    for capability in registry.capabilities_on(target):
        registry.load(capability)  # import before handling signals, so a stop while starting ends the process at once
    host = metrics_host or os.environ.get(METRICS_HOST_ENV) or settings.api_host
    port = port_from_env(target.metrics.env, target.metrics.default) if metrics_port is None else metrics_port
    sdk_port = (
        port_from_env(target.sdk_metrics.env, target.sdk_metrics.default)
        if sdk_metrics_port is None
        else sdk_metrics_port
    )
    tracer_provider = configure_tracing(f"aimpact-worker-{queue}")  # fails fast on unsupported OTEL_* values
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    engine = make_engine(settings.database_target, pre_ping=False)  # failed activities are retried
    redis = Redis.from_url(settings.redis_target, socket_timeout=10)
    readiness = _Readiness(engine=engine, redis=redis)
    probes = await start_probe_server(host, port, readiness.checks())
    task_queue = target.task_queue(settings)
    try:
        runtime = temporal_runtime(host, sdk_port)
        if runtime is not None:
            # One runtime per process: nothing else may create the default one beside it.
            Runtime.set_default(runtime, error_if_already_set=False)
        readiness.client = await connect_temporal(
            settings, runtime=runtime, interceptors=temporal_interceptors(tracer_provider)
        )
        await check_search_attributes(readiness.client)
        deps = WorkerDeps(settings=settings, client=readiness.client, engine=engine, redis=redis)
        plan = plan_worker(target, deps)
        readiness.worker = plan.worker(readiness.client)
        await plan.run_start_hooks(deps)
        log.info("worker started", queue=queue, task_queue=task_queue)
        async with readiness.worker:
            await stop.wait()
            if probes is not None:
                probes.draining = True
    finally:
        if probes is not None:
            await probes.stop()
        if tracer_provider is not None:
            tracer_provider.shutdown()
        await engine.dispose()
        await redis.aclose()
    log.info("worker stopped", queue=queue, task_queue=task_queue)
