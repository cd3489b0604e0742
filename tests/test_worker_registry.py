"""workers/registry.py: every queue's worker from its capabilities; unknown queues and bad settings refused."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from core.settings import Settings
from core.webhooks.contracts import WEBHOOK_DELIVERY_FAILED, WebhookDeliveryInput
from core.webhooks.events import delivery_workflow_id
from workers import registry
from workers.build import plan_worker
from workers.capabilities.memory import consolidation_schedule, warm_embedder
from workers.capabilities.recommend import recommendation_schedules
from workers.capabilities.run_reconciliation import reconciliation_schedule
from workers.capabilities.voice import retention_schedule, warm_engines
from workers.deps import WorkerDeps
from workers.embedded.stack import StackProcess
from workers.embedded.supervisor import Supervisor
from workers.health import port_from_env
from workers.runner import run_worker
from workflows.agent_run import AgentRunWorkflow
from workflows.memory import MemoryConsolidationWorkflow, MemoryExtractWorkflow, MemoryIngestWorkflow
from workflows.optimizer import OptimizerWorkflow
from workflows.pipeline import PipelineWorkflow
from workflows.pipeline_map import PipelineMapChunkWorkflow
from workflows.recommend import RecommendationWorkflow
from workflows.replay import ReplayWorkflow
from workflows.run_reconciliation import RunReconciliationWorkflow
from workflows.voice import VoiceRetentionWorkflow, VoiceSessionWorkflow
from workflows.webhook_delivery import WebhookDeliveryWorkflow

WEBHOOK_ACTIVITIES = {"WebhookActivities.enqueue", "WebhookActivities.deliver", "WebhookActivities.mark_failed"}
EXPECTED: dict[str, tuple[set[type], set[str]]] = {
    "agents": (
        {
            AgentRunWorkflow,
            MemoryIngestWorkflow,
            MemoryExtractWorkflow,
            MemoryConsolidationWorkflow,
            RunReconciliationWorkflow,
            WebhookDeliveryWorkflow,  # deliveries started on the agents queue before webhooks had their own
        },
        {
            # ``AgentRunActivities``: each method's qualname names the mixin that defines it
            *(f"LifecycleActivities.{name}" for name in ("begin", "start_turn", "finish", "close")),
            "ModelStepActivities.llm",
            *(f"ToolStepActivities.{name}" for name in ("tool", "child")),
            "ApprovalActivities.approval",
            *(f"MemoryActivities.{name}" for name in ("embed", "tenants", "tenant_page", "consolidate")),
            "MemoryExtractionActivities.extract_memories",
            "RunReconciliationActivities.page",
            *WEBHOOK_ACTIVITIES,
        },
    ),
    "webhooks": ({WebhookDeliveryWorkflow}, WEBHOOK_ACTIVITIES),
    "pipelines": (
        {PipelineWorkflow, PipelineMapChunkWorkflow},
        {
            *(
                f"PipelineActivities.{name}"
                for name in ("claim_slot", "project", "finish", "tool", "agent_run", "sub_run")
            ),
            "ScheduledRunActivities.begin_scheduled",
        },
    ),
    "optimizer": (
        {OptimizerWorkflow, ReplayWorkflow, RecommendationWorkflow},
        {
            *(f"OptimizerActivities.{name}" for name in ("prepare", "evaluate", "propose", "record", "promote")),
            "ReplayActivities.run",
            "ReplayActivities.record",
            "ScheduledOptimizerActivities.begin_scheduled",
            *(f"RecommendationActivities.{name}" for name in ("mine", "save", "outcomes")),
        },
    ),
    "voice": (
        {VoiceSessionWorkflow, VoiceRetentionWorkflow},
        {
            f"VoiceActivities.{name}"
            for name in (
                "transcribe",
                "agent_run",
                "synthesize",
                "record_turn",
                "keep_heard",
                "record_session",
                "purge_audio",
            )
        },
    ),
}


def _settings(stack: StackProcess, **values: Any) -> Settings:
    """Settings of the test stack, on task queues of this test's own."""
    suffix = uuid.uuid4().hex[:8]
    defaults: dict[str, Any] = {
        "home": stack.home,
        "database_url": stack.database_url,
        "redis_url": stack.redis_url,
        "temporal_address": stack.temporal_address,
        "embedder": "hash",
        "agents_task_queue": f"test-agents-{suffix}",
        "webhooks_task_queue": f"test-webhooks-{suffix}",
        "pipelines_task_queue": f"test-pipelines-{suffix}",
        "optimizer_task_queue": f"test-optimizer-{suffix}",
        "voice_task_queue": f"test-voice-{suffix}",
    }
    return Settings(_env_file=None, **(defaults | values))  # type: ignore[call-arg]


