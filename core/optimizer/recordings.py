"""A finished run's recording: its input, final output, and every tool call with the answer the model got.

Counterfactual replay re-runs a recorded input with a candidate version and answers the
candidate's tool calls from here instead of calling the tools. A tool call is the run's
``tool`` step (name, arguments, status, in step order); its answer is the tool message the
model read, taken from the run's thread by the step's message key (``<workflow id>:<step
id>:result``), so it is the exact text, however long. A step whose thread message is missing
falls back to its recorded data rendered as the tool activity renders it, or its error text.
Everything is read within the tenant. ``input`` is the run's first message: messages sent to
the run while it ran are not part of what a replay asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from core.contracts.agent_run import RunStatus, StepKind
from core.contracts.llm import Usage
from core.db.engine import make_sessionmaker
from core.db.models import RunStep, ThreadMessage
from core.db.repos import RunRepository
from core.tools.invoke import result_text


@dataclass(frozen=True)
class RecordedCall:
    """One tool call of a recorded run and the text the model got back."""

    name: str
    arguments: dict[str, Any]
    result: str
    is_error: bool = False
    step_id: str = ""


@dataclass(frozen=True)
class Recording:
    """What a finished run did: its input, output, tool calls in order, and what it cost."""

    run_id: str
    agent_id: str
    agent_version: int
    status: str
    input: str
    output: str | None
    tool_calls: list[RecordedCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)


async def read_recording(engine: AsyncEngine, tenant_id: str, run_id: str) -> Recording | None:
    """The recording of the tenant's run ``run_id``; ``None`` when there is no such run or it has not ended."""
    async with make_sessionmaker(engine)() as session:
        runs = RunRepository(session, tenant_id)
        run = await runs.get(run_id)
        if run is None or run.status not in RunStatus.FINAL:
            return None
        steps = [s for s in await runs.steps(run_id) if s.kind == StepKind.TOOL]
        keys = {f"{run.workflow_id}:{s.step_id}:result": s.step_id for s in steps}
        texts: dict[str, str] = {}
        if keys:
            found = await session.exec(
                select(ThreadMessage.message_key, ThreadMessage.content).where(
                    ThreadMessage.tenant_id == tenant_id,
                    ThreadMessage.run_id == run_id,
                    col(ThreadMessage.message_key).in_(list(keys)),
                )
            )
            texts = {keys[key]: content for key, content in found.all()}
    return Recording(
        run_id=run.id,
        agent_id=run.agent_id,
        agent_version=run.agent_version,
        status=run.status,
        input=run.input,
        output=run.output,
        tool_calls=[_call(step, texts.get(step.step_id)) for step in steps],
        usage=Usage(run.input_tokens, run.output_tokens, run.cost_usd),
    )


def _call(step: RunStep, text: str | None) -> RecordedCall:
    is_error = step.status == "failed"
    if text is None:
        text = str((step.error or {}).get("message", "error")) if is_error else result_text(step.output)
    arguments = step.input if isinstance(step.input, dict) else {}
    return RecordedCall(name=step.name, arguments=dict(arguments), result=text, is_error=is_error, step_id=step.step_id)
