"""What the optimizer workflow and its activities exchange (Temporal payloads: small, ids rather than texts).

Examples travel as ids: an evaluation reads their texts from the dataset, and a configuration
is an agent version (candidates become versions before they are evaluated), so a history
holds scores, never outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

WORKFLOW_NAME = "OptimizerWorkflow"
PROGRESS_QUERY = "progress"

OPTIMIZER_FAILED = "OptimizerFailed"
"""A run that cannot go on (its dataset, agent or baseline is gone)."""
JUDGE_FAILED = "JudgeFailed"
"""The judge model failed after its retries (the message names it)."""
STRATEGY_FAILED = "StrategyFailed"
TOO_FEW_EXAMPLES = "OptimizerTooFewExamples"
"""A scheduled run found fewer runs with good feedback than a dataset's splits need."""
AGENT_ARCHIVED = "AgentArchived"
"""A scheduled run of an agent archived since its schedule was set."""
DATASET_LIMIT = "DatasetLimitReached"
"""A scheduled run's dataset would pass the tenant's dataset quota."""
RUN_QUOTA = "OptimizerRunQuotaExceeded"
"""A scheduled run while the tenant already has as many live optimizer runs as it may."""


class OptimizerRunStatus(StrEnum):
    """Where an optimizer run is."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATUSES = (OptimizerRunStatus.COMPLETED, OptimizerRunStatus.FAILED, OptimizerRunStatus.CANCELLED)


class Evaluation(StrEnum):
    """How an evaluation answers the candidate's tool calls."""

    SAFE = "safe"
    """From the example's recorded run when it has one, else by a ``pure`` tool run live, else refused."""
    REPLAY = "replay"
    """Each example is its recorded run replayed: from the recording only; any other call is "not in recording"."""


@dataclass
class Spent:
    """Evaluations scored (cached ones included) and paid (not cached), what the paid ones cost, and the tool calls
    of the scored ones: answered from their recordings, or not in them (each evaluation with one counted once more)."""

    evals: int = 0
    paid: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    from_recording: int = 0
    not_in_recording: int = 0
    evals_with_new_calls: int = 0

    def add(self, other: Spent) -> None:
        """Add ``other`` to this."""
        self.evals += other.evals
        self.paid += other.paid
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd
        self.from_recording += other.from_recording
        self.not_in_recording += other.not_in_recording
        self.evals_with_new_calls += other.evals_with_new_calls


@dataclass
class CandidateRecord:
    """A configuration of the run: the baseline (``strategy`` ``baseline``) or a proposed version."""

    version: int
    strategy: str
    note: str = ""
    score: float | None = None
    ci: list[float] | None = None
    n: int = 0
    stage: str = "proposed"
    """``baseline``, ``proposed``, ``halving`` (still in), ``stopped`` (dropped at a rung), ``chosen``, ``tested``."""


@dataclass
class Carried:
    """What a run carries over a continue-as-new: everything it scored and chose so far."""

    prepared: Prepared | None = None
    candidates: list[CandidateRecord] | None = None
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    """Version (as text) → example id → score."""
    spent: Spent = field(default_factory=Spent)


@dataclass
class OptimizerRunInput:
    """What an ``OptimizerWorkflow`` optimizes, within what budget, with which settings."""

    tenant_id: str
    run_id: str
    agent_id: str
    dataset_id: str
    baseline_version: int
    metric: dict[str, Any]
    max_evals: int
    max_cost_usd: float
    strategies: list[str]
    auto_promote: bool
    seed: int = 0
    concurrency: int = 8
    batch_size: int = 10
    candidates_per_strategy: int = 3
    min_effect: float = 0.0
    history_limit: int = 0
    """Continue as new past this many history events (0: when Temporal suggests it)."""
    heartbeat_timeout_s: float = 15.0
    """How soon an evaluation of a worker that died is retried elsewhere."""
    carried: Carried | None = None
    schedule_id: str = ""
    """Set by a schedule, whose start has no run yet (``run_id`` empty): its first activity records it."""
    evaluation: str = Evaluation.SAFE.value


@dataclass
class ScheduledStart:
    """A schedule's fire: record its run (over a fresh dataset of the agent's well-rated runs) once."""

    tenant_id: str
    agent_id: str
    schedule_id: str
    workflow_id: str
    max_evals: int
    max_cost_usd: float
    strategies: list[str]
    auto_promote: bool


@dataclass
class ScheduledBegun:
    """The recorded run of a fire: what the workflow optimizes, or the typed error it was recorded failed with."""

    run_id: str
    dataset_id: str = ""
    baseline_version: int = 0
    metric: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    error: dict[str, Any] | None = None


@dataclass
class Prepared:
    """The dataset's example ids by split (position order) and the baseline's content hash."""

    dataset_hash: str
    train: list[str]
    validation: list[str]
    test: list[str]
    baseline_hash: str


@dataclass
class PrepareInput:
    tenant_id: str
    run_id: str
    agent_id: str
    dataset_id: str
    baseline_version: int


@dataclass
class EvaluateInput:
    """One configuration (an agent version) on a batch of examples of the run's dataset."""

    tenant_id: str
    run_id: str
    agent_id: str
    version: int
    dataset_id: str
    example_ids: list[str]
    metric: dict[str, Any]
    evaluation: str = Evaluation.SAFE.value


@dataclass
class Evaluated:
    """Scores by example id and what they cost (``spent.paid``: the ones not read from the cache)."""

    scores: dict[str, float]
    spent: Spent


@dataclass
class ProposeInput:
    """Run the strategies on the baseline's scored training examples; idempotent for the run."""

    tenant_id: str
    run_id: str
    agent_id: str
    baseline_version: int
    dataset_id: str
    train_scores: dict[str, float]
    metric: dict[str, Any]
    strategies: list[str]
    count: int
    seed: int
    evaluation: str = Evaluation.SAFE.value


@dataclass
class RecordInput:
    """A projection write: progress, candidates and, once decided, the outcome."""

    tenant_id: str
    run_id: str
    status: str
    progress: dict[str, Any]
    candidates: list[CandidateRecord]
    spent: Spent
    winner: int | None = None
    reason: str | None = None
    error: dict[str, Any] | None = None


@dataclass
class PromoteInput:
    tenant_id: str
    run_id: str
    agent_id: str
    version: int
    baseline_version: int
