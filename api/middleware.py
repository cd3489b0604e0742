"""ASGI middleware: request metrics by route template and request-scoped log context."""

from __future__ import annotations

import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.telemetry import metrics

log = structlog.get_logger("api.access")


class ObservabilityMiddleware:
    """Counts and times every HTTP request; binds ``request_id`` for its logs."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        structlog.contextvars.clear_contextvars()
        request_id = uuid.uuid4().hex[:16]
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        started = time.perf_counter()

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(method, template, f"{status // 100}xx").inc()
            metrics.HTTP_LATENCY.labels(method, template).observe(elapsed)
            if status >= 500:
                log.error("request failed", method=method, route=template, status=status)
