"""ASGI middleware: request metrics by route template and request-scoped log context."""

from __future__ import annotations

import time
import uuid
from urllib.parse import unquote

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_response
from core.telemetry import metrics
from core.validation import text_problem

log = structlog.get_logger("api.access")


def _unusable_url_part(scope: Scope) -> str | None:
    """``"path"`` or ``"query"`` if that part holds NUL or undecodable text."""
    if text_problem(scope.get("path", "")):
        return "path"
    try:
        query = unquote(scope.get("query_string", b"").decode("latin-1"), errors="strict")
    except UnicodeDecodeError:
        return "query"
    return "query" if text_problem(query) else None


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
            unusable = _unusable_url_part(scope)
            if unusable:
                response = problem_response(
                    422,
                    f"the request {unusable} contains characters that cannot be stored",
                    slug="validation-error",
                    errors=[{"field": unusable, "message": "must not contain NUL or invalid UTF-8"}],
                )
                await response(scope, receive, _send)
                return
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
