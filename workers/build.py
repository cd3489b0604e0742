"""Builds the worker of a queue from the registry entries that target it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from workers.deps import WorkerDeps
from workers.registry import QUEUES, Queue, StartHook, capabilities_on, load

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
    "celpy",
    "lark",
    "re2",
    "pendulum",
)
"""Libraries loaded once outside the workflow sandbox: those activities use (workflows never call them);
CEL (``celpy`` and what it loads), which pipeline workflows call: its grammar file is read at import, which the
sandbox refuses; evaluation is deterministic (``core.pipelines.expressions`` refuses ``timestamp("now")``); and
``numpy``, which the optimizer workflow's statistics call (``core.optimizer.stats``: seeded, so deterministic),
and whose import sets environment variables, which the sandbox refuses."""


def make_worker(
    client: Client,
    task_queue: str,
    *,
    workflows: Sequence[type],
    activities: Sequence[Callable[..., Any]],
    activity_slots: int,
) -> Worker:
    """A sandboxed worker polling ``task_queue`` for ``workflows`` and ``activities``."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=workflows,
        activities=activities,
        max_concurrent_activities=activity_slots,
        workflow_runner=sandbox_runner(),
    )


def sandbox_runner() -> SandboxedWorkflowRunner:
    """The workflow sandbox every worker (and every replay of a recorded history) runs workflows in."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


@dataclass(frozen=True, kw_only=True)
class WorkerPlan:
    """What the worker of one queue registers, and the startup hooks of its capabilities."""

    queue: Queue
    task_queue: str
    workflows: list[type]
    activities: list[Callable[..., Any]]
    on_start: list[StartHook]

    def worker(self, client: Client) -> Worker:
        """The worker (not running yet)."""
        return make_worker(
            client,
            self.task_queue,
            workflows=self.workflows,
            activities=self.activities,
            activity_slots=self.queue.activity_slots,
        )

    async def run_start_hooks(self, deps: WorkerDeps) -> None:
        """Run every capability's ``on_start`` hook, in registry order."""
        for hook in self.on_start:
            await hook(deps)


def plan_worker(target: Queue, deps: WorkerDeps) -> WorkerPlan:
    """The worker of ``target``: every capability serving it, activities built from ``deps``.

    Raises:
        ValueError: Another registered queue polls the same Temporal task queue.
    """
    task_queue = target.task_queue(deps.settings)
    for other in QUEUES.values():
        if other != target and other.task_queue(deps.settings) == task_queue:
            raise ValueError(
                f"{target.variable} and {other.variable} both name the task queue {task_queue!r};"
                " each queue's worker needs a task queue of its own"
            )
    slices = [load(capability) for capability in capabilities_on(target)]
    return WorkerPlan(
        queue=target,
        task_queue=task_queue,
        workflows=[workflow for part in slices for workflow in part.workflows],
        activities=[activity for part in slices for activity in part.activities(deps)],
        on_start=[hook for part in slices for hook in part.on_start],
    )
