"""The model request of an agent step, shared by real runs and optimizer candidate runs."""

from __future__ import annotations

from collections.abc import Sequence

from core.contracts.llm import ChatMessage, LlmRequest, ModelConfig, ToolSchema


def agent_request(
    model: ModelConfig,
    messages: Sequence[ChatMessage],
    tools: Sequence[ToolSchema],
    *,
    instructions: str = "",
    memories: str | None = None,
    api_key: str | None = None,
) -> LlmRequest:
    """The request: the agent's instructions, then the recalled-memories block, then the conversation."""
    head = [ChatMessage(role="system", content=text) for text in (instructions, memories) if text]
    return LlmRequest(model=model, messages=[*head, *messages], tools=list(tools), api_key=api_key)
