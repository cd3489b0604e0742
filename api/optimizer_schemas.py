"""Bodies of optimizer runs (``/v1/agents/{id}/optimizer/runs``, ``/v1/optimizer/runs/{id}``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas import UsagePublic
from core.contracts.optimizer import Evaluation, OptimizerRunStatus
from core.optimizer.metrics import Metric
from core.validation import CleanModel

MAX_STRATEGIES = 10
MAX_EVALS = 10_000_000
"""The most ``budget.max_evals`` any run may ask (``AIMPACT_OPTIMIZER_MAX_EVALS`` is at most this)."""
MAX_COST_USD = 1_000_000.0
StrategyName = Literal["few_shot", "reflective", "model_swap"]
"""The strategies of ``core.optimizer.strategies.STRATEGIES``."""


class Budget(CleanModel):
    """What a run may spend: evaluations (one configuration on one example) and model cost."""

    max_evals: int | None = Field(
        default=None,
        description="Evaluations at most, cached ones included (default: AIMPACT_OPTIMIZER_DEFAULT_EVALS).",
    )
    max_cost_usd: float | None = Field(
        default=None, allow_inf_nan=False, description="Cost at most; no evaluation starts once it is spent."
    )


class OptimizerRunCreate(CleanModel):
    """``POST /v1/agents/{id}/optimizer/runs``.

    ``dataset_id`` defaults to the agent's newest dataset; ``metric`` to ``exact`` when every
    example has ``expected``; ``strategies`` to ``["few_shot"]``. Rules beyond the schema (422
    naming the field): the budget is above 0 and within the tenant caps, the metric can score
    the dataset's examples, every strategy exists, ``replay`` has a dataset built from runs.
    """

    dataset_id: str | None = Field(default=None, max_length=40)
    metric: Metric | None = None
    budget: Budget | None = None
    strategies: list[StrategyName] | None = Field(
        default=None, min_length=1, max_length=MAX_STRATEGIES, json_schema_extra={"uniqueItems": True}
    )
    auto_promote: bool = True
    evaluation: Evaluation = Field(
        default=Evaluation.SAFE,
        description="How the candidates' tool calls are answered. `safe`: from the example's recorded run when it"
        " has one, else by a pure tool (calculator, clock) run live, else refused. `replay`: every example is its"
        " recorded run replayed, tool calls answered from the recording only, any other call answered"
        " `not in recording` and counted (`progress.not_in_recording`); the dataset must be built from runs.",
    )


class CandidatePublic(BaseModel):
    """A configuration the run evaluated: its version, its validation score with interval and ``n``."""

    version: int
    strategy: str
    note: str
    score: float | None
    ci: list[float] | None = Field(description="`[lo, hi]`: the 95% bootstrap interval of the score.")
    n: int = Field(description="Validation examples the score is over.")
    stage: str = Field(
        description="`baseline`, `proposed`, `halving`, `stopped` (dropped at a rung), `chosen`, `tested`."
    )


class OptimizerBudgetPublic(BaseModel):
    """The budget and what was spent of it."""

    max_evals: int
    max_cost_usd: float
    evals_used: int


class OptimizerRunPublic(BaseModel):
    """An optimizer run: its progress, candidates, decision and spending."""

    id: str
    agent_id: str
    dataset_id: str | None = Field(description="None only for a scheduled run that failed before its dataset.")
    dataset_hash: str
    status: OptimizerRunStatus
    progress: dict[str, Any] | None
    baseline_version: int
    metric: dict[str, Any]
    strategies: list[str]
    auto_promote: bool
    evaluation: Evaluation
    candidates: list[CandidatePublic]
    winner: int | None = Field(description="The version compared with the baseline on the test split.")
    promoted: bool
    reason: str | None = Field(description="Why the run promoted or did not.")
    error: dict[str, Any] | None
    schedule_id: str | None = Field(default=None, description="The schedule that started the run.")
    budget: OptimizerBudgetPublic
    usage: UsagePublic
    created_at: datetime
    updated_at: datetime
