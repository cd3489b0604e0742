"""A small LRU of SDK clients per (base URL, API key), shared by the SDK-backed providers."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar


class _Closable(Protocol):
    def close(self) -> Awaitable[None]: ...


C = TypeVar("C", bound=_Closable)
MAX_CLIENTS = 64


class ClientCache(Generic[C]):
    """Reuses one client (and its connection pool) per endpoint and key."""

    def __init__(self, factory: Callable[[str, str], C], *, limit: int = MAX_CLIENTS):
        self._factory = factory
        self._limit = limit
        self._clients: OrderedDict[tuple[str, str], C] = OrderedDict()

    def get(self, base_url: str, api_key: str) -> C:
        """The client for ``base_url`` and ``api_key``, created on first use."""
        key = (base_url, api_key)
        client = self._clients.get(key)
        if client is None:
            client = self._factory(base_url, api_key)
            self._clients[key] = client
            if len(self._clients) > self._limit:
                self._clients.popitem(last=False)  # dropped, not closed: a request may still use it
        self._clients.move_to_end(key)
        return client

    def __len__(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        """Close every cached client."""
        clients, self._clients = list(self._clients.values()), OrderedDict()
        for client in clients:
            await client.close()
