"""Bodies of the optimizer's datasets (``/v1/agents/{id}/datasets``, ``/v1/datasets/{id}``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from api.schemas import MAX_INPUT_CHARS, IsoDatetime
from api.version_schemas import AuthorPublic
from core.optimizer.datasets import Source, Split
from core.validation import CleanModel

MAX_EXAMPLES = 100_000
"""The most examples any dataset may hold (``AIMPACT_DATASET_MAX_EXAMPLES`` is at most this)."""
MAX_RUBRIC_CHARS = 10_000


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


Moment = Annotated[IsoDatetime, AfterValidator(_utc)]
"""An ISO 8601 date-time; one without an offset is read as UTC."""


class RunSelection(CleanModel):
    """Which completed single-turn runs of the agent become examples (newest first up to ``limit``).

    A run's score is the mean of its feedback scores. With ``min_score``, ``max_score`` or
    ``label`` only runs with feedback are taken; with ``min_score`` a run's output is the
    example's ``expected``.
    """

    min_score: float | None = Field(
        default=None, ge=0, le=1, allow_inf_nan=False, description="Lowest mean feedback score (inclusive)."
    )
    max_score: float | None = Field(
        default=None, ge=0, le=1, allow_inf_nan=False, description="Highest mean feedback score (inclusive)."
    )
    since: Moment | None = Field(default=None, description="Runs created at or after this time.")
    until: Moment | None = Field(default=None, description="Runs created before this time.")
    label: str | None = Field(
        default=None, min_length=1, max_length=100, description="Runs with a feedback entry of this label."
    )
    limit: int | None = Field(
        default=None,
        ge=1,
        le=MAX_EXAMPLES,
        description="Most runs taken (default: as many as the dataset has room for beside `examples`).",
    )


class ExampleIn(CleanModel):
    """One uploaded example."""

    input: str = Field(min_length=1, max_length=MAX_INPUT_CHARS, description="What the agent is asked.")
    expected: str | None = Field(default=None, max_length=MAX_INPUT_CHARS, description="The answer a metric expects.")
    rubric: str | None = Field(
        default=None, min_length=1, max_length=MAX_RUBRIC_CHARS, description="How a judge model should grade."
    )


class DatasetCreate(CleanModel):
    """``POST /v1/agents/{id}/datasets``: examples from the agent's runs, uploaded ones, or both.

    Rules beyond the schema (422 naming the field): together the sources give at least 3 distinct
    examples (one per split) and at most ``AIMPACT_DATASET_MAX_EXAMPLES``; ``from_runs.min_score``
    is not above ``from_runs.max_score``; ``from_runs.since`` is before ``from_runs.until``.
    """

    name: str = Field(min_length=1, max_length=200)
    from_runs: RunSelection | None = None
    examples: list[ExampleIn] | None = Field(default=None, max_length=MAX_EXAMPLES)


class SplitCounts(BaseModel):
    """How many examples each split holds."""

    train: int
    validation: int
    test: int


class DatasetPublic(BaseModel):
    """An immutable dataset of an agent."""

    id: str
    agent_id: str
    name: str
    size: int = Field(description="Distinct examples (identical ones are kept once).")
    hash: str = Field(description="SHA-256 of the canonical JSON of the examples, in order.")
    splits: SplitCounts
    source: Source
    filters: dict[str, Any] | None = Field(description="The `from_runs` selection used, if any.")
    created_by: AuthorPublic
    created_at: datetime


class ExamplePublic(BaseModel):
    """One example of a dataset."""

    id: str = Field(description="Stable: derived from `input`, `expected` and `rubric`.")
    position: int
    split: Split
    input: str
    expected: str | None
    rubric: str | None
    output: str | None = Field(description="The recorded answer of the run it came from.")
    source_run_id: str | None
    feedback_score: float | None = Field(description="The mean feedback score of that run.")
