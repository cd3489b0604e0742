"""Temporal's failures as problems: 503 ``temporal-unavailable`` with ``Retry-After``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.service import RPCError

from api.problem_types import ProblemType
from api.problems import ProblemError


@asynccontextmanager
async def temporal_answers(doing: str) -> AsyncIterator[None]:
    """Temporal's failure as 503 ``temporal-unavailable`` (``doing`` says what could not be done)."""
    try:
        yield
    except RPCError as exc:
        raise ProblemError(
            503, f"{doing}: Temporal did not answer; retry", slug=ProblemType.TEMPORAL_UNAVAILABLE,
            headers={"Retry-After": "2"},
        ) from exc  # fmt: skip
