"""Named in-process caches that every API process clears together, over Redis pub/sub.

Each API process keeps its own :class:`~api.ttl_cache.TtlCache` copies (credentials,
quotas, ...). A route that changes the data behind one calls
``await state.caches.invalidate(name)``: the local copy is cleared at once and the
name is published on :data:`CHANNEL`, so every other process clears its copy as soon
as the message arrives (milliseconds, well within the one second promised).

A process that cannot hear the channel must not trust its copies: the caches stay
suspended (every lookup goes to the database) from startup until the subscription
is confirmed, and again from the moment the subscription fails (or Redis leaves
pings unanswered for ``_SILENT_S``) until it is back; each (re)subscription starts
with empty caches, so a message missed meanwhile costs nothing. A publish that
fails is logged; the change is already committed and the other processes' copies
then expire within their TTL.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from api.ttl_cache import TtlCache

log = structlog.get_logger(__name__)

CHANNEL = "aimpact:cache-invalidate"
"""Redis pub/sub channel whose messages are cache names to clear."""
PRINCIPALS = "principals"
"""Verified API keys, token users and tenant quotas (``api.deps``)."""
AGENTS = "agents"
"""Each agent's current version and whether it is archived (``api.routes.runs``: starting a run)."""
_POLL_S = 1.0
_PING_S = 5.0
_SILENT_S = 3 * _PING_S
_MAX_BACKOFF_S = 5.0


def subscriber_client(url: str) -> Redis:
    """A client for the subscription: no silent retries, so a lost connection suspends the caches at once."""
    return Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=5)


class UnknownCacheError(KeyError):
    """A cache name nobody registered (a typo would otherwise invalidate nothing)."""


class CacheBus:
    """The named caches of one API process and the subscription that clears them.

    Args:
        publisher: the process's shared Redis client (publishes invalidations).
        subscriber: a client used only by the subscription (it holds one connection), from
            :func:`subscriber_client`.
        caches: the caches by name; more can be added with :meth:`register`.
    """

    def __init__(self, *, publisher: Redis, subscriber: Redis, caches: dict[str, TtlCache[Any]] | None = None):
        self._publisher = publisher
        self._subscriber = subscriber
        self._caches: dict[str, TtlCache[Any]] = {}
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()
        """Set while the subscription is confirmed (the caches are trusted)."""
        for name, cache in (caches or {}).items():
            self.register(name, cache)

    def register(self, name: str, cache: TtlCache[Any]) -> TtlCache[Any]:
        """Add a cache under ``name`` (suspended until the subscription is up); return it."""
        if name in self._caches:
            raise ValueError(f"cache name {name!r} is taken")
        if not self.subscribed.is_set():
            cache.suspend()
        self._caches[name] = cache
        return cache

    def __getitem__(self, name: str) -> TtlCache[Any]:
        try:
            return self._caches[name]
        except KeyError:
            raise UnknownCacheError(name) from None

    async def invalidate(self, *names: str) -> None:
        """Clear the named caches here at once and in every other API process."""
        for name in names:
            self[name].clear()
        for name in names:
            try:
                await self._publisher.publish(CHANNEL, name)
            except RedisError as exc:
                log.error("cache invalidation not published; other copies expire", cache=name, error=repr(exc))

    def start(self) -> None:
        """Start the subscription task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="cache-bus")

    async def stop(self) -> None:
        """Stop the subscription task and close its connection."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._subscriber.aclose()

    def _set_trusted(self, trusted: bool) -> None:
        for cache in self._caches.values():
            if trusted:
                cache.resume()
            else:
                cache.suspend()
        if trusted:
            self.subscribed.set()
        else:
            self.subscribed.clear()

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                async with self._subscriber.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down, silent or a bad reply: distrust the caches, resubscribe
                self._set_trusted(False)
                log.warning("cache invalidations unsubscribed; caches bypassed", error=repr(exc), retry_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
            else:
                backoff = 0.1

    async def _listen(self, pubsub: PubSub) -> None:
        """Apply messages until the connection fails or stays silent ``_SILENT_S`` despite pings."""
        loop = asyncio.get_running_loop()
        heard = pinged = loop.time()
        while True:
            message = await pubsub.get_message(timeout=_POLL_S)
            now = loop.time()
            if message is not None:
                heard = now
                self._apply(message)
            if now - heard > _SILENT_S:
                raise ConnectionError(f"no answer from Redis for {_SILENT_S:g} s")
            if now - pinged > _PING_S:
                pinged = now
                await pubsub.ping()

    def _apply(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "subscribe":  # also after a reconnect: messages may have been missed
            self._set_trusted(True)
            log.info("cache invalidations subscribed", caches=sorted(self._caches))
        elif kind == "message":
            data = message["data"]
            name = data.decode() if isinstance(data, bytes) else str(data)
            cache = self._caches.get(name)  # a name this process does not cache: nothing to clear
            if cache is not None:
                cache.clear()
