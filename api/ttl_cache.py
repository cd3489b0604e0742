"""A small in-process TTL cache (credential lookups on the hot path)."""

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

    def get(self, key: str) -> V | None:
        """The live value for ``key``, if any."""
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if expires < time.monotonic():
            self._items.pop(key, None)
            return None
        return value

    def put(self, key: str, value: V) -> None:
        """Store ``value`` for ``ttl_s``."""
        self._items[key] = (time.monotonic() + self._ttl_s, value)
        self._items.move_to_end(key)
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget everything."""
        self._items.clear()