@pytest.fixture
async def deps(stack: StackProcess, engine: AsyncEngine, temporal_client: Client) -> AsyncIterator[WorkerDeps]:
    redis = Redis.from_url(stack.redis_url)
    yield WorkerDeps(settings=_settings(stack), client=temporal_client, engine=engine, redis=redis)
    await redis.aclose()


def test_registry_names_each_queue_once_with_its_own_ports_and_settings() -> None:
    assert list(registry.QUEUES) == ["agents", "webhooks", "pipelines", "optimizer", "voice"]
    for capability in registry.CAPABILITIES:
        assert isinstance(registry.load(capability), registry.Slice), capability.name
        assert all(legacy in registry.QUEUES.values() for legacy in capability.legacy_queues)
    queues = list(registry.QUEUES.values())
    ports = [port for q in queues for port in (q.metrics, q.sdk_metrics)]
    assert len({p.env for p in ports}) == len({p.default for p in ports}) == len(ports) == 10
    assert (registry.AGENTS.metrics.env, registry.AGENTS.metrics.default) == ("AIMPACT_WORKER_METRICS_PORT", 9464)
    assert port_from_env(registry.WEBHOOKS.sdk_metrics.env, registry.WEBHOOKS.sdk_metrics.default, {}) == 9467
    for queue in queues:
        assert queue.setting in Settings.model_fields, queue.name
    assert (registry.VOICE.metrics.default, registry.VOICE.sdk_metrics.default) == (9468, 9469)
    assert registry.VOICE.task_queue(Settings(_env_file=None)) == "voice"  # type: ignore[call-arg]
    speech = registry.Queue(
        name="speech",
        metrics=registry.Port(env="AIMPACT_SPEECH_WORKER_METRICS_PORT", default=9478),
        sdk_metrics=registry.Port(env="AIMPACT_SPEECH_WORKER_SDK_METRICS_PORT", default=9479),
        activity_slots=10,
    )
    assert speech.task_queue(Settings(_env_file=None)) == "speech"  # type: ignore[call-arg]
    assert speech not in registry.QUEUES.values()  # a queue exists once a capability targets it


async def test_every_registered_queue_builds_a_worker_with_its_capabilities(deps: WorkerDeps) -> None:
    assert set(EXPECTED) == set(registry.QUEUES)
    for name, (workflows, activities) in EXPECTED.items():
        plan = plan_worker(registry.QUEUES[name], deps)
        assert set(plan.workflows) == workflows, name
        assert len(plan.workflows) == len(workflows), name
        assert sorted(a.__qualname__ for a in plan.activities) == sorted(activities), name
        assert plan.task_queue == getattr(deps.settings, f"{name}_task_queue")
        plan.worker(deps.client)  # the SDK accepts the registrations (no duplicate names)
    assert plan_worker(registry.AGENTS, deps).on_start == [
        warm_embedder,
        consolidation_schedule,
        reconciliation_schedule,
    ]
    assert plan_worker(registry.WEBHOOKS, deps).on_start == []
    assert plan_worker(registry.VOICE, deps).on_start == [warm_engines, retention_schedule]
    assert plan_worker(registry.OPTIMIZER, deps).on_start == [recommendation_schedules]
    assert (registry.AGENTS.activity_slots, registry.WEBHOOKS.activity_slots) == (200, 100)


