"""Temporal client construction shared by the API and the workers."""

from __future__ import annotations

import asyncio

from temporalio.client import Client

from core.settings import Settings


async def connect_temporal(settings: Settings, *, attempts: int = 30) -> Client:
    """Connect to the configured Temporal frontend, retrying while it starts."""
    delay = 0.2
    for attempt in range(1, attempts + 1):
        try:
            return await Client.connect(settings.temporal_target, namespace=settings.temporal_namespace)
        except RuntimeError:
            if attempt == attempts:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")
