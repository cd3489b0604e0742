"""The request rate limiter against a real Redis: exact limits, leased blocks, per-tenant windows."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from core.quotas import QuotaExceededError, RequestRateLimiter
from workers.embedded.stack import StackProcess


async def _admitted(limiter: RequestRateLimiter, tenant: str, limit: int, attempts: int) -> int:
    admitted = 0
    for _ in range(attempts):
        try:
            await limiter.hit(tenant, limit)
            admitted += 1
        except QuotaExceededError as exc:
            assert 1 <= exc.retry_after_s <= 60
    return admitted


@pytest.mark.parametrize("limit", [1, 7, 20, 1200])
async def test_two_replicas_never_admit_more_than_the_limit(stack: StackProcess, limit: int) -> None:
    redis = Redis.from_url(stack.redis_url)
    tenant = f"ten_rl_{limit}_{id(redis)}"
    first, second = RequestRateLimiter(redis), RequestRateLimiter(redis)
    admitted = await _admitted(first, tenant, limit, limit) + await _admitted(second, tenant, limit, limit * 2)
    # a window boundary inside the test can only add admissions of the next minute
    assert limit <= admitted <= 2 * limit
    assert await _admitted(RequestRateLimiter(redis), f"{tenant}-other", limit, limit) == limit
    await redis.aclose()
