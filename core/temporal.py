"""Temporal client construction shared by the API and the workers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from temporalio.client import Client, Interceptor
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime

from core.codec import encrypted_data_converter
from core.crypto import Keyring
from core.settings import Settings


def data_converter(settings: Settings) -> DataConverter:
    """Payload encryption (AES-GCM, failure attributes too) when enabled, else the default."""
    if settings.encrypt_payloads:
        return encrypted_data_converter(Keyring.from_setting(settings.encryption_keyring))
    return DataConverter.default


async def connect_temporal(
    settings: Settings,
    *,
    attempts: int = 30,
    runtime: Runtime | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """Connect to the configured Temporal frontend, retrying while it starts."""
    delay = 0.2
    for attempt in range(1, attempts + 1):
        try:
            return await Client.connect(
                settings.temporal_target,
                namespace=settings.temporal_namespace,
                data_converter=data_converter(settings),
                runtime=runtime,
                interceptors=interceptors,
            )
        except RuntimeError:
            if attempt == attempts:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")
