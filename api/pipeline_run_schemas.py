"""Schemas of pipeline runs (``/v1/pipeline-runs``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.schemas import TemporalLink, UsagePublic
from core.validation import CleanModel


class PipelineStepPublic(BaseModel):
    """One step of a pipeline run (an item of map ``m`` is ``m[3]``)."""

    id: str
    type: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    attempts: int
    output: Any
    error: dict[str, Any] | None
    items: int | None = Field(
        default=None,
        description="A map step: its items recorded so far, paged by `GET …/steps?parent=<this id>` (else null).",
    )
    reused: bool = False
    """Taken from the run this one re-runs (``rerun_of``), not executed again."""


class PipelineRunPublic(BaseModel):
    """A pipeline run."""

    id: str
    pipeline_id: str
    version: int
    status: str
    input: Any
    output: Any
    steps: list[PipelineStepPublic] = Field(description="The top-level steps; a map's items are paged apart.")
    usage: UsagePublic
    error: dict[str, Any] | None
    rerun_of: str | None = None
    parent_run_id: str | None = Field(default=None, description="The run whose `pipeline` step started this one.")
    parent_step_id: str | None = Field(default=None, description="That step's id (`m[3]` for a map item).")
    reused_steps: list[str] = Field(default_factory=list)
    """The top-level steps whose records a re-run took from ``rerun_of`` (their map items too)."""
    schedule_id: str | None = None
    """The schedule that started the run, if one did."""
    created_at: datetime
    updated_at: datetime
    temporal: TemporalLink


class PipelineRunCreate(CleanModel):
    """Start a run of a pipeline: its current version unless ``version`` names another."""

    input: Any = Field(
        default=None,
        description="Any JSON (strings without NUL), checked against the definition's `inputs` schema.",
    )
    version: int | None = Field(default=None, ge=1, description="A saved version to run (default: the current one).")


class PipelineRerunCreate(CleanModel):
    """``POST /v1/pipeline-runs/{id}/rerun``: a new run from ``from_step``, of the run's version or ``version``."""

    from_step: str = Field(min_length=1, max_length=100, description="A top-level step id of the version run.")
    version: int | None = Field(
        default=None, ge=1, description="A saved version of the same pipeline (default: the run's version)."
    )


class PipelineApprovalCreate(CleanModel):
    """``POST /v1/pipeline-runs/{id}/approvals/{step_id}``."""

    decision: str = Field(pattern="^(approve|reject)$")
    comment: str | None = Field(default=None, max_length=2000)
