"""The request rate limiter against a real Redis: exact limits, leased blocks, per-tenant windows."""

from __future__ import annotations

import asyncio

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


async def test_a_burst_arriving_together_reserves_one_block_at_a_time(stack: StackProcess) -> None:
    redis = Redis.from_url(stack.redis_url)
    tenant = f"ten_burst_{id(redis)}"
    limiter = RequestRateLimiter(redis)
    outcomes = await asyncio.gather(*(limiter.hit(tenant, 1200) for _ in range(300)), return_exceptions=True)
    assert [o for o in outcomes if o is not None] == []  # 300 of 1200: nobody refused
    reserved = [int(await redis.get(key)) async for key in redis.scan_iter(f"aimpact:rl:{tenant}:*")]
    assert sum(reserved) <= 300 + 2 * 60  # whole blocks of 60, at most one unspent per minute touched
    await redis.aclose()


async def test_once_the_minute_is_used_up_refusals_need_no_redis(stack: StackProcess) -> None:
    redis = Redis.from_url(stack.redis_url)
    tenant = f"ten_spent_{id(redis)}"
    limiter = RequestRateLimiter(redis)
    assert await _admitted(limiter, tenant, 5, 5) == 5
    before = [int(await redis.get(key)) async for key in redis.scan_iter(f"aimpact:rl:{tenant}:*")]
    assert await _admitted(limiter, tenant, 5, 50) <= 5
    after = [int(await redis.get(key)) async for key in redis.scan_iter(f"aimpact:rl:{tenant}:*")]
    # one refusal reached Redis, not fifty (a minute boundary in between adds at most 5 grants and a refusal)
    assert sum(after) - sum(before) <= 7
    await redis.aclose()
