"""What capability builders share in one worker process: settings, clients and services built once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from core.crypto import Keyring
from core.db.engine import make_sessionmaker
from core.egress import parse_allowlist
from core.memory.embedders import Embedder, embedder_from_settings
from core.memory.service import MemoryService
from core.memory.store import MemoryStore
from core.settings import Settings

T = TypeVar("T")


@dataclass
class WorkerDeps:
    """Shared dependencies of one worker; derived services are built on first use and then reused."""

    settings: Settings
    client: Client
    engine: AsyncEngine
    redis: Redis
    background: set[asyncio.Task[None]] = field(default_factory=set, repr=False)
    _shared: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    @cached_property
    def keyring(self) -> Keyring:
        """Decrypts tenant secrets and webhook secrets."""
        return Keyring.from_setting(self.settings.encryption_keyring)

    @cached_property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """Sessions of the app database."""
        return make_sessionmaker(self.engine)

    @cached_property
    def platform_allowlist(self) -> list[str]:
        """Entries of ``AIMPACT_EGRESS_ALLOWLIST``: hosts every tenant may reach."""
        return parse_allowlist(self.settings.egress_allowlist)

    @cached_property
    def embedder(self) -> Embedder:
        """The configured memory embedder."""
        return embedder_from_settings(self.settings)

    @cached_property
    def memory(self) -> MemoryService:
        """The memory service: the store, the configured embedder, ingestion on the agents queue."""
        return MemoryService(MemoryStore(self.engine), self.embedder, self.client, self.settings.agents_task_queue)

    def shared(self, key: str, build: Callable[[], T]) -> T:
        """The service ``key`` of a capability, built by ``build`` on first use (its activities and hooks share it)."""
        if key not in self._shared:
            self._shared[key] = build()
        found: T = self._shared[key]
        return found

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background for the life of the worker (a reference is kept)."""
        task = asyncio.create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
