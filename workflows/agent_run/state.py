"""The mutable state of one ``AgentRunWorkflow`` execution, shared by its mixins."""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from core.contracts.agent_run import ApprovalDecision, StepView, UserMessage
    from core.contracts.llm import ChatMessage, ToolCall, Usage
    from core.ids import RUN_STATUS

from workflows.agent_run.patches import RUN_STATUS_ATTRIBUTE


@dataclass
class Plan:
    """Tool calls of the latest model answer that still have to run (resumable after a failure)."""

    assistant: ChatMessage
    assistant_key: str
    calls: list[ToolCall] = field(default_factory=list)


@dataclass
class Loop:
    """Mutable state of one run, exposed through the ``state`` query."""

    run_id: str = ""
    status: str = "queued"
    steps: list[StepView] = field(default_factory=list)
    output: str | None = None
    usage: Usage = field(default_factory=Usage)
    turn: int = 1
    step_offset: int = 0

    def next_step_id(self) -> str:
        return f"s{self.step_offset + len(self.steps) + 1}"


class RunState:
    """The run's state before any input is read, and the bookkeeping of its steps."""

    def __init__(self) -> None:
        self._loop = Loop()
        self._pending: list[UserMessage] = []
        self._decisions: dict[str, ApprovalDecision] = {}
        self._waiting: list[str] = []
        self._policy = "enqueue"
        self._in_turn = False
        self._interrupt = False
        self._retry = False
        self._closed = False
        self._plan: Plan | None = None
        self._received = 0
        self._message_prefix = "m"
        self._listed_status: str | None = None

    def _set_status(self, status: str) -> None:
        """The run's status, also written to its ``RunStatus`` search attribute for Temporal's lists."""
        self._loop.status = status
        if status != self._listed_status and workflow.patched(RUN_STATUS_ATTRIBUTE):
            workflow.upsert_search_attributes([RUN_STATUS.value_set(status)])
            self._listed_status = status

    def _begin_step(self, kind: str, name: str, *, status: str = "running") -> str:
        step_id = self._loop.next_step_id()
        self._loop.steps.append(StepView(id=step_id, kind=kind, name=name, status=status))
        return step_id

    def _end_step(self, step_id: str, *, status: str = "completed") -> None:
        for step in self._loop.steps:
            if step.id == step_id:
                step.status = status
