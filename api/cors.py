"""Cross-origin access: the Temporal UI's to the codec endpoint, browser clients' to the rest of the API.

Two policies, chosen by path, because one CORS middleware answers every preflight itself
(a second one behind it would never see them):

- ``/codec/…``: the Temporal UI's origin, with credentials (the codec-session cookie);
- everything else: ``AIMPACT_CORS_ORIGINS`` (none by default: no CORS headers at all), with
  credentials only when ``AIMPACT_CORS_ALLOW_CREDENTIALS`` is on.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from core.settings import Settings

CODEC_PREFIX = "/codec/"
CLIENT_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID")
"""Request headers browser clients may send."""
EXPOSED_HEADERS = ("Retry-After",)
"""Response headers browser clients may read."""


class CorsByPath:
    """ASGI middleware: the codec policy for ``/codec/…``, the clients' policy (if any) elsewhere."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        """Build both policies from ``settings``."""
        self._app = app
        self._codec = CORSMiddleware(
            app,
            allow_origins=[settings.temporal_ui_base.rstrip("/")],
            allow_credentials=True,
            allow_methods=["POST"],
            allow_headers=["authorization", "content-type", "x-namespace"],
        )
        self._clients: ASGIApp = app
        if settings.cors_origins:
            self._clients = CORSMiddleware(
                app,
                allow_origins=settings.cors_origins,
                allow_credentials=settings.cors_allow_credentials,
                allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
                allow_headers=list(CLIENT_HEADERS),
                expose_headers=list(EXPOSED_HEADERS),
                max_age=600,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route the request through the policy of its path."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
        elif str(scope.get("path", "")).startswith(CODEC_PREFIX):
            await self._codec(scope, receive, send)
        else:
            await self._clients(scope, receive, send)
