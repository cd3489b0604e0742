"""Per-tenant quotas: requests per minute (Redis), concurrent runs and tokens per day (database), and the live
optimizer runs and counterfactual replays a tenant may have queued or running at once (database, :class:`LiveCap`)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from datetime import time as dtime
from typing import Any

from pydantic import Field
from redis.asyncio import Redis
from sqlalchemy import bindparam, func, or_
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.contracts.agent_run import RunStatus
from core.db.engine import make_sessionmaker
from core.db.models import Run, Tenant, utcnow
from core.settings import Settings
from core.validation import CleanModel


class QuotaSpec(CleanModel):
    """Quotas as stored on the tenant and edited by the platform admin."""

    requests_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    concurrent_runs: int | None = Field(default=None, ge=1, le=100_000)
    tokens_per_day: int | None = Field(default=None, ge=1, le=10**12)
    concurrent_optimizer_runs: int | None = Field(default=None, ge=1, le=10_000)
    concurrent_replays: int | None = Field(default=None, ge=1, le=10_000)


class QuotaExceededError(Exception):
    """Over quota; ``retry_after_s`` goes into the ``Retry-After`` header."""

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class LiveCap:
    """How many rows of one kind (``queued`` or ``running``) a tenant may have at once, and how a refusal names it."""

    limit: int
    what: str
    """The rows, plural: ``optimizer runs``."""
    quota: str
    """The tenant quota that sets ``limit``: ``concurrent_optimizer_runs``."""
    setting: str
    """The platform default: ``AIMPACT_OPTIMIZER_MAX_LIVE_RUNS``."""
    retry_after_s: int = 30

    def refusal(self, live: int) -> QuotaExceededError:
        """The refusal of one more row while ``live`` are queued or running."""
        return QuotaExceededError(
            f"{live} {self.what} queued or running; the limit is {self.limit}"
            f" (the tenant's quotas.{self.quota}, else {self.setting})",
            self.retry_after_s,
        )


@dataclass(frozen=True)
class Quotas:
    """Effective quotas of a tenant (stored values over platform defaults)."""

    requests_per_minute: int
    concurrent_runs: int
    tokens_per_day: int
    concurrent_optimizer_runs: int
    concurrent_replays: int

    @classmethod
    def of(cls, stored: dict[str, Any], settings: Settings) -> Quotas:
        """Stored quotas, each falling back to the platform default."""
        spec = QuotaSpec.model_validate(stored or {})
        return cls(
            requests_per_minute=spec.requests_per_minute or settings.default_requests_per_minute,
            concurrent_runs=spec.concurrent_runs or settings.default_concurrent_runs,
            tokens_per_day=spec.tokens_per_day or settings.default_tokens_per_day,
            concurrent_optimizer_runs=spec.concurrent_optimizer_runs or settings.optimizer_max_live_runs,
            concurrent_replays=spec.concurrent_replays or settings.replay_max_live,
        )

    @property
    def optimizer_runs(self) -> LiveCap:
        """The bound on the tenant's live optimizer runs."""
        return LiveCap(
            self.concurrent_optimizer_runs,
            "optimizer runs",
            "concurrent_optimizer_runs",
            "AIMPACT_OPTIMIZER_MAX_LIVE_RUNS",
        )

    @property
    def replays(self) -> LiveCap:
        """The bound on the tenant's live counterfactual replays."""
        return LiveCap(self.concurrent_replays, "replays", "concurrent_replays", "AIMPACT_REPLAY_MAX_LIVE")


@dataclass
class _Lease:
    window: int
    remaining: int
    exhausted_at_limit: int | None = None
    """The limit at which Redis refused a block this minute (the count only grows within a minute)."""


def _over(limit: int, now: float) -> QuotaExceededError:
    """The refusal of a request over ``limit``, retryable when the minute ends."""
    return QuotaExceededError(
        f"over the quota of {limit} requests per minute", retry_after_s=max(1, 60 - int(now % 60))
    )


