"""Process-wide resources of the API, created in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from api.cache_bus import CacheBus
from api.streams import StreamLimits
from api.ttl_cache import TtlCache
from core.auth.jwt_keys import JwtService
from core.auth.refresh import RefreshTokens
from core.auth.throttle import LoginThrottle
from core.crypto import Keyring
from core.db.reads import AgentRef, ReadPool
from core.event_hub import RunEventHub
from core.events import RunEventLog
from core.memory.service import MemoryService
from core.quotas import RequestRateLimiter
from core.settings import Settings
from core.voice.speech import SpeechEngines, engines_for


@dataclass
class AppState:
    """Everything a request may need, built once at startup."""

    settings: Settings
    engine: AsyncEngine
    reads: ReadPool
    """The hot reads' pool (runs, steps, thread messages): plain SQL, no unit of work."""
    sessions: async_sessionmaker[AsyncSession]
    temporal: Client
    redis: Redis
    events: RunEventLog
    event_hub: RunEventHub
    stream_limits: StreamLimits
    principals: TtlCache[Any]
    """The ``principals`` cache of ``caches`` (verified API keys, token users, tenant quotas)."""
    agents: TtlCache[AgentRef]
    """The ``agents`` cache of ``caches`` (current version and archival of each agent, by tenant and id)."""
    caches: CacheBus
    """Every named cache; ``await caches.invalidate(name)`` clears one in every API process."""
    jwt: JwtService
    refresh_tokens: RefreshTokens
    login_throttle: LoginThrottle
    rate_limiter: RequestRateLimiter
    keyring: Keyring
    memory: MemoryService
    speech: SpeechEngines | None = None
    """The speech engines of voice streams (``api.voice_stream``), built by the first stream of this process."""

    def speech_engines(self) -> SpeechEngines:
        """This process's speech engines (models load on their first use, in a thread)."""
        if self.speech is None:
            self.speech = engines_for(self.settings)
        return self.speech
