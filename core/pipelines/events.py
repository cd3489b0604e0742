"""The events of a pipeline run: on its Redis stream (``core.events``, keyed by the pipeline run id) and to webhooks.

``pipeline_run.started`` opens the stream (the workflow's first projection write), then
``pipeline_step.<started|completed|failed|skipped|waiting_approval|cancelled>`` as the
projection records each step (map items as ``<map id>[<index>]``),
``pipeline_run.waiting_approval`` whenever a step starts waiting for a decision, and
one final event, ``pipeline_run.<completed|failed|cancelled>``: nothing follows it.
``pipeline_run.completed``, ``.failed`` and ``.waiting_approval`` are also webhook events.
"""

from __future__ import annotations

from typing import Any

from core.contracts.pipelines import PipelineRunStatus, PipelineStepStatus, StepWriteView

RUN_STARTED = "pipeline_run.started"
RUN_WAITING_APPROVAL = "pipeline_run.waiting_approval"
FINAL_EVENTS = frozenset(f"pipeline_run.{status}" for status in PipelineRunStatus.FINAL)
"""The run's outcome: the last event of its stream."""
WEBHOOK_EVENTS = frozenset({"pipeline_run.completed", "pipeline_run.failed", RUN_WAITING_APPROVAL})
_STEP_EVENTS = {
    PipelineStepStatus.RUNNING: "pipeline_step.started",
    **{s: f"pipeline_step.{s}" for s in (*PipelineStepStatus.FINAL, PipelineStepStatus.WAITING_APPROVAL)},
}


def step_event(step: StepWriteView) -> tuple[str, dict[str, Any]] | None:
    """The event announcing a step's write (``None`` for a ``pending`` step)."""
    name = _STEP_EVENTS.get(PipelineStepStatus(step.status))
    if name is None:
        return None
    data: dict[str, Any] = {"step_id": step.step_id, "type": step.type, "status": step.status}
    if step.status in PipelineStepStatus.FINAL:
        data |= {"attempts": step.attempts, "output": step.output, "error": step.error, "ended_at": step.ended_at}
    else:
        data["started_at"] = step.started_at
    return name, data
