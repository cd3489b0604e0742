"""Fixtures for provider tests: a scripted local HTTP server and providers to aim at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from core.llm.anthropic_provider import AnthropicProvider
from core.llm.openai_provider import OpenAIProvider
from simulated.scripted_server import ScriptedServer


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    """A fresh scripted server on 127.0.0.1."""
    fake = ScriptedServer().start()
    yield fake
    fake.stop()


@pytest.fixture
async def openai_provider() -> AsyncIterator[OpenAIProvider]:
    """An OpenAI provider with a short timeout."""
    provider = OpenAIProvider(timeout_s=5)
    yield provider
    await provider.aclose()


@pytest.fixture
async def anthropic_provider() -> AsyncIterator[AnthropicProvider]:
    """An Anthropic provider with a short timeout."""
    provider = AnthropicProvider(timeout_s=5)
    yield provider
    await provider.aclose()
