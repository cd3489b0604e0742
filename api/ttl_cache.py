"""A small in-process TTL cache (credential lookups on the hot path).

Every API process holds its own copy; :mod:`api.cache_bus` clears the copies of all
processes when the data behind a cache changes. Two rules keep a copy from serving
data older than the last clear:

- a value read before a clear is not stored after it: the caller takes :attr:`TtlCache.generation`
  before it reads, and ``put`` drops the value if a clear came in between (the caller still
  uses the value it read, but the next request reads again);
- while the cache is suspended (its process cannot hear clears) it stores and serves nothing.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    """Least-recently-inserted eviction, entries expire after ``ttl_s``."""

    def __init__(self, *, ttl_s: float, max_entries: int = 10_000):
        self._ttl_s = ttl_s
        self._max = max_entries
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._generation = 0
        self._suspended = False

    @property
    def suspended(self) -> bool:
        """Whether the cache is bypassed (see :meth:`suspend`)."""
        return self._suspended

    @property
    def generation(self) -> int:
        """How many clears so far: take it before reading a value to :meth:`put`."""
        return self._generation

    def get(self, key: str) -> V | None:
        """The live value for ``key``, if any."""
        item = None if self._suspended else self._items.get(key)
        if item is not None and item[0] >= time.monotonic():
            return item[1]
        self._items.pop(key, None)
        return None

    def put(self, key: str, value: V, read_at: int) -> None:
        """Store ``value`` for ``ttl_s``, unless the cache was cleared since ``read_at`` (a :attr:`generation`)."""
        if self._suspended or read_at != self._generation:
            return
        self._items[key] = (time.monotonic() + self._ttl_s, value)
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget everything, including lookups in flight."""
        self._items.clear()
        self._generation += 1

    def suspend(self) -> None:
        """Clear and bypass the cache until :meth:`resume` (every ``get`` misses, ``put`` stores nothing)."""
        self._suspended = True
        self.clear()

    def resume(self) -> None:
        """Use the cache again, starting empty."""
        self.clear()
        self._suspended = False
