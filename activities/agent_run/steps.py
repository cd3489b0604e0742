"""Steps on a run's event stream: their event types, previews and sequence numbers."""

from __future__ import annotations

from typing import Any

from core.db.projection import OPEN_STEP_STATUSES, StepRecord
from core.events import RunEventLog

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


def preview(value: Any) -> Any:
    """``value``, a string cut to ``PREVIEW_CHARS``."""
    if isinstance(value, str) and len(value) > PREVIEW_CHARS:
        return value[:PREVIEW_CHARS] + "…"
    return value
