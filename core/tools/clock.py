"""``current_time``: the current UTC time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.contracts.llm import ToolSchema
from core.tools.base import ToolContext


class CurrentTimeTool:
    """Reads the clock; no side effects."""

    side_effects = False
    pure = True
    schema = ToolSchema(
        name="current_time",
        description="The current date and time in UTC (RFC 3339).",
        parameters={"type": "object", "properties": {}, "additionalProperties": False},
    )

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> Any:
        """The time now."""
        return {"utc": datetime.now(UTC).isoformat(timespec="seconds")}
