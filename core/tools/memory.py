"""``memory_search`` and ``memory_write``: the model reads and writes the subject's long-term memory.

Both are scoped to the run's tenant and subject; a run without a subject gets an
error result the model can read. ``memory_write`` derives the memory id from the
step's idempotency key, so a retried or replayed call stores one memory.
"""

from __future__ import annotations

from typing import Any

from core.contracts.llm import ToolSchema
from core.errors import ToolError
from core.memory.service import MemoryService, memory_id_for
from core.memory.store import NewMemory
from core.tools.base import ToolContext

MAX_K = 20


def _subject(context: ToolContext) -> str:
    if not context.subject:
        raise ToolError("this run has no subject: memory is kept per subject (set `subject` on the run)")
    return context.subject


class MemorySearchTool:
    """Semantic search over the subject's memories."""

    side_effects = False
    pure = False
    schema = ToolSchema(
        name="memory_search",
        description="Search what you remember about the user by meaning; returns the closest memories.",
        parameters={
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "maxLength": 2000},
                "k": {"type": "integer", "minimum": 1, "maximum": MAX_K},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    )

    def __init__(self, memory: MemoryService):
        self._memory = memory

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> Any:
        """The closest memories with their similarity scores."""
        k = int(arguments.get("k", 5))
        hits = await self._memory.search(context.tenant_id, _subject(context), str(arguments["query"]), k=k)
        return {"memories": [{"id": h.id, "text": h.text, "score": round(h.score, 3)} for h in hits]}


class MemoryWriteTool:
    """Stores a fact about the subject (embedded durably in the background)."""

    side_effects = True
    pure = False
    schema = ToolSchema(
        name="memory_write",
        description="Remember a fact about the user for later conversations.",
        parameters={
            "type": "object",
            "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": 2000},
                "importance": {"type": "number", "minimum": 0, "maximum": 1},
            },
            "required": ["text"],
            "additionalProperties": False,
        },
    )

    def __init__(self, memory: MemoryService):
        self._memory = memory

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> Any:
        """The stored memory's id."""
        memory = NewMemory(
            id=memory_id_for(context.idempotency_key),
            subject=_subject(context),
            text=str(arguments["text"]).strip(),
            metadata={"source": "memory_write"},
            importance=float(arguments.get("importance", 0.5)),
            source_run_id=context.run_id,
            source_step_id=context.idempotency_key.rsplit(":", 1)[-1],
        )
        [memory_id], _ = await self._memory.remember(context.tenant_id, [memory])
        return {"id": memory_id, "status": "stored"}
