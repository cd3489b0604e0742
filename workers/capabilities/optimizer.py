"""Optimizer runs and counterfactual replays on the optimizer queue: ``OptimizerWorkflow``, ``ReplayWorkflow``
and their activities (evaluations, proposals, replayed runs, projection writes, promotion), with the same
model access and tools as agent runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from activities.candidates import CandidateAccess
from activities.model_access import ModelAccess
from activities.optimizer import OptimizerActivities
from activities.optimizer_schedule import ScheduledOptimizerActivities
from activities.replay import ReplayActivities
from core.db.projection import RunProjection
from core.secrets import SecretReader
from workers.capabilities.agent_run import tool_resolver
from workers.deps import WorkerDeps
from workers.model_access import egress_check, model_providers
from workers.registry import Slice
from workflows.optimizer import OptimizerWorkflow
from workflows.replay import ReplayWorkflow


def _access(deps: WorkerDeps) -> CandidateAccess:
    """Model access over the worker's providers (behind the egress check) and secrets, and the tenant's tools."""
    models = ModelAccess(
        RunProjection(deps.engine),
        model_providers(deps.settings),
        secrets=SecretReader(deps.engine, deps.keyring),
        egress=egress_check(deps.sessions, deps.platform_allowlist),
    )
    return CandidateAccess(models, tool_resolver(deps.engine, deps.keyring, None, deps.settings))


def build_optimizer_activities(deps: WorkerDeps) -> OptimizerActivities:
    """The optimizer's activities over the worker's database, model access and tools."""
    access = _access(deps)
    return OptimizerActivities(deps.engine, access.models, access.tools, agent_max_steps=deps.settings.agent_max_steps)


def build_replay_activities(deps: WorkerDeps) -> ReplayActivities:
    """The replay's activities over the worker's database, model access and tools' schemas."""
    return ReplayActivities(deps.engine, _access(deps), agent_max_steps=deps.settings.agent_max_steps)


def _activities(deps: WorkerDeps) -> Sequence[Callable[..., Any]]:
    scheduled = ScheduledOptimizerActivities(deps.engine, deps.settings)
    return [*build_optimizer_activities(deps).all(), *build_replay_activities(deps).all(), *scheduled.all()]


SLICE = Slice(workflows=[OptimizerWorkflow, ReplayWorkflow], activities=_activities)
