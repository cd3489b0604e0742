"""The worker registry: which capabilities each task queue's worker serves.

A queue (:class:`Queue`) carries its worker's options: the setting naming its Temporal
task queue, its probe/metrics ports and its activity slots. A capability
(:class:`Capability`) names the queue it runs on; its workflows, the builder of its
activities and its startup hooks live in ``workers/capabilities/<name>.py`` as a
:class:`Slice` called ``SLICE``. ``aimpact worker --queue Q`` runs every capability that
targets ``Q``; ``aimpact up`` runs one worker per queue.

Adding a capability is one :data:`CAPABILITIES` entry plus its module; a capability on a
queue of its own declares that :class:`Queue` beside the others. A queue exists once a
capability targets it. Periodic workflows (Temporal Schedules) are ensured by their
capability's ``on_start`` hooks, each run when its queue's worker starts.

This module stays light (no workflow or activity imports), so the CLI can list the
queues without loading them; :func:`load` imports a capability's module when its
worker is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.settings import Settings
from workers.health import DEFAULT_METRICS_PORT, DEFAULT_SDK_METRICS_PORT, METRICS_PORT_ENV, SDK_METRICS_PORT_ENV

if TYPE_CHECKING:
    from workers.deps import WorkerDeps


@dataclass(frozen=True, kw_only=True)
class Port:
    """A port a worker listens on: the variable that sets it and its default (``0`` disables)."""

    env: str
    default: int


@dataclass(frozen=True, kw_only=True)
class Queue:
    """A task queue with a worker of its own, and that worker's options."""

    name: str
    """What ``aimpact worker --queue`` and ``AIMPACT_WORKER_QUEUES`` call it."""
    setting: str | None = None
    """The ``Settings`` field holding the Temporal task queue's name (``None``: :attr:`name`)."""
    metrics: Port
    """``/metrics``, ``/healthz`` and ``/readyz`` of the worker."""
    sdk_metrics: Port
    """The Temporal SDK's metrics of the worker."""
    activity_slots: int
    """Activities one worker of this queue runs at once."""

    def task_queue(self, settings: Settings) -> str:
        """The Temporal task queue this worker polls."""
        return str(getattr(settings, self.setting)) if self.setting else self.name

    @property
    def variable(self) -> str:
        """The environment variable naming the Temporal task queue (for messages)."""
        return f"AIMPACT_{(self.setting or self.name).upper()}"


ActivityBuilder = Callable[["WorkerDeps"], Sequence[Callable[..., Any]]]
"""Builds a capability's activity callables from the worker's shared dependencies."""
StartHook = Callable[["WorkerDeps"], Awaitable[None]]
"""Runs once when a worker serving the capability starts, before it polls."""


@dataclass(frozen=True, kw_only=True)
class Slice:
    """A capability's part of a worker: ``SLICE`` in ``workers/capabilities/<name>.py``."""

    workflows: Sequence[type]
    activities: ActivityBuilder
    on_start: Sequence[StartHook] = ()


@dataclass(frozen=True, kw_only=True)
class Capability:
    """A registry entry: a capability and the queue its workflows run on."""

    name: str
    """Also the module of its :class:`Slice`: ``workers/capabilities/<name>.py``."""
    queue: Queue
    legacy_queues: tuple[Queue, ...] = ()
    """Queues it ran on before it had its own; their workers keep serving it for the workflows started there."""

    @property
    def module(self) -> str:
        """Dotted path of the module holding its :class:`Slice`."""
        return f"workers.capabilities.{self.name}"

    def serves(self, queue: Queue) -> bool:
        """Whether the worker of ``queue`` runs this capability."""
        return queue == self.queue or queue in self.legacy_queues


