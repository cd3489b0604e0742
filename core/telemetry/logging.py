"""structlog configuration: JSON lines in production, readable lines in dev.

Context (tenant_id, run_id, workflow_id, request_id) is bound with
``structlog.contextvars`` and appears on every line logged inside it.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, WrappedLogger

REDACTED = "[redacted]"
_REDACTED_KEYS = frozenset(
    {"password", "api_key", "apikey", "authorization", "token", "secret", "key", "cookie", "set_cookie", "credentials"}
)
_REDACTED_SUFFIXES = ("_password", "_secret", "_token", "_api_key", "_apikey", "_credentials")
_SECRET_PATTERNS = (
    # HTTP auth schemes followed by their credential (8+ characters): "Bearer aim_...", "Basic dXNlcjpwYXNz".
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1\2{REDACTED}"),
    # AImPact API keys (``aim_`` + 48 hex); the 8-character display prefix alone is not a secret.
    (re.compile(r"\baim_[A-Za-z0-9_-]{16,}"), REDACTED),
    # JSON Web Tokens: three base64url segments, the first two starting with '{"'.
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), REDACTED),
    # Passwords inside URLs: "postgresql+psycopg://user:secret@host/db".
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@"), rf"\1{REDACTED}@"),
)
_MAX_DEPTH = 6


def _secret_key(name: str) -> bool:
    lowered = name.lower().replace("-", "_")
    return lowered in _REDACTED_KEYS or lowered.endswith(_REDACTED_SUFFIXES)


def scrub_text(text: str) -> str:
    """``text`` with auth-header credentials, API keys, JWTs and URL passwords replaced by ``[redacted]``."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _scrub(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and _secret_key(k) else _scrub(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v, depth + 1) for v in value)
    return value


def redact(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """structlog processor: hide secret-named fields and secrets inside any string value."""
    for name in list(event):
        event[name] = REDACTED if _secret_key(name) else _scrub(event[name])
    return event


def add_trace_context(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """structlog processor: ``trace_id``/``span_id`` of the current span, when tracing is on."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


def configure_logging(*, fmt: str = "json", level: str = "info") -> None:
    """Route stdlib and structlog output through one renderer on stderr."""
    renderer: Any = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_context,
        redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact,  # again: rendered tracebacks and stdlib messages may carry secrets
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name``."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
