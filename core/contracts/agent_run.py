"""Contracts of ``AgentRunWorkflow`` and its activities."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.contracts.llm import ChatMessage, LlmResponse, ModelConfig, ToolCall, ToolSchema, Usage


@dataclass
class AgentRunInput:
    """Start argument of ``AgentRunWorkflow``; carries references, not content."""

    tenant_id: str
    run_id: str
    agent_id: str
    agent_version: int
    max_steps: int = 12
    heartbeat_timeout_s: float = 15.0


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
    """Marks a run as running and loads what the loop needs."""

    tenant_id: str
    run_id: str
    agent_id: str
    agent_version: int


@dataclass
class BegunRun:
    """The agent version's loop configuration and the opening conversation."""

    model: ModelConfig
    messages: list[ChatMessage]
    tools: list[ToolSchema] = field(default_factory=list)
    bindings: list[ToolBinding] = field(default_factory=list)


@dataclass
class LlmStepInput:
    """One model call, recorded as step ``step_id`` of the run."""

    tenant_id: str
    run_id: str
    step_id: str
    model: ModelConfig
    messages: list[ChatMessage]
    tools: list[ToolSchema] = field(default_factory=list)


@dataclass
class LlmStepResult:
    """The model's answer for a step."""

    response: LlmResponse


@dataclass
class ToolStepInput:
    """One tool call, recorded as step ``step_id`` of the run."""

    tenant_id: str
    run_id: str
    step_id: str
    call: ToolCall
    permitted: bool = True


@dataclass
class ToolStepResult:
    """What the tool returned, as text for the model; ``is_error`` if it failed."""

    content: str
    is_error: bool = False
    data: Any = None


@dataclass
class FinishRunInput:
    """Final projection write: completed with output, or failed with an error."""

    tenant_id: str
    run_id: str
    status: str
    output: str | None = None
    error: dict[str, Any] | None = None
    usage: Usage = field(default_factory=Usage)


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


@dataclass
class AgentRunResult:
    """Result of a completed ``AgentRunWorkflow``."""

    run_id: str
    output: str
    usage: Usage = field(default_factory=Usage)
    steps: int = 0


@dataclass
class StateQuery:
    """Argument of the ``state`` query (none needed today)."""

    include_steps: bool = True
