"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Request
from redis.asyncio import BlockingConnectionPool, Redis
from temporalio.converter import PayloadCodec

from api.cache_bus import AGENTS, PRINCIPALS, CacheBus, subscriber_client
from api.cors import CorsByPath
from api.dashboard import dashboard_files
from api.middleware import BodyLimitMiddleware, ObservabilityMiddleware
from api.openapi import install_openapi
from api.problem_types import PROBLEM_RESPONSES
from api.problems import install_problem_handlers
from api.routes import (
    agents,
    api_keys,
    audit,
    auth,
    codec_auth,
    datasets,
    events,
    experiments,
    feedback,
    health,
    memories,
    optimizer_runs,
    optimizer_schedules,
    pipeline_reruns,
    pipeline_runs,
    pipeline_schedules,
    pipelines,
    recommendations,
    replays,
    run_control,
    runs,
    secrets,
    sessions,
    tenants,
    tools,
    users,
    voice,
    voice_stream,
    webhooks,
)
from api.routes.codec import codec_router
from api.state import AppState
from api.streams import StreamLimits
from api.ttl_cache import TtlCache
from core.auth.jwt_keys import JwtService
from core.auth.refresh import RefreshTokens
from core.auth.throttle import LoginThrottle
from core.codec import EncryptionCodec
from core.crypto import Keyring
from core.db.engine import make_engine, make_sessionmaker
from core.db.reads import AgentRef, ReadPool
from core.event_hub import READER_SOCKET_TIMEOUT_S, RunEventHub
from core.events import RunEventLog
from core.memory.embedders import MiniLMEmbedder, embedder_from_settings
from core.memory.service import MemoryService
from core.memory.store import MemoryStore
from core.quotas import RequestRateLimiter
from core.settings import Settings
from core.telemetry.tracing import configure_tracing, instrument_fastapi, temporal_interceptors
from core.temporal import connect_temporal

log = structlog.get_logger(__name__)
REDIS_POOL_WAIT_S = 10.0
"""How long a request waits for a free Redis connection before it fails."""


def _codec(request: Request) -> PayloadCodec:
    """The payload codec of this deployment (the platform keyring)."""
    state: AppState = request.app.state.aimpact
    return EncryptionCodec(state.keyring)


def raise_open_files_limit() -> None:
    """Lift this process's soft limit of open files to its hard limit (each SSE stream holds a socket)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not a POSIX system
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError) as exc:
        log.warning("could not raise the open files limit", soft=soft, hard=hard, error=str(exc))
        return
    log.info("raised the open files limit", soft=soft, to=target)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API; resources are created in the lifespan, not at import."""
    settings = settings or Settings()
    tracer_provider = configure_tracing("aimpact-api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        raise_open_files_limit()
        keyring = Keyring.from_setting(settings.encryption_keyring)
        engine = make_engine(settings.database_target, pool_size=20)
        reads = ReadPool(settings.database_target, max_size=settings.read_pool_size)
        await reads.open()
        redis = Redis.from_pool(
            BlockingConnectionPool.from_url(
                settings.redis_target,
                max_connections=settings.redis_max_connections,
                timeout=REDIS_POOL_WAIT_S,
                socket_timeout=5,
            )
        )
        events = RunEventLog(redis)
        stream_reader = Redis.from_url(settings.redis_target, socket_timeout=READER_SOCKET_TIMEOUT_S)
        event_hub = RunEventHub(reader=stream_reader, events=events, redis=redis)
        temporal = await connect_temporal(settings, interceptors=temporal_interceptors(tracer_provider))
        principals: TtlCache[Any] = TtlCache(ttl_s=settings.credential_cache_s)
        agents: TtlCache[AgentRef] = TtlCache(ttl_s=settings.credential_cache_s)
        caches = CacheBus(
            publisher=redis,
            subscriber=subscriber_client(settings.redis_target),
            caches={PRINCIPALS: principals, AGENTS: agents},
        )
        embedder = embedder_from_settings(settings)
        warming = asyncio.create_task(embedder.warm()) if isinstance(embedder, MiniLMEmbedder) else None

        app.state.aimpact = AppState(
            settings=settings,
            engine=engine,
            reads=reads,
            sessions=make_sessionmaker(engine),
            temporal=temporal,
            redis=redis,
            events=events,
            event_hub=event_hub,
            stream_limits=StreamLimits(
                per_tenant=settings.streams_per_tenant, per_process=settings.streams_per_process
            ),
            principals=principals,
            agents=agents,
            caches=caches,
            jwt=JwtService(settings),
            refresh_tokens=RefreshTokens(ttl_s=settings.refresh_token_ttl_s),
            login_throttle=LoginThrottle(
                redis,
                max_per_account=settings.login_max_failures_per_account,
                max_per_ip=settings.login_max_failures_per_ip,
                window_s=settings.login_window_s,
            ),
            rate_limiter=RequestRateLimiter(redis),
            keyring=keyring,
            memory=MemoryService(MemoryStore(engine), embedder, temporal, settings.agents_task_queue),
        )
        event_hub.start()
        caches.start()
        try:
            yield
        finally:
            if warming is not None:
                warming.cancel()
            await caches.stop()
            await event_hub.stop()
            await stream_reader.aclose()
            await redis.aclose()
            await reads.close()
            await engine.dispose()
            if tracer_provider is not None:
                tracer_provider.shutdown()

    app = FastAPI(
        title="AImPact",
        version="1.0.0",
        summary="Durable, multi-tenant AI agents on Temporal.",
        lifespan=lifespan,
        responses=PROBLEM_RESPONSES,
        redirect_slashes=False,  # a redirect would be built from the caller's Host header
        docs_url=None,  # api.openapi serves the explorer from the package's files, not a CDN
        redoc_url=None,
    )
    install_problem_handlers(app)
    install_openapi(app)
    instrument_fastapi(app, tracer_provider)
    app.add_middleware(
        BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes, read_timeout_s=settings.body_read_timeout_s
    )
    app.add_middleware(ObservabilityMiddleware)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(sessions.router)
    app.include_router(tenants.router)
    app.include_router(users.router)
    app.include_router(api_keys.router)
    app.include_router(secrets.router)
    app.include_router(audit.router)
    app.include_router(codec_auth.router)
    app.include_router(codec_router(_codec, codec_auth.authorize_codec))
    app.add_middleware(CorsByPath, settings=settings)
    app.include_router(agents.router)
    app.include_router(runs.router)
    app.include_router(events.router)
    app.include_router(run_control.router)
    app.include_router(feedback.router)
    app.include_router(tools.router)
    app.include_router(webhooks.router)
    app.include_router(memories.router)
    app.include_router(pipelines.router)
    app.include_router(pipeline_runs.router)
    app.include_router(pipeline_reruns.router)
    app.include_router(pipeline_schedules.router)
    app.include_router(datasets.router)
    app.include_router(optimizer_runs.router)
    app.include_router(optimizer_schedules.router)
    app.include_router(replays.router)
    app.include_router(experiments.router)
    app.include_router(voice.router)
    app.include_router(voice_stream.router)
    app.include_router(recommendations.router)
    app.router.default = dashboard_files(settings.dashboard_dir)  # what no API route matched (nor in part)
    return app