AGENTS = Queue(
    name="agents",
    setting="agents_task_queue",
    metrics=Port(env=METRICS_PORT_ENV, default=DEFAULT_METRICS_PORT),
    sdk_metrics=Port(env=SDK_METRICS_PORT_ENV, default=DEFAULT_SDK_METRICS_PORT),
    activity_slots=200,
)
WEBHOOKS = Queue(
    name="webhooks",
    setting="webhooks_task_queue",
    metrics=Port(env="AIMPACT_WEBHOOKS_WORKER_METRICS_PORT", default=9466),
    sdk_metrics=Port(env="AIMPACT_WEBHOOKS_WORKER_SDK_METRICS_PORT", default=9467),
    activity_slots=100,  # each delivery attempt waits on a receiver for up to 10 s
)
PIPELINES = Queue(
    name="pipelines",
    setting="pipelines_task_queue",
    metrics=Port(env="AIMPACT_PIPELINES_WORKER_METRICS_PORT", default=9470),
    sdk_metrics=Port(env="AIMPACT_PIPELINES_WORKER_SDK_METRICS_PORT", default=9471),
    activity_slots=200,
)
OPTIMIZER = Queue(
    name="optimizer",
    setting="optimizer_task_queue",
    metrics=Port(env="AIMPACT_OPTIMIZER_WORKER_METRICS_PORT", default=9472),
    sdk_metrics=Port(env="AIMPACT_OPTIMIZER_WORKER_SDK_METRICS_PORT", default=9473),
    activity_slots=50,  # each evaluation holds model calls for a batch of examples
)

VOICE = Queue(
    name="voice",
    setting="voice_task_queue",
    metrics=Port(env="AIMPACT_VOICE_WORKER_METRICS_PORT", default=9468),
    sdk_metrics=Port(env="AIMPACT_VOICE_WORKER_SDK_METRICS_PORT", default=9469),
    activity_slots=10,  # speech engines run one call at a time per process; the rest wait, heartbeating
)

CAPABILITIES: tuple[Capability, ...] = (
    Capability(name="agent_run", queue=AGENTS),
    Capability(name="memory", queue=AGENTS),
    Capability(name="run_reconciliation", queue=AGENTS),
    # Deliveries have their own queue, so a tenant whose receivers hang or fail fills that
    # one and never the runs'; the agents worker still serves the ones started on it before.
    Capability(name="webhooks", queue=WEBHOOKS, legacy_queues=(AGENTS,)),
    # Pipeline runs (their tool steps, projection writes) have a queue of their own; their agent
    # steps are child AgentRunWorkflows on the agents queue.
    Capability(name="pipelines", queue=PIPELINES),
    # Optimizer runs evaluate many (configuration, example) pairs: a queue of their own keeps them
    # from delaying live runs.
    Capability(name="optimizer", queue=OPTIMIZER),
    # Voice sessions hold the speech engines (CPU-bound, a model in memory): a queue of their own; each
    # turn's agent run is a child AgentRunWorkflow on the agents queue.
    Capability(name="voice", queue=VOICE),
    # Recommendation passes are offline analysis like the optimizer's, and start optimizer runs and replays.
    Capability(name="recommend", queue=OPTIMIZER),
)

QUEUES: dict[str, Queue] = {c.queue.name: c.queue for c in CAPABILITIES}
"""Every queue a capability targets, by name, in registry order."""


class UnknownQueueError(ValueError):
    """A queue name no capability registers."""

    def __init__(self, name: str, *, variable: str | None = None):
        prefix = f"{variable}: " if variable else ""
        super().__init__(
            f"{prefix}unknown task queue {name!r}: no capability in workers/registry.py runs on it"
            f" (registered queues: {', '.join(QUEUES)})"
        )
        self.name = name


def queue(name: str) -> Queue:
    """The registered queue ``name``; :class:`UnknownQueueError` naming the known ones otherwise."""
    try:
        return QUEUES[name]
    except KeyError:
        raise UnknownQueueError(name) from None


def queues_to_run(settings: Settings) -> list[Queue]:
    """The queues ``aimpact up`` starts a worker for: ``worker_queues``, else every registered one.

    Raises:
        UnknownQueueError: ``AIMPACT_WORKER_QUEUES`` names a queue no capability targets.
    """
    if settings.worker_queues is None:
        return list(QUEUES.values())
    unknown = [name for name in settings.worker_queues if name not in QUEUES]
    if unknown:
        raise UnknownQueueError(unknown[0], variable="AIMPACT_WORKER_QUEUES")
    return [QUEUES[name] for name in settings.worker_queues]


def capabilities_on(target: Queue) -> list[Capability]:
    """The capabilities the worker of ``target`` runs, in registry order."""
    return [c for c in CAPABILITIES if c.serves(target)]


def load(capability: Capability) -> Slice:
    """Import the capability's module and return its ``SLICE``."""
    found = getattr(importlib.import_module(capability.module), "SLICE", None)
    if not isinstance(found, Slice):
        raise TypeError(f"{capability.module} defines no SLICE of type workers.registry.Slice")
    return found
