"""The tool interface and the registry of built-in tools."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from core.contracts.llm import ToolSchema


@dataclass(frozen=True)
class ToolContext:
    """Who is calling: lets tools scope data and derive idempotency keys."""

    tenant_id: str
    run_id: str
    idempotency_key: str


class Tool(Protocol):
    """A callable capability offered to the model."""

    schema: ToolSchema
    side_effects: bool

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> Any:
        """Run the tool; raise ``core.errors.ToolError`` for failures the model should see."""
        ...


class ToolRegistry:
    """Tools by name."""

    def __init__(self, tools: list[Tool]):
        self._tools = {t.schema.name: t for t in tools}

    def names(self) -> list[str]:
        """Registered tool names."""
        return sorted(self._tools)

    def get(self, name: str) -> Tool | None:
        """The tool called ``name``, or ``None``."""
        return self._tools.get(name)
