"""Optimizer runs on the optimizer queue: ``OptimizerWorkflow`` and its activities (evaluations, proposals,
projection writes, promotion), with the same model access and tools as agent runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from activities.model_access import ModelAccess
from activities.optimizer import OptimizerActivities
from activities.optimizer_schedule import ScheduledOptimizerActivities
from core.db.projection import RunProjection
from core.secrets import SecretReader
from workers.capabilities.agent_run import tool_resolver
from workers.deps import WorkerDeps
from workers.model_access import egress_check, model_providers
from workers.registry import Slice
from workflows.optimizer import OptimizerWorkflow


def build_optimizer_activities(deps: WorkerDeps) -> OptimizerActivities:
    """The activities over the worker's database, providers (behind the egress check), secrets and tools."""
    models = ModelAccess(
        RunProjection(deps.engine),
        model_providers(deps.settings),
        secrets=SecretReader(deps.engine, deps.keyring),
        egress=egress_check(deps.sessions, deps.platform_allowlist),
    )
    tools = tool_resolver(deps.engine, deps.keyring, None, deps.settings)
    return OptimizerActivities(deps.engine, models, tools, agent_max_steps=deps.settings.agent_max_steps)


def _activities(deps: WorkerDeps) -> Sequence[Callable[..., Any]]:
    scheduled = ScheduledOptimizerActivities(
        deps.engine,
        max_examples=deps.settings.dataset_max_examples,
        datasets_per_tenant=deps.settings.datasets_per_tenant,
    )
    return [*build_optimizer_activities(deps).all(), *scheduled.all()]


SLICE = Slice(workflows=[OptimizerWorkflow], activities=_activities)
