"""ASGI middleware: request metrics and log context; request body limits."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any
from urllib.parse import unquote

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problem_types import ProblemType
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
                    slug=ProblemType.VALIDATION_ERROR,
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


_CLOSE = {"connection": "close"}


class BodyLimitError(HTTPException):
    """413 for a body over the limit, 408 for one that arrives too slowly; the connection closes after the answer.

    Raised from ``receive``: FastAPI passes it on unchanged, the problem handlers answer it.
    """

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(status, detail, headers=_CLOSE)


class BodyLimitMiddleware:
    """Refuses request bodies larger than ``max_body_bytes`` (413) or slower than ``read_timeout_s`` (408).

    A declared ``Content-Length`` is checked before the app runs, so such a body is never read;
    a chunked body is counted as the app reads it, so no more than the limit is ever buffered.
    The read timeout covers the whole body and starts when the app first reads it. Requests
    without a body pass through untouched (SSE streams and other GETs pay nothing).
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, read_timeout_s: float):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        has_body = False
        declared: int | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                has_body = value != b"0"
                declared = int(value) if value.isdigit() else None
            elif name == b"transfer-encoding":
                has_body = True
        if not has_body:
            await self.app(scope, receive, send)
            return
        if declared is not None and declared > self.max_body_bytes:
            await self._answer(self._too_large())(scope, receive, send)
            return
        started = False

        async def _send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        body = _LimitedBody(receive, max_bytes=self.max_body_bytes, timeout_s=self.read_timeout_s)
        try:
            await self.app(scope, body, _send)
        except BodyLimitError as exc:
            if started:
                raise
            await self._answer(exc)(scope, receive, _send)
        finally:
            body.close()

    def _too_large(self) -> BodyLimitError:
        return _too_large(self.max_body_bytes)

    @staticmethod
    def _answer(exc: BodyLimitError) -> ASGIApp:
        return problem_response(exc.status_code, exc.detail, headers=_CLOSE)


def _too_large(limit: int) -> BodyLimitError:
    return BodyLimitError(413, f"the request body is larger than {limit} bytes")


class _LimitedBody:
    """The ``receive`` of one request: counts body bytes and enforces the read deadline.

    The deadline is one timer per request (cheaper than a timeout scope per read): when it
    fires during a read, the read is cancelled and becomes a 408; between reads, the next
    read raises it.
    """

    __slots__ = ("_max_bytes", "_reader", "_receive", "_timeout_s", "_timer", "complete", "expired", "received")

    def __init__(self, receive: Receive, *, max_bytes: int, timeout_s: float) -> None:
        self._receive = receive
        self._max_bytes = max_bytes
        self._timeout_s = timeout_s
        self._timer: asyncio.TimerHandle | None = None
        self._reader: asyncio.Task[Any] | None = None
        self.received = 0
        self.complete = False
        self.expired = False

    async def __call__(self) -> Message:
        if self.complete:
            return await self._receive()
        if self.expired:
            raise self._timed_out()
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._timeout_s, self._expire)
        self._reader = asyncio.current_task()
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            if self.expired and self._reader is not None and self._reader.uncancel() == 0:
                raise self._timed_out() from None
            raise
        finally:
            self._reader = None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self._max_bytes:
                self.close()
                raise _too_large(self._max_bytes)
            self.complete = not message.get("more_body", False)
        else:
            self.complete = True
        if self.complete:
            self.close()
        return message

    def close(self) -> None:
        """Stop the deadline (the body is complete, refused, or the app is done)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        self.expired = True
        if self._reader is not None:
            self._reader.cancel()

    def _timed_out(self) -> BodyLimitError:
        return BodyLimitError(408, f"the request body did not arrive within {self._timeout_s:g} s")
