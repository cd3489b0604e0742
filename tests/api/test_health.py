"""Readiness reflects an exhausted database pool, fast, without queueing for a connection itself."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from api.routes.health import PoolExhaustedError, check_database
from core.db.engine import make_engine
from workers.embedded.stack import StackProcess


async def test_database_check_fails_fast_while_every_pooled_connection_is_held(stack: StackProcess) -> None:
    engine = make_engine(stack.database_url, pool_size=1)  # one pooled connection + one overflow
    try:
        await check_database(engine, pool_wait_s=0.5)
        async with engine.connect() as first, engine.connect() as second:
            await first.execute(text("select 1"))
            await second.execute(text("select 1"))
            began = time.monotonic()
            with pytest.raises(PoolExhaustedError):
                await check_database(engine, pool_wait_s=0.5)
            assert time.monotonic() - began < 1.5

        async with engine.connect() as held:
            await held.execute(text("select 1"))
            second = await engine.connect()

            async def release_soon() -> None:
                await asyncio.sleep(0.3)
                await second.close()

            releasing = asyncio.create_task(release_soon())
            await check_database(engine, pool_wait_s=2)  # a connection freed during the wait: ready
            await releasing
    finally:
        await engine.dispose()
