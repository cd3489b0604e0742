"""Activities of ``AgentRunWorkflow``: begin, turns, model steps, tool steps, approvals, finish.

Each activity writes its part of the run's read projection and appends to the
conversation thread with keyed, idempotent writes, so a retry or a replay after
a worker crash updates the same rows instead of adding new ones.

``AgentRunActivities`` is built from one mixin per seam (``lifecycle``,
``model_step``, ``tool_step``, ``approvals``) over ``base``; ``steps`` holds the
step events. The memory extraction of a finished turn lives in ``activities.memory``.
"""

from activities.agent_run.approvals import ApprovalActivities
from activities.agent_run.base import EventNotifier
from activities.agent_run.lifecycle import LifecycleActivities
from activities.agent_run.model_step import ModelStepActivities
from activities.agent_run.steps import PREVIEW_CHARS, announce_step, step_event
from activities.agent_run.tool_step import ToolStepActivities, child_run_id
from activities.model_access import EgressCheck, SecretResolver


class AgentRunActivities(LifecycleActivities, ModelStepActivities, ToolStepActivities, ApprovalActivities):
    """Activities with their dependencies injected by the worker."""


__all__ = [
    "PREVIEW_CHARS",
    "AgentRunActivities",
    "EgressCheck",
    "EventNotifier",
    "SecretResolver",
    "announce_step",
    "child_run_id",
    "step_event",
]
