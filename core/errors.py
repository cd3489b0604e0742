"""Typed error vocabulary shared by activities, workflows and the API.

Activities raise ``temporalio.exceptions.ApplicationError`` with one of the
``type`` strings below; the API maps its own failures to RFC 9457 problem types.
"""

from __future__ import annotations

AGENT_NOT_FOUND = "AgentNotFound"
RUN_NOT_FOUND = "RunNotFound"
PROVIDER_UNAVAILABLE = "ProviderUnavailable"
PROVIDER_REJECTED = "ProviderRejected"
TOOL_NOT_FOUND = "ToolNotFound"
TOOL_FAILED = "ToolFailed"
STEP_LIMIT = "StepLimitReached"
EMBEDDER_UNAVAILABLE = "EmbedderUnavailable"
EMBEDDER_REJECTED = "EmbedderRejected"
DATABASE_REJECTED = "DatabaseRejected"
"""The database refused a write or a query deterministically (integrity, data, SQL) or an invariant failed."""
MEMORY_CORRUPT = "MemoryCorrupt"
"""A stored memory that consolidation cannot read."""

NON_RETRYABLE_TYPES: tuple[str, ...] = (
    AGENT_NOT_FOUND,
    RUN_NOT_FOUND,
    PROVIDER_REJECTED,
    TOOL_NOT_FOUND,
)

PROBLEM_BASE = "https://aimpact.dev/problems/"


def problem_type(slug: str) -> str:
    """The URI of an API problem type."""
    return PROBLEM_BASE + slug


class DomainError(Exception):
    """Base class of errors that core raises for callers to map."""


class ToolError(DomainError):
    """A tool rejected its arguments or failed in a way the model should see."""
