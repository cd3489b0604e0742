"""Bodies of ``/v1/agents/{id}/optimizer/schedule``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.optimizer_schemas import Budget
from api.pipeline_schedule_schemas import CronExpression, ScheduledActionPublic
from core.validation import CleanModel


class OptimizerScheduleSet(CleanModel):
    """``PUT /v1/agents/{id}/optimizer/schedule``: create or replace the agent's optimizer schedule."""

    cron: CronExpression
    budget: Budget | None = Field(default=None, description="Each run's budget (the caps of optimizer runs apply).")
    auto_promote: bool = Field(default=True, description="Promote a significant winner.")


class OptimizerScheduleBudgetPublic(BaseModel):
    """What each scheduled run may spend."""

    max_evals: int
    max_cost_usd: float


class OptimizerSchedulePublic(BaseModel):
    """An agent's optimizer schedule; ``recent_actions`` name the optimizer runs its fires recorded."""

    id: str
    agent_id: str
    cron: str
    overlap: Literal["skip"] = Field(description="A fire while the previous run still runs is skipped.")
    budget: OptimizerScheduleBudgetPublic
    auto_promote: bool
    strategies: list[str]
    next_action_times: list[datetime]
    recent_actions: list[ScheduledActionPublic]
    created_at: datetime
    updated_at: datetime | None
