"""Contracts of ``AgentRunWorkflow`` and its activities.

Workflow payloads carry references and small values: the conversation itself
lives in ``thread_message`` rows and large values in ``payload_blob`` rows.
New fields always get defaults so that recorded histories keep decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from core.contracts.llm import ChatMessage, LlmResponse, ModelConfig, ToolCall, ToolSchema, Usage

AGENT_RUN_WORKFLOW = "AgentRunWorkflow"
"""Workflow type name of ``AgentRunWorkflow`` (what a parent starts as a child by name)."""


class RunStatus(StrEnum):
    """Status of an agent run; the value is what the projection stores and the API shows."""

    QUEUED = "queued"
    RUNNING = "running"
    WAITING_APPROVAL = "waiting_approval"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    FINAL: ClassVar[frozenset[RunStatus]]
    """The run has an outcome (a failed run may still be retried)."""
    ACTIVE: ClassVar[frozenset[RunStatus]]
    """The run holds a slot of the tenant's concurrent-run quota."""


RunStatus.FINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})
RunStatus.ACTIVE = frozenset(RunStatus) - RunStatus.FINAL


class StepKind(StrEnum):
    """Kind of a run step."""

    LLM = "llm"
    TOOL = "tool"
    APPROVAL = "approval"
    MEMORY = "memory"


class StepStatus(StrEnum):
    """Status of a run step."""

    RUNNING = "running"
    WAITING = "waiting"
    """An approval step waiting for its decision."""
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    """An approval step whose tool call was rejected."""


INLINE_LIMIT_BYTES = 64 * 1024
"""Values above this size are stored in PostgreSQL and passed by reference."""


@dataclass
class CarryOver:
    """State handed to the next run of the workflow after continue-as-new."""

    turn: int = 0
    steps: int = 0
    usage: Usage = field(default_factory=Usage)
    pending: list[UserMessage] = field(default_factory=list)
    begun: BegunRun | None = None
    received: int | None = None
    """Messages received so far (ids ``m{n}`` stay unique for the life of the run); ``None``: carried before it."""


@dataclass
class AgentRunInput:
    """Start argument of ``AgentRunWorkflow``; carries references, not content."""

    tenant_id: str
    run_id: str
    agent_id: str
    agent_version: int
    max_steps: int = 12
    heartbeat_timeout_s: float = 15.0
    thread_id: str = ""
    idle_timeout_s: float = 0.0
    """How long a completed turn waits for the next message before the run closes."""
    retry_window_s: float = 0.0
    """How long a failed run waits for ``POST /v1/runs/{id}/retry`` before it closes."""
    max_turns_per_execution: int = 50
    carry: CarryOver | None = None


@dataclass
class ToolBinding:
    """A tool attached to an agent version with its per-agent options."""

    name: str
    requires_approval: bool = False
    approval_timeout_s: float | None = None
    timeout_s: float | None = None
    max_attempts: int | None = None


@dataclass
class BeginRunInput:
    """Marks a run as running, loads what the loop needs, appends the first user message."""

    tenant_id: str
    run_id: str
    agent_id: str
    agent_version: int
    thread_id: str = ""


@dataclass
class BegunRun:
    """The agent version's loop configuration."""

    model: ModelConfig
    messages: list[ChatMessage] = field(default_factory=list)
    """Unused since conversations live in the thread; kept so old histories decode."""
    tools: list[ToolSchema] = field(default_factory=list)
    bindings: list[ToolBinding] = field(default_factory=list)
    double_texting: str = "enqueue"
    thread_id: str = ""
    parallel_tool_calls: bool = True
    """Run the tool calls of one model answer concurrently (each still its own durable step)."""


@dataclass
class UserMessage:
    """A message sent to a running conversation (``POST /v1/runs/{id}/messages``)."""

    id: str
    text: str


@dataclass
class StartTurnInput:
    """Appends the turn's user messages to the thread and marks the run running."""

    tenant_id: str
    run_id: str
    thread_id: str
    turn: int
    messages: list[UserMessage] = field(default_factory=list)
    interrupted_step_id: str | None = None


@dataclass
class LlmStepInput:
    """One model call, recorded as step ``step_id`` of the run; the prompt is read from the thread."""

    tenant_id: str
    run_id: str
    step_id: str
    model: ModelConfig
    messages: list[ChatMessage] = field(default_factory=list)
    """Unused since conversations live in the thread; kept so old histories decode."""
    tools: list[ToolSchema] = field(default_factory=list)
    thread_id: str = ""
    agent_id: str = ""
    agent_version: int = 0


