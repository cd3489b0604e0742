"""Engine construction; one async engine per process, built by its composition root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession


def make_engine(url: str, *, pool_size: int = 10, pre_ping: bool = True) -> AsyncEngine:
    """An async engine for ``url`` (``postgresql+psycopg://...``).

    ``pre_ping`` tests each connection on checkout (a round trip). Workers turn it off:
    an activity that meets a dead connection fails, the pool drops it, and Temporal retries.
    """
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=pre_ping, pool_recycle=1800
    )


@asynccontextmanager
async def transaction(engine: AsyncEngine, conn: AsyncConnection | None = None) -> AsyncIterator[AsyncConnection]:
    """``conn`` when the caller groups several writes in its transaction, else a new transaction."""
    if conn is not None:
        yield conn
        return
    async with engine.begin() as own:
        yield own


@asynccontextmanager
async def statement(engine: AsyncEngine, conn: AsyncConnection | None = None) -> AsyncIterator[AsyncConnection]:
    """``conn`` when the caller's transaction is open, else a connection that commits each statement alone.

    For a read or a single write: one round trip instead of three (no ``BEGIN`` and
    ``COMMIT``/``ROLLBACK`` around it). Never for several writes that must commit together.
    """
    if conn is not None:
        yield conn
        return
    async with engine.connect() as own:
        await own.execution_options(isolation_level="AUTOCOMMIT")
        yield own


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Session factory that keeps objects usable after commit."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
