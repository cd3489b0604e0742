"""Builds and runs the worker of a task queue.

``agents`` runs the agent-run and memory workflows; ``webhooks`` runs webhook
deliveries only, in a process of its own, so a tenant whose receivers hang or fail
fills that queue and never the runs' one.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.agent_run import AgentRunActivities
from activities.memory import MemoryActivities
from activities.webhooks import WebhookActivities
from core.blobs import BlobStore
from core.crypto import Keyring
from core.db.engine import make_engine, make_sessionmaker
from core.db.projection import RunProjection
from core.egress import check_url, parse_allowlist, tenant_allowlist_loader
from core.events import RunEventLog
from core.llm.anthropic_provider import AnthropicProvider
from core.llm.base import ProviderRegistry
from core.llm.local import LocalProvider
from core.llm.openai_provider import OpenAIProvider
from core.llm.pricing import PriceTable
from core.memory.context import ThreadContext
from core.memory.embedders import Embedder, MiniLMEmbedder, embedder_from_settings
from core.memory.schedule import ensure_consolidation_schedule
from core.memory.service import MemoryService
from core.memory.store import MemoryStore
from core.secrets import SecretReader
from core.settings import Settings, TaskQueue
from core.telemetry.tracing import configure_tracing, temporal_interceptors
from core.temporal import connect_temporal
from core.threads import ThreadStore
from core.tools.base import ToolRegistry
from core.tools.builtin import builtin_tools
from core.tools.http_request import HttpRequestTool
from core.tools.memory import MemorySearchTool, MemoryWriteTool
from core.tools.tenant_http import LayeredToolResolver, TenantToolRegistry
from core.webhooks import WebhookStore, has_live_webhooks
from workers.health import (
    DEFAULT_METRICS_PORT,
    DEFAULT_SDK_METRICS_PORT,
    METRICS_HOST_ENV,
    METRICS_PORT_ENV,
    SDK_METRICS_PORT_ENV,
    Check,
    port_from_env,
    start_probe_server,
    temporal_runtime,
)
from workflows.agent_run import AgentRunWorkflow
from workflows.memory import MemoryConsolidationWorkflow, MemoryExtractWorkflow, MemoryIngestWorkflow
from workflows.webhook_delivery import webhook_workflows_and_activities

log = structlog.get_logger(__name__)
_BACKGROUND: set[asyncio.Task[None]] = set()


PASSTHROUGH_MODULES = (
    "redis",
    "sqlalchemy",
    "sqlmodel",
    "psycopg",
    "pydantic",
    "structlog",
    "prometheus_client",
    "jsonschema",
    "httpx",
    "openai",
    "anthropic",
    "cryptography",
    "numpy",
    "pgvector",
)
"""Libraries that activities use: loaded once outside the workflow sandbox (workflows never call them)."""
WORKER_PORTS: dict[TaskQueue, tuple[str, int, str, int]] = {
    "agents": (METRICS_PORT_ENV, DEFAULT_METRICS_PORT, SDK_METRICS_PORT_ENV, DEFAULT_SDK_METRICS_PORT),
    "webhooks": ("AIMPACT_WEBHOOKS_WORKER_METRICS_PORT", 9466, "AIMPACT_WEBHOOKS_WORKER_SDK_METRICS_PORT", 9467),
}
"""Per queue: the variable and default of the probe/metrics port, then of the SDK metrics port."""
WEBHOOK_ACTIVITY_SLOTS = 100
"""Delivery attempts one webhooks worker runs at once (each waits on a receiver for up to 10 s)."""


def build_agent_worker(
    client: Client,
    activities: AgentRunActivities,
    task_queue: str,
    *,
    webhooks: WebhookActivities | None = None,
    memory: MemoryActivities | None = None,
) -> Worker:
    """A worker for ``AgentRunWorkflow`` (and webhook deliveries and memory workflows, when given).

    New deliveries run on the webhooks queue; ``webhooks`` here serves the ones started
    on this queue before deliveries had their own, until they finish.
    """
    webhook_workflows, webhook_activities = webhook_workflows_and_activities(webhooks) if webhooks else ([], [])
    memory_workflows: list[type] = (
        [MemoryIngestWorkflow, MemoryExtractWorkflow, MemoryConsolidationWorkflow] if memory else []
    )
    memory_activities: list[Any] = (
        [memory.embed, memory.tenants, memory.tenant_page, memory.consolidate] if memory else []
    )
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[AgentRunWorkflow, *webhook_workflows, *memory_workflows],
        activities=[
            activities.begin,
            activities.start_turn,
            activities.llm,
            activities.tool,
            activities.approval,
            activities.child,
            activities.finish,
            activities.extract_memories,
            *webhook_activities,
            *memory_activities,
        ],
        max_concurrent_activities=200,
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
        ),
    )


def build_webhook_worker(client: Client, webhooks: WebhookActivities, task_queue: str) -> Worker:
    """A worker for webhook deliveries only (``WebhookDeliveryWorkflow`` and its activities)."""
    workflows, activities = webhook_workflows_and_activities(webhooks)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=workflows,
        activities=activities,
        max_concurrent_activities=WEBHOOK_ACTIVITY_SLOTS,
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
        ),
    )


def build_memory_service(engine: AsyncEngine, client: Client, settings: Settings, embedder: Embedder) -> MemoryService:
    """The memory service: the store, the configured embedder, ingestion on the agents queue."""
    return MemoryService(MemoryStore(engine), embedder, client, settings.agents_task_queue)


def build_agent_activities(
    projection: RunProjection,
    events: RunEventLog,
    *,
    keyring: Keyring | None = None,
    memory: MemoryService | None = None,
    redis: Redis | None = None,
    webhooks_task_queue: str | None = None,
) -> AgentRunActivities:
    """Agent-run activities wired to the configured providers, tools, threads, memory, secrets and webhooks.

    Deliveries start on ``webhooks_task_queue`` (default: the setting), at most
    ``webhook_inflight_per_tenant`` pending per tenant (the rest are logged as dropped).
    """
    settings = Settings()
    keyring = keyring or Keyring.from_setting(settings.encryption_keyring)
    prices = PriceTable.from_json(settings.model_prices) if settings.model_prices else PriceTable()
    engine = projection.engine
    sessions = make_sessionmaker(engine)
    platform = parse_allowlist(settings.egress_allowlist)
    http_request = HttpRequestTool(allowlist_for=tenant_allowlist_loader(sessions), platform_allowlist=platform)

    allowlist_for = tenant_allowlist_loader(sessions)
    memory_tools: list[Any] = [MemorySearchTool(memory), MemoryWriteTool(memory)] if memory else []

    async def egress(tenant_id: str, url: str) -> None:
        await check_url(url, allowlist=[*platform, *await allowlist_for(tenant_id)])

    async def notify(tenant_id: str, event_id: str, event_type: str, data: dict[str, Any]) -> list[str]:
        if not await has_live_webhooks(engine, tenant_id):
            return []
        async with sessions() as session:
            ids = await WebhookStore(session, tenant_id).enqueue(
                event_id, event_type, data, inflight_limit=settings.webhook_inflight_per_tenant
            )
            await session.commit()
        return list(ids)

    return AgentRunActivities(
        projection=projection,
        events=events,
        providers=ProviderRegistry([LocalProvider(), OpenAIProvider(prices=prices), AnthropicProvider(prices=prices)]),
        tools=LayeredToolResolver(
            ToolRegistry([*builtin_tools(), http_request, *memory_tools]),
            TenantToolRegistry(sessions, keyring, platform_allowlist=platform),
        ),
        threads=ThreadStore(engine, redis),
        context=ThreadContext(engine, redis),
        memory=memory,
        blobs=BlobStore(engine),
        secrets=SecretReader(engine, keyring),
        notify=notify,
        egress=egress,
        webhooks_task_queue=webhooks_task_queue or settings.webhooks_task_queue,
    )


def build_webhook_activities(engine: AsyncEngine, keyring: Keyring, settings: Settings) -> WebhookActivities:
    """Signed, egress-guarded webhook deliveries, at most ``webhook_inflight_per_tenant`` pending per tenant."""
    return WebhookActivities(
        make_sessionmaker(engine),
        keyring,
        parse_allowlist(settings.egress_allowlist),
        inflight_limit=settings.webhook_inflight_per_tenant,
    )


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


async def _queue_worker(
    settings: Settings, queue: TaskQueue, client: Client, engine: AsyncEngine, redis: Redis
) -> tuple[Worker, str]:
    """The worker of ``queue`` and the name of the task queue it polls."""
    keyring = Keyring.from_setting(settings.encryption_keyring)
    webhooks = build_webhook_activities(engine, keyring, settings)
    if queue == "webhooks":
        if settings.webhooks_task_queue == settings.agents_task_queue:
            raise ValueError("AIMPACT_WEBHOOKS_TASK_QUEUE must differ from AIMPACT_AGENTS_TASK_QUEUE")
        return build_webhook_worker(client, webhooks, settings.webhooks_task_queue), settings.webhooks_task_queue
    embedder = embedder_from_settings(settings)
    if isinstance(embedder, MiniLMEmbedder):
        _BACKGROUND.add(asyncio.create_task(embedder.warm()))  # load the model off the first request's path
    memory = build_memory_service(engine, client, settings, embedder)
    activities = build_agent_activities(
        RunProjection(engine), RunEventLog(redis), keyring=keyring, memory=memory, redis=redis
    )
    memory_activities = MemoryActivities(
        engine,
        embedder,
        duplicate_similarity=settings.memory_duplicate_similarity,
        subject_cap=settings.memory_subject_cap,
    )
    worker = build_agent_worker(
        client, activities, settings.agents_task_queue, webhooks=webhooks, memory=memory_activities
    )
    await ensure_consolidation_schedule(client, settings)
    return worker, settings.agents_task_queue


async def run_worker(
    settings: Settings,
    queue: TaskQueue,
    *,
    metrics_port: int | None = None,
    sdk_metrics_port: int | None = None,
    metrics_host: str | None = None,
) -> None:
    """Run the worker of ``queue`` (``agents`` or ``webhooks``) until SIGTERM/SIGINT.

    ``metrics_port`` serves ``/metrics``, ``/healthz`` and ``/readyz``; ``sdk_metrics_port``
    the Temporal SDK's metrics. ``None`` reads ``AIMPACT_WORKER_METRICS_PORT`` (9464) and
    ``AIMPACT_WORKER_SDK_METRICS_PORT`` (9465) for ``agents``,
    ``AIMPACT_WEBHOOKS_WORKER_METRICS_PORT`` (9466) and ``AIMPACT_WEBHOOKS_WORKER_SDK_METRICS_PORT``
    (9467) for ``webhooks`` (both run side by side under ``aimpact up``); 0 disables. All bind
    ``metrics_host`` (default ``AIMPACT_WORKER_METRICS_HOST``, else the API host setting).
    """
    port_env, default_port, sdk_env, default_sdk = WORKER_PORTS[queue]
    host = metrics_host or os.environ.get(METRICS_HOST_ENV) or settings.api_host
    port = port_from_env(port_env, default_port) if metrics_port is None else metrics_port
    sdk_port = port_from_env(sdk_env, default_sdk) if sdk_metrics_port is None else sdk_metrics_port
    tracer_provider = configure_tracing(f"aimpact-worker-{queue}")  # fails fast on unsupported OTEL_* values
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    engine = make_engine(settings.database_target, pre_ping=False)  # failed activities are retried
    redis = Redis.from_url(settings.redis_target, socket_timeout=10)
    readiness = _Readiness(engine=engine, redis=redis)
    probes = await start_probe_server(host, port, readiness.checks())
    task_queue: str = queue
    try:
        runtime = temporal_runtime(host, sdk_port)
        if runtime is not None:
            # One runtime per process: nothing else may create the default one beside it.
            Runtime.set_default(runtime, error_if_already_set=False)
        readiness.client = await connect_temporal(
            settings, runtime=runtime, interceptors=temporal_interceptors(tracer_provider)
        )
        readiness.worker, task_queue = await _queue_worker(settings, queue, readiness.client, engine, redis)
        log.info("worker started", task_queue=task_queue)
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
    log.info("worker stopped", task_queue=task_queue)
