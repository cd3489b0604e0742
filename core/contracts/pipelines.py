"""Contracts of ``PipelineWorkflow``: statuses, error types and the dataclasses it exchanges.

A pipeline run interprets one immutable version of a tenant's definition, passed as a JSON
snapshot in ``PipelineRunInput.definition``; the domain rules (parsing, validation, CEL,
scheduling) live in ``core.pipelines``. Payloads carry step outputs inline only while they
are small (``core.pipelines.expressions.MAX_VALUE_BYTES``).
New fields always get defaults so that recorded histories keep decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

WORKFLOW_NAME = "PipelineWorkflow"
MAP_CHUNK_WORKFLOW_NAME = "PipelineMapChunkWorkflow"
"""Runs a slice of a large map's items for its ``PipelineWorkflow`` (``workflows.pipeline_map``)."""
DECIDE_APPROVAL_UPDATE = "decide_approval"
CANCEL_UPDATE = "cancel"
STATE_QUERY = "state"


class PipelineRunStatus(StrEnum):
    """Status of a pipeline run; the value is what the projection stores and the API shows."""

    QUEUED = "queued"
    RUNNING = "running"
    WAITING_APPROVAL = "waiting_approval"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    FINAL: ClassVar[frozenset[PipelineRunStatus]]
    """The run has an outcome."""


PipelineRunStatus.FINAL = frozenset(
    {PipelineRunStatus.COMPLETED, PipelineRunStatus.FAILED, PipelineRunStatus.CANCELLED}
)


class PipelineStepStatus(StrEnum):
    """Status of one step of a pipeline run."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING_APPROVAL = "waiting_approval"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    FINAL: ClassVar[frozenset[PipelineStepStatus]]
    """The step will not change any more (in this run)."""
    STARTED: ClassVar[frozenset[PipelineStepStatus]]
    """The step was started and has not ended."""


PipelineStepStatus.FINAL = frozenset(
    {
        PipelineStepStatus.COMPLETED,
        PipelineStepStatus.FAILED,
        PipelineStepStatus.SKIPPED,
        PipelineStepStatus.CANCELLED,
    }
)
PipelineStepStatus.STARTED = frozenset({PipelineStepStatus.RUNNING, PipelineStepStatus.WAITING_APPROVAL})


class StepType(StrEnum):
    """The kinds of steps a definition may contain."""

    AGENT = "agent"
    TOOL = "tool"
    APPROVAL = "approval"
    WAIT = "wait"
    MAP = "map"
    PIPELINE = "pipeline"


class OnError(StrEnum):
    """What a step's failure does to its run."""

    FAIL = "fail"
    """The run fails (steps still running are cancelled)."""
    CONTINUE = "continue"
    """The step is recorded ``failed`` with its error and counts as done for the steps that need it."""


class OnTimeout(StrEnum):
    """What an approval step's unanswered deadline decides."""

    REJECT = "reject"
    APPROVE = "approve"


class OnConcurrencyLimit(StrEnum):
    """What starting a run does when its pipeline already has ``max_concurrent_runs`` live runs."""

    QUEUE = "queue"
    """The run waits ``queued`` until a slot frees (first come, first served)."""
    REJECT = "reject"
    """The start is refused (429 ``pipeline-concurrency-limit``)."""


# Error types (``ApplicationError.type`` and ``error.type`` of a step or run).
DEFINITION_INVALID = "PipelineDefinitionInvalid"
"""A snapshot that does not parse (cannot happen for a saved version; guards the workflow)."""
INPUT_INVALID = "PipelineInputInvalid"
"""A run input that does not match the definition's ``inputs`` schema."""
EXPRESSION_ERROR = "PipelineExpressionError"
"""A CEL expression or ``${…}`` template failed at run time (missing key, wrong type, limit)."""
STEP_FAILED = "PipelineStepFailed"
"""The run failed because a step with ``on_error: fail`` failed; ``step_id`` names it."""
STEP_TIMED_OUT = "PipelineStepTimedOut"
APPROVAL_REJECTED = "PipelineApprovalRejected"
APPROVAL_TIMED_OUT = "PipelineApprovalTimedOut"
MAP_TOO_LARGE = "PipelineMapTooLarge"
"""A ``map`` step's ``over`` produced more items than the fan-out limit."""
BUDGET_EXCEEDED = "PipelineBudgetExceeded"
"""The run's agent steps cost more than the definition's ``budget_usd`` (``spent_usd``, ``budget_usd``)."""
CONCURRENCY_LIMIT = "PipelineConcurrencyLimit"
"""``pipeline.claim_slot``: no slot free yet (retried until one is)."""
PIPELINE_NOT_FOUND = "PipelineNotFound"
PIPELINE_TOO_DEEP = "PipelineTooDeep"
"""Sub-pipelines nested deeper than ``MAX_PIPELINE_DEPTH`` (a pipeline calling itself)."""

