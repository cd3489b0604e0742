"""Bodies of agent versions (``PATCH /v1/agents/{id}``, ``…/versions``) and run feedback."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictBool

from api.schemas import AgentConfigPublic
from core.agents import TOOL_NAME_SCHEMA, DoubleTexting, MemorySpec, ModelSpec, ToolSpec
from core.validation import CleanModel


class AgentUpdate(CleanModel):
    """``PATCH /v1/agents/{id}``: the fields to change; the rest is kept from the current version."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    instructions: str | None = Field(default=None, max_length=50_000)
    model: ModelSpec | None = None
    tools: list[ToolSpec | Annotated[str, Field(json_schema_extra=TOOL_NAME_SCHEMA)]] | None = Field(
        default=None, max_length=64
    )
    memory: MemorySpec | None = None
    double_texting: DoubleTexting | None = None
    parallel_tool_calls: StrictBool | None = None
    promote: StrictBool = Field(default=True, description="Make the new version current (false: keep it for later).")


class AuthorPublic(BaseModel):
    """Who created a version or gave feedback."""

    kind: str = Field(description="`user` (a person or an API key), `optimizer` or `recommendation`.")
    id: str


class FeedbackSummary(BaseModel):
    """Feedback on the runs of one version."""

    n: int
    mean: float | None


class AgentVersionPublic(AgentConfigPublic):
    """One immutable version of an agent."""

    version: int
    created_at: datetime
    created_by: AuthorPublic
    current: bool
    feedback: FeedbackSummary


class FeedbackCreate(CleanModel):
    """``POST /v1/runs/{id}/feedback``."""

    score: float = Field(ge=0, le=1, allow_inf_nan=False, description="0 (bad) to 1 (good).")
    label: str | None = Field(default=None, min_length=1, max_length=100)
    comment: str | None = Field(default=None, max_length=4000)


class FeedbackPublic(BaseModel):
    """Feedback on a run, attributed to the agent version that produced it."""

    id: str
    run_id: str
    agent_id: str
    agent_version: int
    score: float
    label: str | None
    comment: str | None
    created_by: AuthorPublic
    created_at: datetime