@dataclass
class LlmStepResult:
    """The model's answer for a step (content over the inline limit is in ``content_ref``)."""

    response: LlmResponse
    content_ref: str | None = None


@dataclass
class ToolStepInput:
    """One tool call, recorded as step ``step_id`` of the run."""

    tenant_id: str
    run_id: str
    step_id: str
    call: ToolCall
    permitted: bool = True
    thread_id: str = ""
    assistant: ChatMessage | None = None
    """The model message that asked for this call, appended to the thread first (once)."""
    assistant_key: str | None = None
    rejection: str | None = None
    """Set when a human rejected the call: the tool is not run and the model is told why."""
    outcome: ToolStepResult | None = None
    """Set when the workflow already ran the call (``run_agent``): only record it."""


@dataclass
class ToolStepResult:
    """What the tool returned (a preview for the workflow; the full text is in the thread)."""

    content: str
    is_error: bool = False
    data: Any = None


@dataclass
class ChildRunInput:
    """Creates (once) the run of another agent that a ``run_agent`` call asked for."""

    tenant_id: str
    parent_run_id: str
    step_id: str
    agent_id: str
    input: str


@dataclass
class ChildRun:
    """The child run to start, or why it cannot be."""

    run_id: str = ""
    agent_id: str = ""
    agent_version: int = 0
    thread_id: str = ""
    workflow_id: str = ""
    error: str | None = None


@dataclass
class ApprovalInput:
    """Records an approval step: requested (``decision`` unset) or decided."""

    tenant_id: str
    run_id: str
    step_id: str
    tool_step_id: str
    call: ToolCall
    decision: str | None = None
    decided_by: str | None = None
    comment: str | None = None
    deadline_s: float | None = None


@dataclass
class ApprovalDecision:
    """Argument of the ``decide_approval`` update."""

    step_id: str
    decision: str
    decided_by: str
    comment: str | None = None


@dataclass
class FinishRunInput:
    """Final projection write of a turn or run: completed with output, failed or cancelled."""

    tenant_id: str
    run_id: str
    status: str
    output: str | None = None
    error: dict[str, Any] | None = None
    usage: Usage = field(default_factory=Usage)
    thread_id: str = ""
    turn: int = 0
    answer: ChatMessage | None = None
    answer_key: str | None = None
    output_ref: str | None = None


@dataclass
class FinishRunResult:
    """Webhook deliveries to start for the event this finish produced, and the task queue they run on."""

    delivery_ids: list[str] = field(default_factory=list)
    webhooks_task_queue: str = ""
    """``""`` (results recorded before deliveries had their own queue): the run's own task queue."""


@dataclass(kw_only=True)
class CloseRunInput:
    """Announces on the run's event stream that its workflow ends (``run.closed``)."""

    tenant_id: str
    run_id: str
    status: str = ""
    """The run's status as it ends: ``completed``, ``failed`` or ``cancelled``."""
    turn: int = 1
    """The run's last turn."""


@dataclass
class SendMessage:
    """Argument of the ``send_message`` update."""

    text: str
    message_id: str = ""


@dataclass
class MessageAccepted:
    """Answer of the ``send_message`` update."""

    message_id: str
    turn: int
    policy: str


@dataclass
class RetryRequest:
    """Argument of the ``retry`` update."""

    requested_by: str = ""


@dataclass
class StepView:
    """A step as the ``state`` query reports it."""

    id: str
    kind: str
    name: str
    status: str


@dataclass
class RunStateView:
    """Answer of the ``state`` query."""

    run_id: str
    status: str
    steps: list[StepView] = field(default_factory=list)
    output: str | None = None
    usage: Usage = field(default_factory=Usage)
    turn: int = 0
    waiting_approval: list[str] = field(default_factory=list)
    pending_messages: int = 0


@dataclass
class AgentRunResult:
    """Result of a finished ``AgentRunWorkflow``."""

    run_id: str
    output: str
    usage: Usage = field(default_factory=Usage)
    steps: int = 0
    turns: int = 1


@dataclass
class StateQuery:
    """Argument of the ``state`` query."""

    include_steps: bool = True