SUB_RUN_FAILED = "PipelineSubRunFailed"
"""A ``pipeline`` step's child run failed; ``run_id`` names it and ``cause`` holds its error."""
RUN_QUOTA_EXCEEDED = "PipelineRunQuotaExceeded"
"""A scheduled run (recorded failed, not started) or a `pipeline` step (failed) found the tenant at its run quota."""
PIPELINE_ARCHIVED = "PipelineArchived"
"""A scheduled run found its pipeline archived (or gone)."""

MAX_PIPELINE_DEPTH = 5
"""Sub-pipeline runs nested inside one top-level run (``PipelineRunInput.depth``)."""
MAX_STEP_OUTPUT_BYTES = 256 * 1024
"""JSON size of one step's output (a map's: ``MAX_MAP_OUTPUT_BYTES``); larger fails the step."""
MAX_MAP_OUTPUT_BYTES = 1024 * 1024
"""JSON size of a map's output, its items' outputs together (also what an expression can see)."""
MAX_RUN_PAYLOAD_BYTES = 12 * 1024 * 1024
"""JSON size of what the steps run in one history (a run's, or a map chunk's) take (rendered fields,
sub-pipeline definitions) and give (outputs), all together."""


@dataclass(kw_only=True)
class StepRecord:
    """What a run knows about one step: the scheduler's input, the ``state`` query's source."""

    status: str = PipelineStepStatus.PENDING
    output: Any = None
    error: dict[str, Any] | None = None
    """``{type, message, ...}`` of a failed step (``expression`` too for CEL errors)."""
    attempts: int = 0
    reused: bool = False
    """Copied from an earlier run by a re-run (not executed again)."""


@dataclass(kw_only=True)
class PipelineRunInput:
    """Start argument of ``PipelineWorkflow``: the version's definition travels as a snapshot."""

    tenant_id: str
    run_id: str
    pipeline_id: str
    version: int
    definition: dict[str, Any]
    """The saved version's definition JSON (validated when saved)."""
    input: Any = None
    """The run's input, already checked against the definition's ``inputs`` schema."""
    reused_steps: dict[str, StepRecord] = field(default_factory=dict)
    """A re-run's records of the steps that do not depend on ``from_step`` (kept as they were)."""
    rerun_of: str = ""
    """The run this one re-runs, if any."""
    parent_run_id: str = ""
    """The run whose ``pipeline`` step started this one, if any."""
    depth: int = 0
    """Sub-pipeline nesting of this run (0 for a top-level run)."""
    parent_step_id: str = ""
    """The step of ``parent_run_id`` that started this run (``m[3]`` for a map item)."""
    schedule_id: str = ""
    """Set by a schedule's action, which cannot know the run: with ``run_id`` empty, the workflow's first
    activity records the run and resolves ``version`` (0: the current one) and ``definition``."""


@dataclass(kw_only=True)
class PipelineApprovalDecision:
    """Argument of the ``decide_approval`` update."""

    step_id: str
    decision: str
    """``approve`` or ``reject``."""
    decided_by: str
    comment: str | None = None


@dataclass(kw_only=True)
class CancelRequest:
    """Argument of the ``cancel`` update."""

    requested_by: str = ""


@dataclass(kw_only=True)
class PipelineStepView:
    """A step as the ``state`` query reports it."""

    id: str
    type: str
    status: str
    attempts: int = 0
    error: dict[str, Any] | None = None


@dataclass(kw_only=True)
class PipelineStateView:
    """Answer of the ``state`` query."""

    run_id: str
    status: str
    steps: list[PipelineStepView] = field(default_factory=list)
    waiting_approval: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class PipelineRunResult:
    """Result of a finished ``PipelineWorkflow``."""

    run_id: str
    status: str
    output: Any = None
    error: dict[str, Any] | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    """The run's usage (its agent steps and sub-pipelines), which a parent run adds to its own."""


# --- activities ------------------------------------------------------------------------

TOOL_FAILED = "PipelineToolFailed"
"""A tool step's tool raised (retried per the step's ``retry``)."""
TOOL_INVALID = "PipelineToolInvalid"
"""A tool step names an unknown tool or passes arguments its schema refuses (not retried)."""
OUTPUT_TOO_LARGE = "PipelineOutputTooLarge"
"""A step's output is larger than ``MAX_STEP_OUTPUT_BYTES`` (a map's than ``MAX_MAP_OUTPUT_BYTES``), or
the run's steps took and gave more than ``MAX_RUN_PAYLOAD_BYTES``."""


