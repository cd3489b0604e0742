"""Bodies of online experiments (``/v1/agents/{id}/experiments``, ``/v1/experiments/{id}``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.version_schemas import AuthorPublic
from core.optimizer.experiment_store import ExperimentStatus, Outcome
from core.validation import CleanModel

MAX_VERSION = 2**31 - 1


class ExperimentCreate(CleanModel):
    """``POST /v1/agents/{id}/experiments``: the agent's current version against ``candidate_version``."""

    candidate_version: int = Field(ge=1, le=MAX_VERSION, description="A version of this agent, not its current one.")
    traffic: float = Field(
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="The candidate's share of new subjects (or threads) until every arm has `min_samples` scores,"
        " in (0, 1]; then Thompson sampling allocates new subjects. A subject keeps the arm of its first run.",
    )
    metric: Literal["feedback"] = Field(default="feedback", description="What rewards an arm: feedback scores.")
    min_samples: int = Field(
        default=30, ge=2, le=100_000, description="Scores (and finished runs) each arm needs before a decision."
    )
    auto_promote: bool = Field(default=True, description="Make the candidate current when it wins.")


class ArmPublic(BaseModel):
    """One arm of an experiment: its version and feedback statistics."""

    arm: Literal["control", "candidate"]
    version: int
    n: int = Field(description="Feedback scores counted.")
    mean: float | None = Field(description="Mean feedback score (`null` without any).")
    p_best: float = Field(description="Posterior probability that this arm has the higher mean.")


class ExperimentPublic(BaseModel):
    """An online experiment between an agent's versions."""

    id: str
    agent_id: str
    status: ExperimentStatus
    control_version: int
    candidate_version: int
    traffic: float = Field(
        description="The candidate's share of new subjects until every arm has `min_samples` scores."
    )
    candidate_share: float = Field(
        description="The candidate's share of new subjects now: `traffic`, then the Thompson allocation."
    )
    metric: Literal["feedback"]
    min_samples: int
    auto_promote: bool
    arms: list[ArmPublic]
    decision: Outcome | None = Field(description="How it ended (`null` while running).")
    reason: str | None = Field(description="Why it ended, or where the decision stands.")
    created_by: AuthorPublic
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
