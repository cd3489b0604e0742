"""The cache bus on a Redis of its own: invalidations reach every process, and a process
that cannot hear them trusts no cached entry until it hears them again."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from redis.asyncio import Redis

from api.cache_bus import CacheBus, UnknownCacheError, subscriber_client
from api.ttl_cache import TtlCache
from tests.support.runs import until
from workers.embedded import redis as embedded_redis
from workers.embedded.process import ManagedProcess


@pytest.fixture
def redis_dir() -> Iterator[Path]:
    """A short directory (a unix socket path has at most 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="bus-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_redis(data_dir: Path) -> ManagedProcess:
    """A Redis of this test only, on a unix socket in ``data_dir``."""
    server = ManagedProcess(embedded_redis.spec(data_dir, data_dir / "redis.log"))
    server.start()
    server.wait_healthy()
    return server


@asynccontextmanager
async def process(url: str) -> AsyncIterator[tuple[CacheBus, TtlCache[str]]]:
    """What one API process holds: its bus and one cache named ``principals``."""
    publisher = Redis.from_url(url)
    cache: TtlCache[str] = TtlCache(ttl_s=60)
    bus = CacheBus(publisher=publisher, subscriber=subscriber_client(url), caches={"principals": cache})
    bus.start()
    try:
        yield bus, cache
    finally:
        await bus.stop()
        await publisher.aclose()


def test_a_value_read_before_a_clear_is_not_kept_after_it() -> None:
    cache: TtlCache[str] = TtlCache(ttl_s=60)
    assert cache.get("key") is None  # request A misses and reads the database ...
    a_read_at = cache.generation
    cache.clear()  # ... while the row changes and the cache is cleared
    assert cache.get("key") is None  # request B misses too, after the clear
    b_read_at = cache.generation
    cache.put("key", "old value", a_read_at)  # A's read predates the clear: dropped
    assert cache.get("key") is None
    cache.put("key", "new value", b_read_at)  # B's read is kept
    assert cache.get("key") == "new value"
    cache.put("key", "old value", a_read_at)  # a late A cannot overwrite it either
    assert cache.get("key") == "new value"

    cache.suspend()
    assert cache.get("key") is None
    cache.put("key", "anything", cache.generation)
    assert cache.get("key") is None
    cache.resume()
    assert cache.get("key") is None
    cache.put("key", "again", cache.generation)
    assert cache.get("key") == "again"


async def test_an_invalidation_clears_every_process_and_an_unheard_bus_trusts_nothing(redis_dir: Path) -> None:
    server = start_redis(redis_dir)
    url = f"unix://{embedded_redis.socket_path(redis_dir)}"
    try:
        async with process(url) as (bus_a, cache_a), process(url) as (bus_b, cache_b):
            assert cache_b.suspended  # nothing is trusted before the subscription is confirmed
            assert await until(lambda: bus_a.subscribed.is_set() and bus_b.subscribed.is_set(), 10)
            for cache in (cache_a, cache_b):
                cache.put("key", "cached", cache.generation)
            with pytest.raises(UnknownCacheError):
                await bus_a.invalidate("principal")

            await bus_a.invalidate("principals")
            assert cache_a.get("key") is None  # the caller's own copy at once
            assert await until(lambda: cache_b.get("key") is None, 5)

            cache_b.put("key", "cached", cache_b.generation)
            server.stop()
            assert await until(lambda: cache_b.suspended, 10)
            cache_b.put("key", "read while Redis is down", cache_b.generation)
            assert cache_b.get("key") is None
            await bus_a.invalidate("principals")  # a publish that fails is logged, not raised

            server.start()
            server.wait_healthy()
            assert await until(lambda: bus_b.subscribed.is_set(), 15)
            assert not cache_b.suspended
            assert cache_b.get("key") is None
            cache_b.put("key", "cached", cache_b.generation)
            await asyncio.sleep(0)
            assert cache_b.get("key") == "cached"
    finally:
        server.stop()