@dataclass(kw_only=True)
class StepWriteView:
    """One step's state for the projection (``pipeline_run_step``)."""

    step_id: str
    type: str
    status: str
    attempts: int = 0
    started_at: str | None = None
    """RFC 3339 (workflow time)."""
    ended_at: str | None = None
    output: Any = None
    error: dict[str, Any] | None = None


@dataclass(kw_only=True)
class ProjectionWrite:
    """Argument of ``pipeline.project``: the run's live status and steps that changed."""

    tenant_id: str
    run_id: str
    status: str = ""
    """``running`` / ``waiting_approval``, or ``""`` to leave it."""
    steps: list[StepWriteView] = field(default_factory=list)
    workflow_run_id: str = ""


@dataclass(kw_only=True)
class FinishRunInput:
    """Argument of ``pipeline.finish``: the run's outcome and usage."""

    tenant_id: str
    run_id: str
    status: str
    output: Any = None
    error: dict[str, Any] | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(kw_only=True)
class ClaimSlotInput:
    """Argument of ``pipeline.claim_slot``: take one of the pipeline's ``limit`` slots (fails until one is free)."""

    tenant_id: str
    run_id: str
    pipeline_id: str
    limit: int


@dataclass(kw_only=True)
class WebhookDeliveries:
    """What ``pipeline.project`` / ``pipeline.finish`` return when an event they announced has webhook deliveries."""

    delivery_ids: list[str] = field(default_factory=list)
    webhooks_task_queue: str = ""


@dataclass(kw_only=True)
class ToolStepInput:
    """Argument of ``pipeline.tool``: one attempt of a tool step."""

    tenant_id: str
    run_id: str
    step_id: str
    tool: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class ToolStepOutput:
    """What ``pipeline.tool`` returns: the tool's result and the attempt that produced it."""

    output: Any = None
    attempts: int = 1


@dataclass(kw_only=True)
class AgentStepInput:
    """Argument of ``pipeline.agent_run``: creates (once) the agent run of an ``agent`` step."""

    tenant_id: str
    run_id: str
    step_id: str
    agent_id: str
    input: str


@dataclass(kw_only=True)
class AgentStepRun:
    """The agent run to start as a child workflow (``error`` when the agent does not exist)."""

    run_id: str = ""
    agent_id: str = ""
    agent_version: int = 0
    thread_id: str = ""
    workflow_id: str = ""
    task_queue: str = ""
    max_steps: int = 12
    heartbeat_timeout_s: float = 15.0
    error: str | None = None


@dataclass(kw_only=True)
class SubRunInput:
    """Argument of ``pipeline.sub_run``: creates (once) the child run of a ``pipeline`` step."""

    tenant_id: str
    run_id: str
    step_id: str
    pipeline_id: str
    input: Any = None


@dataclass(kw_only=True)
class ScheduledRunStart:
    """Argument of ``pipeline.begin_scheduled``: the schedule's start request, for the workflow ``workflow_id``."""

    tenant_id: str
    pipeline_id: str
    schedule_id: str
    workflow_id: str
    version: int = 0
    """A pinned version, or 0 for the pipeline's current one."""
    input: Any = None


@dataclass(kw_only=True)
class SubRun:
    """The child pipeline run to start as a child workflow (``error`` when it cannot start)."""

    run_id: str = ""
    pipeline_id: str = ""
    version: int = 0
    definition: dict[str, Any] = field(default_factory=dict)
    workflow_id: str = ""
    error: dict[str, Any] | None = None
    """``{type, message, errors?}``: the pipeline is unknown or archived, or the input fails its schema."""


@dataclass(kw_only=True)
class MapChunkItem:
    """One prepared item of a chunk: its index in the map and its step's rendered fields."""

    index: int
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class MapChunkInput:
    """Start argument of ``PipelineMapChunkWorkflow``: items of map ``map_id`` of run ``run``."""

    run: PipelineRunInput
    """The run the map belongs to (its ``definition`` left empty)."""
    map_id: str
    step: dict[str, Any]
    """The map's item step (definition JSON)."""
    items: list[MapChunkItem] = field(default_factory=list)
    concurrency: int = 1
    """Items of this chunk in flight at once (its share of the map's ``max_concurrency``)."""
    output_budget: int = MAX_MAP_OUTPUT_BYTES
    """JSON bytes the chunk's item outputs may add up to (its share of ``MAX_MAP_OUTPUT_BYTES``)."""


@dataclass(kw_only=True)
class MapChunkResult:
    """The chunk's item records (in ``items`` order; ``None`` for items it did not start) and usage."""

    records: list[StepRecord | None] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(kw_only=True)
class ScheduledRun:
    """What ``pipeline.begin_scheduled`` recorded: the run to interpret, or ``error`` when it was recorded failed."""

    run_id: str
    version: int = 0
    definition: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
