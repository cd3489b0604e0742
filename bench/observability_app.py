"""The API without its metrics/logging middleware: the baseline of bench/observability.py only."""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from api.middleware import ObservabilityMiddleware


def uninstrumented_app() -> FastAPI:
    """``create_app()`` minus ``ObservabilityMiddleware`` (request metrics and request-scoped log context)."""
    app = create_app()
    app.user_middleware = [m for m in app.user_middleware if m.cls is not ObservabilityMiddleware]  # type: ignore[comparison-overlap]
    return app
