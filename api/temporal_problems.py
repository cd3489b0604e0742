"""Temporal's failures as problems: 503 ``temporal-unavailable`` with ``Retry-After``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.service import RPCError

from api.problem_types import ProblemType
from api.problems import ProblemError


@asynccontextmanager
async def temporal_answers(doing: str) -> AsyncIterator[None]:
    """Temporal's failure (an RPC error, or no connection at all) as 503 ``temporal-unavailable``.

    ``doing`` says what could not be done.
    """
    try:
        yield
    except (RPCError, RuntimeError) as exc:  # RuntimeError: the client could not connect
        raise ProblemError(
            503, f"{doing}: Temporal did not answer; retry", slug=ProblemType.TEMPORAL_UNAVAILABLE,
            headers={"Retry-After": "2"},
        ) from exc  # fmt: skip
