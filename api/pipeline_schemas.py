"""Bodies of ``/v1/pipelines``: definitions, versions and validation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.version_schemas import AuthorPublic
from core.validation import CleanModel

DEFINITION = (
    "A pipeline definition `{inputs?, steps, output?}` (see the README, “Pipelines”). "
    "Its rules (step types and fields, ids, `needs`, expressions, the agents, tools and pipelines it names) "
    "are checked on save and answered as 422 with a JSON pointer per problem; text must not contain NUL characters."
)


class PipelineCreate(CleanModel):
    """``POST /v1/pipelines``."""

    name: str = Field(min_length=1, max_length=200)
    definition: dict[str, Any] = Field(description=DEFINITION)


class PipelineUpdate(CleanModel):
    """``PUT /v1/pipelines/{id}``: a new version (current) with this definition."""

    definition: dict[str, Any] = Field(description=DEFINITION)
    name: str | None = Field(default=None, min_length=1, max_length=200, description="A new name (kept otherwise).")


class PipelineValidate(CleanModel):
    """``POST /v1/pipelines/validate``."""

    definition: dict[str, Any] = Field(description="A pipeline definition to check; nothing is stored.")


class PipelinePublic(BaseModel):
    """A pipeline at its current version."""

    id: str
    name: str
    version: int = Field(description="The current version: the one new runs use.")
    definition: dict[str, Any]
    archived: bool
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime


class PipelineVersionPublic(BaseModel):
    """One immutable version of a pipeline."""

    pipeline_id: str
    version: int
    definition: dict[str, Any]
    current: bool
    created_at: datetime
    created_by: AuthorPublic


class FieldErrorPublic(BaseModel):
    """One problem of a definition, at a JSON pointer into it (``""``: the whole definition)."""

    field: str = Field(description="An RFC 6901 JSON pointer into the definition, such as `/steps/3/if`.")
    message: str


class ValidationPublic(BaseModel):
    """The answer of ``POST /v1/pipelines/validate``."""

    valid: bool
    errors: list[FieldErrorPublic]
    plan: dict[str, Any] | None = Field(
        description="When valid: the step graph (waves of steps that may run concurrently, each step's needs) "
        "and the cost estimate: ``cost_estimate_usd`` of the run and of each step (the mean cost of the agent's "
        "last 50 completed runs; null without history), ``cost_estimate_per_item_usd`` of a map step."
    )
