"""The agent run that answers a voice turn: a ``run`` row like any text run's, on the session's thread.

Each turn with speech becomes one run of the session's pinned agent version, on the session's
thread and subject (so memory recall and extraction, thread context and compaction, usage,
feedback and webhooks work as for text runs), listed under ``/v1/runs`` with
``metadata.voice_session_id`` and ``metadata.voice_turn``. Its id derives from the session's
workflow id and the turn's ``seq``: a retried insert finds the run it made.
"""

from __future__ import annotations

import hashlib

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core.contracts.agent_run import RunStatus
from core.contracts.voice import AgentTurnInput
from core.db.engine import statement
from core.db.models import Run
from core.ids import run_workflow_id

_run = Run.__table__  # type: ignore[attr-defined]


def turn_run_id(workflow_id: str, seq: int) -> str:
    """The run id of turn ``seq`` of the session whose workflow is ``workflow_id``."""
    return "run_" + hashlib.sha256(f"{workflow_id}:turn:{seq}".encode()).hexdigest()[:24]


async def insert_turn_run(engine: AsyncEngine, inp: AgentTurnInput, run_id: str) -> str:
    """Insert (once) the run answering the turn; its workflow id."""
    workflow_id = run_workflow_id(inp.tenant_id, run_id)
    values = {
        "id": run_id,
        "tenant_id": inp.tenant_id,
        "agent_id": inp.agent_id,
        "agent_version": inp.agent_version,
        "thread_id": inp.thread_id,
        "status": RunStatus.QUEUED.value,
        "input": inp.text,
        "subject": inp.subject,
        "metadata": {"voice_session_id": inp.session_id, "voice_turn": inp.seq},
        "workflow_id": workflow_id,
        "experiment_id": inp.experiment_id,
        "experiment_arm": inp.experiment_arm,
    }
    async with statement(engine) as conn:
        await conn.execute(insert(_run).values(values).on_conflict_do_nothing(index_elements=["id"]))
    return workflow_id
