"""The built-in tool set."""

from __future__ import annotations

from core.tools.base import Tool, ToolRegistry
from core.tools.calculator import CalculatorTool
from core.tools.clock import CurrentTimeTool
from core.tools.run_agent import RunAgentTool


def builtin_tools() -> list[Tool]:
    """Fresh instances of every built-in tool."""
    return [CalculatorTool(), CurrentTimeTool(), RunAgentTool()]


def builtin_registry() -> ToolRegistry:
    """A registry of the built-in tools."""
    return ToolRegistry(builtin_tools())


BUILTIN_TOOL_NAMES: frozenset[str] = frozenset(
    [*(t.schema.name for t in builtin_tools()), "http_request", "memory_search", "memory_write"]
)
"""Tools every agent may name (``http_request`` and the memory tools need the worker's services: built there)."""
