"""Bodies of counterfactual replays (``/v1/agents/{id}/replays``, ``/v1/replays/{id}``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from core.contracts.optimizer import OptimizerRunStatus
from core.optimizer.metrics import Metric
from core.validation import CleanModel

MAX_REPLAY_RUNS = 100
DEFAULT_SAMPLE = 10


class ReplayCreate(CleanModel):
    """``POST /v1/agents/{id}/replays``: ``version`` of the agent re-run on recorded runs.

    ``run_ids`` names completed runs of the agent; without it, ``sample`` (default 10) takes its
    most recent completed runs. ``metric`` scores both outputs: ``judge`` (with a ``rubric``) or
    ``regex``; a metric comparing with ``expected`` has nothing to compare with here. Without
    a metric the replay reports the outputs and tool calls, with no scores.
    """

    version: int = Field(ge=1, description="The candidate version of this agent.")
    run_ids: list[Annotated[str, Field(min_length=1, max_length=40)]] | None = Field(
        default=None, min_length=1, max_length=MAX_REPLAY_RUNS, json_schema_extra={"uniqueItems": True}
    )
    sample: int | None = Field(default=None, ge=1, le=MAX_REPLAY_RUNS)
    metric: Metric | None = None


class ReplayToolCallPublic(BaseModel):
    """One tool call of the candidate and its answer."""

    name: str
    arguments: dict[str, Any]
    answered_from: str = Field(
        description="`recording`, or `refused` (not in the recording, or a call the model got wrong)."
    )
    result: str
    is_error: bool


class ReplayRunPublic(BaseModel):
    """One replayed run: the recorded output, the candidate's, their scores and the candidate's tool calls."""

    run_id: str
    outcome: str = Field(description="`completed`, `step_limit`, or `failed` (`error` says why).")
    recorded_output: str | None
    candidate_output: str | None
    recorded_score: float | None
    recorded_reason: str | None
    candidate_score: float | None
    candidate_reason: str | None
    from_recording: int = Field(description="Tool calls answered from the recording.")
    not_in_recording: int = Field(description="Tool calls the recording did not hold (answered with an error).")
    tool_calls: list[ReplayToolCallPublic]
    error: dict[str, Any] | None


class ReplayPublic(BaseModel):
    """A replay: its runs, status, summary and (when read by id) each run's result."""

    id: str
    agent_id: str
    version: int
    status: OptimizerRunStatus
    run_ids: list[str]
    metric: dict[str, Any] | None
    summary: dict[str, Any] | None = Field(
        description="Once completed: `runs`, `failed`, `recorded_mean`, `candidate_mean` (null without scores), "
        "`from_recording`, `not_in_recording`, `runs_with_new_calls`, usage."
    )
    results: list[ReplayRunPublic] | None = Field(description="Per run, as replayed so far; null in lists.")
    error: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
