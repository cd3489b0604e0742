"""``run_agent``: ask another agent of the same tenant; it runs as a child workflow of the run."""

from __future__ import annotations

from typing import Any

from core.contracts.llm import ToolSchema
from core.errors import ToolError
from core.tools.base import ToolContext

RUN_AGENT = "run_agent"


class RunAgentTool:
    """Offered to the model like any tool; the agent-run workflow executes it as a child run."""

    side_effects = True
    pure = False
    schema = ToolSchema(
        name=RUN_AGENT,
        description="Ask another agent of this workspace; returns its answer.",
        parameters={
            "type": "object",
            "properties": {
                "agent_id": {"type": "string", "maxLength": 40},
                "input": {"type": "string", "minLength": 1, "maxLength": 200000},
            },
            "required": ["agent_id", "input"],
        },
    )

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> Any:
        """Never called: the workflow runs child agents itself."""
        raise ToolError("run_agent runs as a child workflow")
