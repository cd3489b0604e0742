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
    subject: str | None = None
    """The end user the run is about (memory tools are scoped to it)."""


class Tool(Protocol):
    """A callable capability offered to the model."""

    schema: ToolSchema
    side_effects: bool
    pure: bool
    """Self-contained: no writes, no network, no tenant data (e.g. arithmetic, the clock). Only such tools
    run outside a real run (optimizer evaluations, replays); ``side_effects=False`` alone is not enough
    (a GET tool reads the outside world)."""

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> Any:
        """Run the tool; raise ``core.errors.ToolError`` for failures the model should see."""
        ...


class ToolResolver(Protocol):
    """Finds the tools an agent may call: built-ins and the tenant's own."""

    async def get(self, tenant_id: str, name: str) -> Tool | None:
        """The tool ``name`` as seen by ``tenant_id``."""
        ...

    async def schemas(self, tenant_id: str, names: list[str]) -> list[ToolSchema]:
        """Schemas of the named tools that exist, in order."""
        ...


class ToolRegistry:
    """Tools by name (the built-ins); also a ``ToolResolver`` that ignores the tenant."""

    def __init__(self, tools: list[Tool]):
        self._tools = {t.schema.name: t for t in tools}

    def names(self) -> list[str]:
        """Registered tool names."""
        return sorted(self._tools)

    def lookup(self, name: str) -> Tool | None:
        """The tool called ``name``, or ``None``."""
        return self._tools.get(name)

    async def get(self, tenant_id: str, name: str) -> Tool | None:
        """The tool called ``name`` (the same for every tenant)."""
        return self._tools.get(name)

    async def schemas(self, tenant_id: str, names: list[str]) -> list[ToolSchema]:
        """Schemas of the named tools that exist, in order."""
        return [self._tools[n].schema for n in names if n in self._tools]
