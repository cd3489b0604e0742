"""The provider interface every model backend implements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from core.contracts.llm import LlmRequest, LlmResponse

DeltaCallback = Callable[[str], Awaitable[None]]
"""Receives each streamed text delta as it arrives."""


class ProviderError(Exception):
    """A provider failure, classified for the activity.

    ``retryable`` failures (timeouts, connection errors, 429, 5xx) are retried by
    the activity's policy, after ``retry_after_s`` when the provider said so;
    the others (400, 401, 403, 404, content refusals, malformed answers) fail
    the run with a clear error.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        retryable: bool,
        status: int | None = None,
        retry_after_s: float | None = None,
    ):
        super().__init__(message)
        self.provider = provider
        self.retryable = retryable
        self.status = status
        self.retry_after_s = retry_after_s


class LlmProvider(Protocol):
    """A chat-completion backend with tool calling."""

    name: str

    async def complete(self, request: LlmRequest, *, on_delta: DeltaCallback | None = None) -> LlmResponse:
        """Complete the conversation in ``request``; stream text deltas to ``on_delta`` when given.

        Raises ``ProviderError`` on failure.
        """
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


AVAILABLE_PROVIDERS: frozenset[str] = frozenset({"local", "openai", "anthropic"})
"""Providers an agent may name today (validated at agent creation)."""