class RequestRateLimiter:
    """Fixed one-minute windows per tenant, counted in Redis across API replicas.

    Each replica reserves a block of the minute's quota at a time (up to 5% of
    it) with one ``INCRBY`` and spends it locally, so most requests cost no
    Redis round trip. Grants never exceed the limit; at most one unspent block
    per replica goes unused when the minute ends. A replica refills one block per
    tenant at a time, and once Redis refuses, it refuses locally until the minute ends.
    """

    def __init__(self, redis: Redis):
        self._redis = redis
        self._leases: dict[str, _Lease] = {}
        self._refills: dict[str, asyncio.Lock] = {}

    def _spend(self, tenant_id: str, window: int) -> bool:
        lease = self._leases.get(tenant_id)
        if lease is not None and lease.window == window and lease.remaining > 0:
            lease.remaining -= 1
            return True
        return False

    async def hit(self, tenant_id: str, limit: int) -> None:
        """Count a request; ``QuotaExceededError`` when over ``limit`` in this minute."""
        now = time.time()
        window = int(now // 60)
        if self._spend(tenant_id, window):
            return
        self._refuse_if_exhausted(tenant_id, limit, now, window)
        # One refill per tenant at a time: a burst arriving together must not reserve a block each.
        async with self._refills.setdefault(tenant_id, asyncio.Lock()):
            if self._spend(tenant_id, window):
                return
            self._refuse_if_exhausted(tenant_id, limit, now, window)
            await self._refill(tenant_id, limit, now, window)

    def _refuse_if_exhausted(self, tenant_id: str, limit: int, now: float, window: int) -> None:
        """Refuse without a Redis round trip once this minute's quota is known to be used up."""
        lease = self._leases.get(tenant_id)
        if lease is not None and lease.window == window and lease.exhausted_at_limit == limit:
            raise _over(limit, now)

    async def _refill(self, tenant_id: str, limit: int, now: float, window: int) -> None:
        """Reserve the next block of this minute's quota in Redis and spend one request of it."""
        block = max(1, min(limit // 20, 100))
        key = f"aimpact:rl:{tenant_id}:{window}"
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incrby(key, block)
            pipe.expire(key, 120)
            count, _ = await pipe.execute()
        granted = min(block, limit - (int(count) - block))
        if granted <= 0:
            self._leases[tenant_id] = _Lease(window=window, remaining=0, exhausted_at_limit=limit)
            raise _over(limit, now)
        self._leases[tenant_id] = _Lease(window=window, remaining=granted - 1)


_RUN_USAGE = select(
    func.count().filter(col(Run.status).in_(sorted(RunStatus.ACTIVE))),
    func.coalesce(func.sum(Run.input_tokens + Run.output_tokens).filter(col(Run.created_at) >= bindparam("since")), 0),
).where(
    col(Run.tenant_id) == bindparam("tenant_id"),
    or_(col(Run.status).in_(sorted(RunStatus.ACTIVE)), col(Run.created_at) >= bindparam("since")),
)
"""Active runs and today's tokens of a tenant, in one statement (built once)."""


async def check_run_quotas(session: AsyncSession, tenant_id: str, quotas: Quotas) -> None:
    """``QuotaExceededError`` if the tenant is at its concurrent-run or daily-token quota."""
    now = utcnow()
    midnight = datetime.combine(now.date(), dtime.min, tzinfo=now.tzinfo)
    active, used = (await session.execute(_RUN_USAGE, {"tenant_id": tenant_id, "since": midnight})).one()
    if active >= quotas.concurrent_runs:
        raise QuotaExceededError(f"{active} runs active; quota is {quotas.concurrent_runs}", retry_after_s=5)
    if used >= quotas.tokens_per_day:
        seconds_left = int(86_400 - (now - midnight).total_seconds())
        raise QuotaExceededError(f"{used} tokens used today; quota is {quotas.tokens_per_day}", seconds_left)


async def check_tenant_run_quotas(engine: AsyncEngine, settings: Settings, tenant_id: str) -> None:
    """:func:`check_run_quotas` with the tenant's stored quotas, for runs started outside the API (pipeline steps)."""
    async with make_sessionmaker(engine)() as session:
        await check_run_quotas(session, tenant_id, await stored_quotas(session, settings, tenant_id))


async def stored_quotas(session: AsyncSession, settings: Settings, tenant_id: str) -> Quotas:
    """The tenant's quotas as stored now (no cache: for workers)."""
    tenant = await session.get(Tenant, tenant_id)
    return Quotas.of(tenant.quotas if tenant else {}, settings)