async def test_both_queues_serve_webhook_deliveries(deps: WorkerDeps) -> None:
    """The webhooks worker serves deliveries; the agents worker still serves ones started on its queue."""
    for queue in (registry.WEBHOOKS, registry.AGENTS):
        plan = plan_worker(queue, deps)
        delivery_id = f"dlv_missing_{uuid.uuid4().hex}"
        async with plan.worker(deps.client):
            with pytest.raises(WorkflowFailureError) as failed:
                await deps.client.execute_workflow(
                    WebhookDeliveryWorkflow.run,
                    WebhookDeliveryInput("ten_registry", "", delivery_id),
                    id=delivery_workflow_id("ten_registry", delivery_id),
                    task_queue=plan.task_queue,
                )
        cause = failed.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.type == WEBHOOK_DELIVERY_FAILED, queue.name
        assert f"delivery {delivery_id} not found" in cause.message


async def test_queues_sharing_a_task_queue_are_refused(deps: WorkerDeps, stack: StackProcess) -> None:
    shared = f"test-shared-{uuid.uuid4().hex[:8]}"
    deps.settings = _settings(stack, agents_task_queue=shared, webhooks_task_queue=shared)
    with pytest.raises(ValueError, match="AIMPACT_WEBHOOKS_TASK_QUEUE and AIMPACT_AGENTS_TASK_QUEUE both name"):
        plan_worker(registry.WEBHOOKS, deps)


async def test_unknown_queue_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(registry.UnknownQueueError, match=r"unknown task queue 'nope'.*agents, webhooks"):
        registry.queue("nope")
    with pytest.raises(registry.UnknownQueueError, match="'speech'"):
        await run_worker(Settings(_env_file=None), "speech")  # type: ignore[call-arg]


def test_worker_queues_setting_is_checked_then_validated_against_the_registry(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"worker_queues\n.*'agents' more than once"):
        Settings(_env_file=None, worker_queues=["agents", " agents"])  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="names an empty queue"):
        Settings(_env_file=None, worker_queues=[""])  # type: ignore[call-arg]
    assert registry.queues_to_run(Settings(_env_file=None)) == list(registry.QUEUES.values())  # type: ignore[call-arg]
    only = Settings(_env_file=None, worker_queues=["webhooks"])  # type: ignore[call-arg]
    assert registry.queues_to_run(only) == [registry.WEBHOOKS]
    assert registry.queues_to_run(Settings(_env_file=None, worker_queues=[])) == []  # type: ignore[call-arg]

    unknown = Settings(_env_file=None, home=tmp_path / "home", worker_queues=["agents", "speech"])  # type: ignore[call-arg]
    with pytest.raises(registry.UnknownQueueError, match=r"^AIMPACT_WORKER_QUEUES: unknown task queue 'speech'"):
        registry.queues_to_run(unknown)
    supervisor = Supervisor(unknown)
    assert supervisor.run() == 1
    assert supervisor.children == []
    assert not (tmp_path / "home").exists()  # refused before anything started


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=dict(os.environ, COLUMNS="200", **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_worker_refuses_an_unknown_queue_and_lists_the_registered_ones(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    refused = _cli("worker", "--queue", "nope", AIMPACT_HOME=home)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "unknown task queue 'nope'" in refused.stdout
    assert "(registered queues: agents, webhooks, pipelines, optimizer, voice)" in refused.stdout
    assert "Task queue to serve: agents | webhooks | pipelines | optimizer | voice." in _cli("worker", "--help").stdout


def test_cli_up_refuses_worker_queues_no_capability_serves(tmp_path: Path) -> None:
    up = _cli("up", AIMPACT_HOME=str(tmp_path / "home"), AIMPACT_WORKER_QUEUES='["agents", "nope"]')
    assert up.returncode == 2, up.stdout + up.stderr
    assert "Invalid configuration: AIMPACT_WORKER_QUEUES: unknown task queue 'nope'" in up.stdout
    assert "no capability in workers/registry.py runs on it" in up.stdout
    assert not (tmp_path / "home" / "postgres").exists()
