"""A run's event stream: steps (event types, previews, sequence numbers), a turn's end and the run's close."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from core.contracts.llm import Usage
from core.db.projection import OPEN_STEP_STATUSES, StepRecord
from core.events import RUN_CLOSED, RunEventLog
from core.telemetry import metrics

PREVIEW_CHARS = 2000


def step_seq(step_id: str) -> int:
    """The step's position in its run, from its id (``s12`` or ``s12-…``)."""
    return int(step_id.lstrip("s").split("-", 1)[0])


def step_event(status: str) -> str:
    """The event type of a step in ``status``: started, or ended completed, failed or cancelled."""
    if status in OPEN_STEP_STATUSES:
        return "step.started"
    return f"step.{status}" if status in ("failed", "cancelled") else "step.completed"


async def announce_step(events: RunEventLog, tenant_id: str, run_id: str, step: StepRecord) -> None:
    """Publish a step's start or end on its run's event stream."""
    event = step_event(step.status)
    data: dict[str, Any] = {"step_id": step.step_id, "kind": step.kind, "name": step.name, "status": step.status}
    if event != "step.started":
        data |= {"output": preview(step.output), "error": step.error, "attempts": step.attempts}
    await events.publish(tenant_id, run_id, event, data)


async def announce_ended_steps(events: RunEventLog, tenant_id: str, run_id: str, steps: list[StepRecord]) -> None:
    """Publish the ends of steps closed with their run; approvals among them no longer wait."""
    for step in steps:
        await announce_step(events, tenant_id, run_id, step)
    metrics.APPROVALS_WAITING.dec(sum(1 for step in steps if step.kind == "approval"))


def turn_end_data(
    status: str, output: str | None, error: dict[str, str] | None, usage: Usage, turn: int
) -> dict[str, Any]:
    """The data of a turn's final event, ``run.<status>``."""
    return {"status": status, "output": preview(output), "error": error, "usage": asdict(usage), "turn": turn}


async def announce_close(events: RunEventLog, tenant_id: str, run_id: str, status: str, turn: int) -> None:
    """Publish ``run.closed``, the run's last event: its event streams end there."""
    await events.publish(tenant_id, run_id, RUN_CLOSED, {"status": status, "turn": turn})


def preview(value: Any) -> Any:
    """``value``, a string cut to ``PREVIEW_CHARS``."""
    if isinstance(value, str) and len(value) > PREVIEW_CHARS:
        return value[:PREVIEW_CHARS] + "…"
    return value
