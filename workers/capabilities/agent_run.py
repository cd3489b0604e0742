"""Agent runs on the agents queue: ``AgentRunWorkflow`` and its activities, wired to providers, tools and memory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import Worker

from activities.agent_run import AgentRunActivities
from core.blobs import BlobStore
from core.crypto import Keyring
from core.db.engine import make_sessionmaker
from core.db.projection import RunProjection
from core.egress import parse_allowlist, tenant_allowlist_loader
from core.events import RunEventLog
from core.memory.context import ThreadContext
from core.memory.service import MemoryService
from core.secrets import SecretReader
from core.settings import Settings
from core.threads import ThreadStore
from core.tools.base import ToolRegistry
from core.tools.builtin import builtin_tools
from core.tools.http_request import HttpRequestTool
from core.tools.memory import MemorySearchTool, MemoryWriteTool
from core.tools.tenant_http import LayeredToolResolver, TenantToolRegistry
from workers.build import make_worker
from workers.capabilities.webhooks import webhook_notifier
from workers.deps import WorkerDeps
from workers.model_access import egress_check, model_providers
from workers.registry import AGENTS, Slice
from workflows.agent_run import AgentRunWorkflow


def build_agent_activities(
    projection: RunProjection,
    events: RunEventLog,
    *,
    keyring: Keyring | None = None,
    memory: MemoryService | None = None,
    redis: Redis | None = None,
    webhooks_task_queue: str | None = None,
    settings: Settings | None = None,
) -> AgentRunActivities:
    """Agent-run activities wired to the configured providers, tools, threads, memory, secrets and webhooks.

    Deliveries start on ``webhooks_task_queue`` (default: the setting), at most
    ``webhook_inflight_per_tenant`` pending per tenant (the rest are logged as dropped).
    ``settings`` defaults to the environment's.
    """
    settings = settings or Settings()
    keyring = keyring or Keyring.from_setting(settings.encryption_keyring)
    engine = projection.engine
    sessions = make_sessionmaker(engine)
    platform = parse_allowlist(settings.egress_allowlist)
    return AgentRunActivities(
        projection=projection,
        events=events,
        providers=model_providers(settings),
        tools=tool_resolver(engine, keyring, memory, settings),
        threads=ThreadStore(engine, redis),
        context=ThreadContext(engine, redis),
        memory=memory,
        blobs=BlobStore(engine),
        secrets=SecretReader(engine, keyring),
        notify=webhook_notifier(engine, settings),
        egress=egress_check(sessions, platform),
        webhooks_task_queue=webhooks_task_queue or settings.webhooks_task_queue,
    )


def tool_resolver(
    engine: AsyncEngine, keyring: Keyring, memory: MemoryService | None, settings: Settings
) -> LayeredToolResolver:
    """The tools a run may call: built-ins, ``http_request`` (egress-checked), memory tools, then tenant tools."""
    sessions = make_sessionmaker(engine)
    platform = parse_allowlist(settings.egress_allowlist)
    http_request = HttpRequestTool(allowlist_for=tenant_allowlist_loader(sessions), platform_allowlist=platform)
    memory_tools: list[Any] = [MemorySearchTool(memory), MemoryWriteTool(memory)] if memory else []
    return LayeredToolResolver(
        ToolRegistry([*builtin_tools(), http_request, *memory_tools]),
        TenantToolRegistry(sessions, keyring, platform_allowlist=platform),
    )


def agent_run_activities(activities: AgentRunActivities) -> list[Callable[..., Any]]:
    """The activity callables ``AgentRunWorkflow`` schedules."""
    return [
        activities.begin,
        activities.start_turn,
        activities.llm,
        activities.tool,
        activities.approval,
        activities.child,
        activities.finish,
        activities.close,
    ]


def build_agent_worker(client: Client, activities: AgentRunActivities, task_queue: str) -> Worker:
    """A worker for ``AgentRunWorkflow`` alone on ``task_queue`` (tests give each their own queue)."""
    return make_worker(
        client,
        task_queue,
        workflows=[AgentRunWorkflow],
        activities=agent_run_activities(activities),
        activity_slots=AGENTS.activity_slots,
    )


def _activities(deps: WorkerDeps) -> Sequence[Callable[..., Any]]:
    return agent_run_activities(
        build_agent_activities(
            RunProjection(deps.engine),
            RunEventLog(deps.redis),
            keyring=deps.keyring,
            memory=deps.memory,
            redis=deps.redis,
            settings=deps.settings,
        )
    )


SLICE = Slice(
    workflows=[AgentRunWorkflow],
    activities=_activities,
)
