"""Who answers a candidate's tool calls outside a real run: the recording, a safe live call, or a refusal.

- :class:`RecordingAnswerer` answers a call from a recorded run when the tool name and the
  canonical JSON of the arguments (keys sorted, compact) equal a recorded call's. Recorded
  answers of equal calls are used once each, in recorded order; a call repeated more often
  than recorded gets the last of them again (the same question of the same recorded world).
  Nothing runs. A call not in the recording is counted (``unmatched``) and handed to the
  ``fallback`` answerer when there is one; otherwise, or when the fallback refuses too, the
  model reads ``error: not in recording: <tool>(<arguments>)``.
- :class:`SafeToolAnswerer` runs live only tools declared ``pure`` (self-contained: the
  calculator, the clock) and refuses every other call (HTTP requests, memory, tenant tools,
  ``run_agent``) with an error text, so an evaluation can never act on the world.
- ``RecordingAnswerer(recorded, fallback=SafeToolAnswerer(...))`` is the replay chain: the
  recording first, then a safe live call.

Each answer says where it came from (``answered_from``). Answerers keep per-run state
(recorded answers used, misses): build one per candidate run.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from core.contracts.llm import ToolCall
from core.optimizer.recordings import RecordedCall
from core.tools.base import ToolContext, ToolResolver
from core.tools.invoke import invalid_arguments, invoke, unknown_tool

AnsweredFrom = Literal["recording", "live", "refused"]
MAX_SHOWN_ARGUMENTS = 300
"""Longer arguments are cut to this many characters in a "not in recording" text."""


@dataclass(frozen=True)
class ToolAnswer:
    """The text the model reads for a call, whether it is an error, and where it came from."""

    text: str
    answered_from: AnsweredFrom
    is_error: bool = False


class ToolAnswerer(Protocol):
    """Answers a candidate's tool calls."""

    async def answer(self, call: ToolCall) -> ToolAnswer:
        """The answer to ``call`` (never raises for a call the model got wrong: that is an error answer)."""
        ...


def canonical_arguments(arguments: dict[str, Any]) -> str:
    """The arguments as compact JSON with sorted keys: equal arguments, equal text."""
    return json.dumps(arguments, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _refusal(text: str) -> str:
    return text.removeprefix("error: ")


class RecordingAnswerer:
    """Answers calls from a recording; see the module docstring for matching and reuse."""

    def __init__(self, recorded: Sequence[RecordedCall], *, fallback: ToolAnswerer | None = None):
        self._answers: dict[tuple[str, str], deque[RecordedCall]] = defaultdict(deque)
        for call in recorded:
            self._answers[(call.name, canonical_arguments(call.arguments))].append(call)
        self._fallback = fallback
        self.unmatched: list[ToolCall] = []
        """The calls the recording did not hold, in order (answered by the fallback or refused)."""

    async def answer(self, call: ToolCall) -> ToolAnswer:
        """The recorded answer, else the fallback's, else a "not in recording" error."""
        shown = canonical_arguments(call.arguments)
        queue = self._answers.get((call.name, shown))
        if queue:
            recorded = queue.popleft() if len(queue) > 1 else queue[0]
            return ToolAnswer(recorded.result, "recording", recorded.is_error)
        self.unmatched.append(call)
        if len(shown) > MAX_SHOWN_ARGUMENTS:
            shown = shown[:MAX_SHOWN_ARGUMENTS] + "…"
        missing = f"error: not in recording: {call.name}({shown})"
        if self._fallback is None:
            return ToolAnswer(missing, "refused", is_error=True)
        answer = await self._fallback.answer(call)
        if answer.answered_from == "refused":
            return ToolAnswer(f"{missing}; {_refusal(answer.text)}", "refused", is_error=True)
        return answer


class SafeToolAnswerer:
    """Runs ``pure`` tools live for the tenant; refuses every other call."""

    def __init__(self, tools: ToolResolver, tenant_id: str, *, run_id: str = ""):
        """``run_id`` names the evaluation in the tools' context (it derives their idempotency keys)."""
        self._tools = tools
        self._tenant_id = tenant_id
        self._run_id = run_id

    async def answer(self, call: ToolCall) -> ToolAnswer:
        """The live result of a pure tool, or a refusal saying why it did not run."""
        tool = await self._tools.get(self._tenant_id, call.name)
        if tool is None:
            return ToolAnswer(unknown_tool(call.name), "refused", is_error=True)
        if not tool.pure:
            text = f"error: {call.name} is not run here: it may act on or read the outside world"
            return ToolAnswer(text, "refused", is_error=True)
        problem = invalid_arguments(tool.schema, call.arguments)
        if problem is not None:
            return ToolAnswer(problem, "live", is_error=True)
        context = ToolContext(self._tenant_id, self._run_id, idempotency_key=f"{self._run_id}:{call.id}")
        outcome = await invoke(tool, call.arguments, context)
        return ToolAnswer(outcome.text, "live", outcome.is_error)
