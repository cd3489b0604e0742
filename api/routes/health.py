"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from api.deps import StateDep

router = APIRouter(tags=["health"])
_POLL_S = 0.05


class PoolExhaustedError(Exception):
    """Every connection of the database pool is checked out."""


def pool_free(engine: AsyncEngine) -> int | None:
    """Connections the engine's pool can hand out now without waiting (``None``: unbounded)."""
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return None
    max_overflow: int = getattr(pool, "_max_overflow", -1)  # SQLAlchemy has no public accessor
    if max_overflow < 0:
        return None
    return pool.checkedin() + max(0, max_overflow - pool.overflow())


async def check_database(engine: AsyncEngine, *, pool_wait_s: float) -> None:
    """``select 1``, unless no pooled connection frees up within ``pool_wait_s`` (``PoolExhaustedError``).

    The probe never queues for a connection itself: it watches the pool, so an exhausted
    pool makes the process unready within ``pool_wait_s`` instead of after the pool timeout.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + pool_wait_s
    while pool_free(engine) == 0:
        if loop.time() >= deadline:
            raise PoolExhaustedError("every pooled database connection is in use")
        await asyncio.sleep(_POLL_S)
    async with engine.connect() as conn:
        await conn.execute(text("select 1"))


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


class Readiness(BaseModel):
    """The answer of ``/readyz``: ``ok`` or ``error: …`` per dependency."""

    status: str
    checks: dict[str, str]


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: the failing checks say why."}},
)
async def readyz(state: StateDep) -> JSONResponse:
    """Database (with a free pooled connection), Redis and Temporal are reachable."""

    async def database() -> None:
        await check_database(state.engine, pool_wait_s=state.settings.ready_pool_wait_s)

    async def redis() -> None:
        await state.redis.ping()

    async def temporal() -> None:
        await state.temporal.service_client.check_health()

    checks = {"database": database, "redis": redis, "temporal": temporal}
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(), timeout=3)
            results[name] = "ok"
        except PoolExhaustedError:
            results[name] = "error: pool exhausted"
        except Exception as exc:  # readiness reports every failure as data
            results[name] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in results.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": results}, status_code=200 if ready else 503
    )


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics() -> Response:
    """Prometheus text exposition."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
