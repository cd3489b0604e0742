"""Pipeline runs on the pipelines queue: ``PipelineWorkflow``, the ``PipelineMapChunkWorkflow`` children of its
large maps, and their activities (tools as agent runs see them, the first activity of scheduled runs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from activities.pipeline import PipelineActivities
from activities.pipeline_schedule import ScheduledRunActivities
from core.db.projection import RunProjection
from core.events import RunEventLog
from core.pipelines.store import PipelineRunStore
from core.quotas import check_tenant_run_quotas
from workers.capabilities.agent_run import tool_resolver
from workers.capabilities.webhooks import webhook_notifier
from workers.deps import WorkerDeps
from workers.registry import Slice
from workflows.pipeline import PipelineWorkflow
from workflows.pipeline_map import PipelineMapChunkWorkflow


def build_pipeline_activities(deps: WorkerDeps) -> PipelineActivities:
    """The activities over the worker's database, event log, tool resolver, webhooks and settings."""
    return PipelineActivities(
        PipelineRunStore(deps.engine),
        RunProjection(deps.engine),
        tool_resolver(deps.engine, deps.keyring, deps.memory, deps.settings),
        events=RunEventLog(deps.redis),
        agents_task_queue=deps.settings.agents_task_queue,
        quota_check=partial(check_tenant_run_quotas, deps.engine, deps.settings),
        notify=webhook_notifier(deps.engine, deps.settings),
        webhooks_task_queue=deps.settings.webhooks_task_queue,
        agent_max_steps=deps.settings.agent_max_steps,
        heartbeat_timeout_s=deps.settings.activity_heartbeat_timeout_s,
    )


def _activities(deps: WorkerDeps) -> Sequence[Callable[..., Any]]:
    scheduled = ScheduledRunActivities(
        deps.engine, quota_check=partial(check_tenant_run_quotas, deps.engine, deps.settings)
    )
    return [*build_pipeline_activities(deps).all(), *scheduled.all()]


SLICE = Slice(workflows=[PipelineWorkflow, PipelineMapChunkWorkflow], activities=_activities)
