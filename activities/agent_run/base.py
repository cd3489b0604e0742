"""What the agent-run activity mixins share: the injected dependencies and the run's identity and steps."""

from __future__ import annotations

from typing import Any, Protocol

from activities.agent_run.steps import announce_step
from activities.model_access import EgressCheck, ModelAccess, SecretResolver
from core.blobs import BlobStore
from core.db.projection import RunIdentity, RunProjection, StepRecord
from core.events import RunEventLog
from core.llm.base import ProviderRegistry
from core.memory.context import ThreadContext
from core.memory.service import MemoryService
from core.threads import ThreadStore
from core.tools.base import ToolResolver


class EventNotifier(Protocol):
    """Queues webhook deliveries for a run event; returns the deliveries to start."""

    async def __call__(self, tenant_id: str, event_id: str, event_type: str, data: dict[str, Any]) -> list[str]: ...


class AgentRunBase:
    """Dependencies injected by the worker, and helpers of every step."""

    def __init__(
        self,
        *,
        projection: RunProjection,
        events: RunEventLog,
        providers: ProviderRegistry,
        tools: ToolResolver,
        threads: ThreadStore,
        blobs: BlobStore,
        secrets: SecretResolver | None = None,
        notify: EventNotifier | None = None,
        egress: EgressCheck | None = None,
        context: ThreadContext | None = None,
        memory: MemoryService | None = None,
        webhooks_task_queue: str = "",
    ):
        self._projection = projection
        self._webhooks_task_queue = webhooks_task_queue
        self._events = events
        self._models = ModelAccess(projection, providers, secrets=secrets, egress=egress)
        self._tools = tools
        self._threads = threads
        self._blobs = blobs
        self._notify = notify
        self._context = context or ThreadContext(projection.engine)
        self._memory = memory
        self._identities: dict[str, RunIdentity | None] = {}
        self._recalls: dict[tuple[str, str, str], tuple[float, str | None, list[str]]] = {}

    async def _identity(self, tenant_id: str, run_id: str) -> RunIdentity | None:
        if run_id not in self._identities:  # a run's subject and agent version never change
            if len(self._identities) > 10_000:
                self._identities.clear()
            self._identities[run_id] = await self._projection.identity(tenant_id, run_id)
        return self._identities[run_id]

    async def _subject(self, tenant_id: str, run_id: str) -> str | None:
        identity = await self._identity(tenant_id, run_id)
        return identity.subject if identity is not None else None

    async def _record(self, tenant_id: str, run_id: str, step: StepRecord) -> None:
        """Write the step to the projection and announce it on the run's event stream."""
        await self._projection.record_step(tenant_id, run_id, step)
        await self._announce(tenant_id, run_id, step)

    async def _announce(self, tenant_id: str, run_id: str, step: StepRecord) -> None:
        """Publish the step's start or end on the run's event stream."""
        await announce_step(self._events, tenant_id, run_id, step)

    async def _deliveries(
        self, tenant_id: str, run_id: str, event_type: str, key: str, data: dict[str, Any]
    ) -> list[str]:
        if self._notify is None:
            return []
        return await self._notify(tenant_id, f"{run_id}:{event_type}:{key}", event_type, {"run_id": run_id} | data)
