"""Calling a tool for a model: argument checks, the call, and the text the model reads back.

Shared by the agent-run ``tool`` activity and the optimizer's live tool answers, so the model
sees the same texts (errors included) in both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.contracts.llm import ToolSchema
from core.errors import ToolError
from core.tools.base import Tool, ToolContext
from core.tools.schema import argument_errors

MAX_TOOL_OUTPUT_BYTES = 8 * 1024 * 1024
"""A longer result is cut to this size for the model."""


@dataclass(frozen=True)
class ToolOutcome:
    """What a call gave: the full text for the model, the tool's data, whether it failed."""

    text: str
    data: Any = None
    is_error: bool = False


def unknown_tool(name: str) -> str:
    """The error text for a tool the agent was not offered (or that does not exist)."""
    return f"error: unknown tool {name!r}; use one of the tools offered"


def invalid_arguments(schema: ToolSchema, arguments: dict[str, Any]) -> str | None:
    """The error text when ``arguments`` do not fit the tool's parameters, else ``None``."""
    problems = argument_errors(schema, arguments)
    return f"error: invalid arguments for {schema.name}: {'; '.join(problems)}" if problems else None


def result_text(data: Any) -> str:
    """The text the model reads for a tool's ``data`` (its ``value`` when it has one; JSON unless a string)."""
    value = data.get("value") if isinstance(data, dict) and "value" in data else data
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text.encode()) > MAX_TOOL_OUTPUT_BYTES:
        text = text[:MAX_TOOL_OUTPUT_BYTES] + "\n[truncated]"
    return text


async def invoke(tool: Tool, arguments: dict[str, Any], context: ToolContext) -> ToolOutcome:
    """Call ``tool``; a ``ToolError`` becomes an error text the model can act on."""
    try:
        data: Any = await tool.call(arguments, context)
    except ToolError as exc:
        return ToolOutcome(text=f"error: {exc}", is_error=True)
    return ToolOutcome(text=result_text(data), data=data)
