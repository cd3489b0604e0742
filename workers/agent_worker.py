"""Builds and runs the worker of a task queue."""

from __future__ import annotations

import asyncio
import signal

import structlog
from redis.asyncio import Redis
from temporalio.client import Client
from temporalio.worker import Worker

from activities.agent_run import AgentRunActivities
from core.db.engine import make_engine
from core.db.projection import RunProjection
from core.events import RunEventLog
from core.llm.base import ProviderRegistry
from core.llm.local import LocalProvider
from core.settings import Settings
from core.temporal import connect_temporal
from core.tools.builtin import builtin_registry
from workflows.agent_run import AgentRunWorkflow

log = structlog.get_logger(__name__)


def build_agent_worker(client: Client, activities: AgentRunActivities, task_queue: str) -> Worker:
    """A worker for ``AgentRunWorkflow`` and its activities on ``task_queue``."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[AgentRunWorkflow],
        activities=[activities.begin, activities.llm, activities.tool, activities.finish],
        max_concurrent_activities=200,
    )


def build_agent_activities(projection: RunProjection, events: RunEventLog) -> AgentRunActivities:
    """Agent-run activities wired to the configured providers and tools."""
    return AgentRunActivities(
        projection=projection,
        events=events,
        providers=ProviderRegistry([LocalProvider()]),
        tools=builtin_registry(),
    )


async def run_worker(settings: Settings, queue: str) -> None:
    """Run the worker for ``queue`` until SIGTERM/SIGINT."""
    engine = make_engine(settings.database_target)
    client = await connect_temporal(settings)
    redis = Redis.from_url(settings.redis_target, socket_timeout=10)
    activities = build_agent_activities(RunProjection(engine), RunEventLog(redis))
    worker = build_agent_worker(client, activities, queue)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker started", task_queue=queue)
    async with worker:
        await stop.wait()
    await engine.dispose()
    await redis.aclose()
    log.info("worker stopped", task_queue=queue)
