"""Found or 404: the lookups routes share. Another tenant's object is absent, indistinguishably."""

from __future__ import annotations

from typing import TypeVar

from api.problem_types import ProblemType
from api.problems import ProblemError
from core.db.models import Agent
from core.db.repos import AgentRepository

T = TypeVar("T")


def found(value: T | None, what: str) -> T:
    """``value``, or 404 ``<what> not found`` when there is none."""
    if value is None:
        raise ProblemError(404, f"{what} not found", slug=ProblemType.NOT_FOUND)
    return value


async def agent_of(repo: AgentRepository, agent_id: str, *, live_for: str | None = None, lock: bool = False) -> Agent:
    """The tenant's agent, archived too (``lock``: FOR UPDATE), or 404.

    With ``live_for``, an archived agent answers 409 ``agent-archived``: ``agent <id> is archived: <live_for>``.
    """
    agent = found(await repo.get_any(agent_id, lock=lock), f"agent {agent_id}")
    if live_for is not None and agent.deleted_at is not None:
        raise ProblemError(409, f"agent {agent_id} is archived: {live_for}", slug=ProblemType.AGENT_ARCHIVED)
    return agent
