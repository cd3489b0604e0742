"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import Redis

from api.middleware import ObservabilityMiddleware
from api.problems import install_problem_handlers
from api.routes import agents, events, health, runs
from api.state import AppState
from api.ttl_cache import TtlCache
from core.db.engine import make_engine, make_sessionmaker
from core.events import RunEventLog
from core.settings import Settings
from core.temporal import connect_temporal


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API; resources are created in the lifespan, not at import."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_target, pool_size=20)
        redis = Redis.from_url(settings.redis_target, socket_timeout=5)
        temporal = await connect_temporal(settings)
        app.state.aimpact = AppState(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            temporal=temporal,
            redis=redis,
            events=RunEventLog(redis),
            principals=TtlCache(ttl_s=settings.credential_cache_s),
        )
        try:
            yield
        finally:
            await redis.aclose()
            await engine.dispose()

    app = FastAPI(
        title="AImPact",
        version="1.0.0",
        summary="Durable, multi-tenant AI agents on Temporal.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.add_middleware(ObservabilityMiddleware)
    app.include_router(health.router)
    app.include_router(agents.router)
    app.include_router(runs.router)
    app.include_router(events.router)
    return app
