"""Messages, tool calls and model responses exchanged with LLM providers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass
class ToolCall:
    """A model's request to call a tool."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChatMessage:
    """One message of a conversation, in provider-neutral form."""

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None


@dataclass
class ToolSchema:
    """A tool as offered to the model: name, description, JSON-schema parameters."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """Which provider and model an agent version uses."""

    provider: str = "local"
    name: str = "local-echo"
    base_url: str | None = None
    api_key_secret: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Usage:
    """Token counts and cost of one or more model calls."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, other: Usage) -> Usage:
        """The sum of two usages."""
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            round(self.cost_usd + other.cost_usd, 8),
        )


@dataclass
class LlmRequest:
    """What a provider is asked to complete (built inside activities; never a workflow payload)."""

    model: ModelConfig
    messages: list[ChatMessage]
    tools: list[ToolSchema] = field(default_factory=list)
    api_key: str | None = None
    response_format: dict[str, Any] | None = None
    """``{"type": "json_object"}`` or ``{"type": "json_schema", "json_schema": {...}}`` where supported."""


@dataclass
class LlmResponse:
    """A provider's answer: text, tool calls, or both, with usage."""

    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = "stop"
