"""structlog configuration: JSON lines in production, readable lines in dev.

Context (tenant_id, run_id, workflow_id, request_id) is bound with
``structlog.contextvars`` and appears on every line logged inside it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_REDACTED_KEYS = frozenset({"password", "api_key", "authorization", "token", "secret", "key"})


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for name in list(event):
        if name.lower() in _REDACTED_KEYS:
            event[name] = "[redacted]"
    return event


def configure_logging(*, fmt: str = "json", level: str = "info") -> None:
    """Route stdlib and structlog output through one renderer on stderr."""
    renderer: Any = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
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
