"""Bodies of ``/v1/recommendations``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from core.contracts.recommend import RecommendationKind, RecommendationStatus
from core.validation import CleanModel


class ExpectedGainPublic(BaseModel):
    """What applying is expected to gain, in a unit a person reads, and the assumption it rests on."""

    quantity: float
    unit: str = Field(description="`fewer failed calls per 1,000 runs`, `USD saved per 1,000 runs`, …")
    assumption: str | None = None


class RecommendationPublic(BaseModel):
    """A suggested change with its evidence, the action apply performs, its status and, once applied, its outcome."""

    id: str
    kind: RecommendationKind
    rule: str = Field(description="The rule that found it: `tool.failure_rate`, `pipeline.concurrency`, …")
    target: dict[str, Any] = Field(
        description="`{type: agent, agent_id, tool?|model?|field?}` or `{type: pipeline, pipeline_id, step_id, need?}`."
    )
    title: str
    evidence: dict[str, Any] = Field(
        description="`metric` {name, value, ci: [lo, hi], n, unit, confidence, method}: the headline number with its"
        " 95% interval; `numbers` (rule-specific counts and intervals); `example_run_ids`; `window` {since, until,"
        " runs}; for a model switch, `check`: the counterfactual replay to run first when none was."
    )
    expected_gain: ExpectedGainPublic
    action: dict[str, Any] = Field(
        description="What apply does: `{type: agent_version|pipeline_version|optimizer_run, from_version, ops|dataset,"
        " summary, requires}`; `requires` is the permission apply needs besides `recommendations:write`."
    )
    basis: dict[str, Any] = Field(
        description="The version the evidence was computed on; apply answers 409 once it is no longer current."
    )
    status: RecommendationStatus
    status_reason: str | None = Field(default=None, description="Why it is stale, or why it was dismissed.")
    previous_id: str | None = Field(
        default=None, description="The dismissed or applied recommendation of the same finding this one follows."
    )
    result: dict[str, Any] | None = Field(
        default=None,
        description="What apply made: `agent_version`, `pipeline_version`, or `dataset_id` and `optimizer_run_id`.",
    )
    outcome: dict[str, Any] | None = Field(
        default=None,
        description="After apply: `status` measuring|measured, `runs` of the change so far and `needed`; once"
        " measured, `before` and `after` with intervals and `measured_gain` next to `expected_gain`.",
    )
    decided_by: str | None = None
    decided_at: datetime | None = None
    seen_at: datetime = Field(description="The latest mining pass that found it.")
    created_at: datetime
    updated_at: datetime


class RecommendationDismiss(CleanModel):
    """Why the recommendation is dismissed (kept with it and in the audit log)."""

    reason: str | None = Field(default=None, max_length=2000)


class RefreshPublic(BaseModel):
    """The mining pass the refresh started, or the one already running that it joined."""

    workflow_id: str
    run_id: str | None
    reused: bool = Field(description="A pass was already running: this is that pass.")
    ui_url: str
