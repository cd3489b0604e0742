"""Request and response bodies of the public API."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, Field, field_validator

from core.agents import DoubleTexting, MemorySpec, ModelSpec, ToolSpec
from core.contracts.agent_run import RunStatus, StepKind, StepStatus
from core.validation import CleanModel

T = TypeVar("T")
MAX_INPUT_CHARS = 200_000
_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _not_a_number(value: Any) -> Any:
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("must be an ISO 8601 date-time such as 2026-01-31T00:00:00Z, not a number")
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(_not_a_number)]
"""A date-time in ISO 8601 only (pydantic would also read a number as Unix seconds)."""


class Page(BaseModel, Generic[T]):
    """A page of a list."""

    items: list[T]
    next_cursor: str | None = None


class AgentConfigPublic(BaseModel):
    """The configuration of one agent version, as the API shows it."""

    name: str
    instructions: str
    model: ModelSpec
    tools: list[ToolSpec]
    memory: MemorySpec
    double_texting: DoubleTexting
    parallel_tool_calls: bool


class AgentPublic(AgentConfigPublic):
    """An agent at its current version."""

    id: str
    version: int
    created_at: datetime
    updated_at: datetime


class RunCreate(CleanModel):
    """``POST /v1/agents/{id}/runs``."""

    input: str = Field(min_length=1, max_length=MAX_INPUT_CHARS)
    thread_id: str | None = Field(default=None, min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_\-]+$")
    subject: str | None = Field(default=None, min_length=1, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("metadata")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > 50 or len(str(value)) > 8_000:
            raise ValueError("at most 50 keys and 8000 characters")
        return value


class UsagePublic(BaseModel):
    """Tokens and cost."""

    input_tokens: int
    output_tokens: int
    cost_usd: float


class StepPublic(BaseModel):
    """One step of a run."""

    id: str
    kind: StepKind
    name: str
    status: StepStatus
    started_at: datetime | None
    ended_at: datetime | None
    attempts: int
    input: Any
    output: Any
    error: dict[str, Any] | None
    usage: UsagePublic | None = Field(default=None, description="Tokens and cost of this step (model steps).")


class TemporalLink(BaseModel):
    """Where the run lives in Temporal."""

    workflow_id: str
    run_id: str | None
    ui_url: str


class RunPublic(BaseModel):
    """An agent run."""

    id: str
    agent_id: str
    agent_version: int
    thread_id: str
    status: RunStatus
    input: str
    output: str | None
    steps: list[StepPublic]
    usage: UsagePublic
    error: dict[str, Any] | None
    subject: str | None
    metadata: dict[str, Any]
    experiment_id: str | None = Field(default=None, description="The online experiment that chose the version.")
    experiment_arm: str | None = Field(default=None, description="`control` or `candidate` in `experiment_id`.")
    created_at: datetime
    updated_at: datetime
    temporal: TemporalLink


class TurnPublic(BaseModel):
    """The turn a message (or a retry) set going, and where its events start."""

    number: int = Field(description="The turn that answers: the next one, or the one in flight it interrupts.")
    message_id: str | None = Field(description="The message's id (`null` for a retry).")
    policy: DoubleTexting | None = Field(description="The agent's double-texting policy applied (`null` for a retry).")
    after_event_id: str = Field(
        description="The run's newest event before the message: `GET …/events?after=` this id follows the turn."
    )


class RunTurnPublic(RunPublic):
    """An agent run and the turn a request set going (``202`` of ``…/messages`` and ``…/retry``)."""

    turn: TurnPublic
