"""The provider interface every model backend implements."""

from __future__ import annotations

from typing import Protocol

from core.contracts.llm import LlmRequest, LlmResponse


class ProviderError(Exception):
    """A provider failure; ``retryable`` tells the activity how to surface it."""

    def __init__(self, message: str, *, provider: str, retryable: bool, status: int | None = None):
        super().__init__(message)
        self.provider = provider
        self.retryable = retryable
        self.status = status


class LlmProvider(Protocol):
    """A chat-completion backend with tool calling."""

    name: str

    async def complete(self, request: LlmRequest) -> LlmResponse:
        """Complete the conversation in ``request``; raise ``ProviderError`` on failure."""
        ...


class ProviderRegistry:
    """Providers by name, built once per worker."""

    def __init__(self, providers: list[LlmProvider]):
        self._providers = {p.name: p for p in providers}

    def names(self) -> list[str]:
        """Registered provider names."""
        return sorted(self._providers)

    def get(self, name: str) -> LlmProvider:
        """The provider called ``name``; ``KeyError`` if absent."""
        return self._providers[name]


AVAILABLE_PROVIDERS: frozenset[str] = frozenset({"local"})
"""Providers an agent may name today (validated at agent creation)."""
