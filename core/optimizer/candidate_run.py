"""One agent configuration on one input, outside a real run: the engine of evaluations and replays.

``run_candidate`` loops as a real run's turn does (``workflows.agent_run.turn``): a model step
on the conversation so far, built by the same ``core.llm.prompt.agent_request`` (the
instructions, then the conversation), then the answer's tool calls, until an answer without
tool calls or ``max_steps`` model steps. What differs, by design:

- nothing is recorded: no run row, no steps, no thread, no events;
- the conversation is the input alone: no thread history and **no memory recall** (a
  candidate is measured on the input, not on what a subject's memories add);
- every tool call goes to the injected :class:`~core.optimizer.tool_answers.ToolAnswerer`
  (a recording, a safe live call, or a refusal), one at a time in the model's order, never to
  a tool that can act on the world; a call of a tool the configuration does not offer, or
  with arguments that do not fit the tool's schema, gets the real run's error text without
  reaching the answerer (answered ``refused``);
- no approvals: an approval guards an effect, and nothing here has one;
- the step bound ends the loop with the outcome ``step_limit`` (a real run fails with
  ``StepLimit``), so an evaluation scores it rather than crashing.

The caller resolves what the real path resolves (``activities.model_access.ModelAccess``): the
provider for ``config.model.provider``, the API key from the tenant's secrets behind the
egress check, and the tool schemas through the tenant's ``ToolResolver``. A provider failure
raises ``ProviderError`` for the caller's retry policy. Usage sums every model step; its cost
is the providers' (``core.llm.pricing``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from core.agents import AgentConfig
from core.contracts.llm import ChatMessage, ToolCall, ToolSchema, Usage
from core.llm.base import LlmProvider
from core.llm.prompt import agent_request
from core.optimizer.tool_answers import AnsweredFrom, ToolAnswer, ToolAnswerer
from core.tools.invoke import invalid_arguments, unknown_tool

CandidateOutcome = Literal["completed", "step_limit"]


@dataclass(frozen=True)
class CandidateToolCall:
    """One tool call of a candidate run: what was asked, what it got, and where the answer came from."""

    name: str
    arguments: dict[str, Any]
    answered_from: AnsweredFrom
    result: str
    is_error: bool = False


@dataclass
class CandidateOutput:
    """What a candidate run produced: ``output`` is the final answer (the last model text at ``step_limit``)."""

    outcome: CandidateOutcome
    output: str
    usage: Usage = field(default_factory=Usage)
    steps: int = 0
    """Model steps taken."""
    tool_calls: list[CandidateToolCall] = field(default_factory=list)

    def count(self, answered_from: AnsweredFrom) -> int:
        """How many tool calls were answered from ``answered_from``."""
        return sum(1 for call in self.tool_calls if call.answered_from == answered_from)


async def run_candidate(
    config: AgentConfig,
    input: str,
    *,
    provider: LlmProvider,
    answerer: ToolAnswerer,
    tools: Sequence[ToolSchema],
    max_steps: int,
    api_key: str | None = None,
) -> CandidateOutput:
    """Run ``config`` on ``input`` with tool calls answered by ``answerer``; see the module docstring.

    Args:
        config: The candidate agent configuration (its instructions and model are used).
        input: The user message.
        provider: The provider named by ``config.model.provider``.
        answerer: Answers every tool call the model makes.
        tools: The schemas offered to the model (the configuration's tools, resolved for the tenant).
        max_steps: The bound on model steps (the deployment's ``agent_max_steps`` for a faithful run).
        api_key: The model's API key, resolved as a real run resolves it.

    Raises:
        ValueError: ``provider`` is not the configuration's provider, or ``max_steps`` < 1.
        ProviderError: the model call failed.
    """
    if provider.name != config.model.provider:
        raise ValueError(f"provider {provider.name!r} given for a {config.model.provider!r} model")
    if max_steps < 1:
        raise ValueError("max_steps must be at least 1")
    model = config.model.to_contract()
    offered = {schema.name: schema for schema in tools}
    messages = [ChatMessage(role="user", content=input)]
    result = CandidateOutput(outcome="step_limit", output="")
    for _ in range(max_steps):
        request = agent_request(model, messages, tools, instructions=config.instructions, api_key=api_key)
        response = await provider.complete(request)
        result.steps += 1
        result.usage = result.usage.add(response.usage)
        result.output = response.content
        if not response.tool_calls:
            result.outcome = "completed"
            return result
        messages.append(ChatMessage(role="assistant", content=response.content, tool_calls=response.tool_calls))
        for call in response.tool_calls:
            answer = await _answer(call, offered, answerer)
            result.tool_calls.append(
                CandidateToolCall(call.name, dict(call.arguments), answer.answered_from, answer.text, answer.is_error)
            )
            messages.append(ChatMessage(role="tool", content=answer.text, tool_call_id=call.id, name=call.name))
    return result


async def _answer(call: ToolCall, offered: dict[str, ToolSchema], answerer: ToolAnswerer) -> ToolAnswer:
    """As a real run: a tool not offered, or arguments that do not fit its schema, get an error before any answer."""
    schema = offered.get(call.name)
    problem = unknown_tool(call.name) if schema is None else invalid_arguments(schema, call.arguments)
    if problem is not None:
        return ToolAnswer(problem, "refused", is_error=True)
    return await answerer.answer(call)
