"""Background heartbeats for activities that wait on slow I/O."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio import activity


@asynccontextmanager
async def heartbeating() -> AsyncIterator[None]:
    """Heartbeat every third of the activity's heartbeat timeout while the body runs.

    The first beat comes after one interval, so fast calls cost no extra RPC.

    A worker that dies mid-call stops heartbeating, so Temporal retries the
    activity elsewhere after the heartbeat timeout instead of the (long)
    start-to-close timeout.
    """
    timeout = activity.info().heartbeat_timeout
    if not timeout:
        yield
        return
    interval = max(timeout.total_seconds() / 3, 0.1)

    async def _beat() -> None:
        while True:
            await asyncio.sleep(interval)
            activity.heartbeat()

    task = asyncio.create_task(_beat())
    try:
        yield
    finally:
        task.cancel()
