"""Run reconciliation: the status a closed workflow means for its run, and the Schedule of the passes.

A workflow closed outside the API (terminated from the Temporal UI or CLI, timed out,
failed before it could write its outcome) leaves its run open in the projection. The
``run-reconciliation`` Schedule starts ``RunReconciliationWorkflow`` every
``reconcile_interval_s``; each pass writes the real status of such runs.

A terminated workflow makes its run ``failed`` (error type ``terminated``, with the
reason): the run stopped without its answer and nobody asked the run to stop through
its own cancel, which the workflow itself records as ``cancelled``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import structlog
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    WorkflowExecutionStatus,
)
from temporalio.exceptions import ApplicationError

from core.contracts.run_reconciliation import (
    MAX_ERROR_CHARS,
    TERMINATED,
    TIMED_OUT,
    WORKFLOW_FAILED,
    WORKFLOW_NAME,
    WORKFLOW_NOT_FOUND,
    ReconcileInput,
)
from core.schedules import ensure_schedule
from core.settings import Settings

log = structlog.get_logger(__name__)

SCHEDULE_ID = "platform:run-reconciliation"
WORKFLOW_ID = "platform:run-reconciliation"


@dataclass(frozen=True)
class Outcome:
    """The final status (and error, and output when known) to write for a run."""

    status: str
    error: dict[str, str] | None = None
    output: str | None = None


def outcome_of_close(
    status: WorkflowExecutionStatus, cause: BaseException | None = None, *, output: str | None = None
) -> Outcome | None:
    """The run's outcome for a workflow that closed with ``status``; ``None`` while it is open.

    ``cause`` is the failure its result raised (its ``WorkflowFailureError.cause``);
    ``output`` the answer a completed one returned.
    """
    message = (cause.message if isinstance(cause, ApplicationError) else str(cause or "")).strip()
    if status == WorkflowExecutionStatus.COMPLETED:
        return Outcome("completed", output=output or None)
    if status == WorkflowExecutionStatus.CANCELED:
        return Outcome("cancelled")
    if status == WorkflowExecutionStatus.TERMINATED:
        reason = f": {message}" if message and message != "Workflow terminated" else ""
        return _failed(TERMINATED, f"the workflow was terminated in Temporal{reason}")
    if status == WorkflowExecutionStatus.TIMED_OUT:
        return _failed(TIMED_OUT, "the workflow timed out in Temporal")
    if status == WorkflowExecutionStatus.FAILED:
        kind = (cause.type if isinstance(cause, ApplicationError) else None) or WORKFLOW_FAILED
        return _failed(kind, message or "the workflow failed in Temporal")
    return None  # running, or continued as new (the describe of a workflow id finds its latest run)


def missing_workflow(workflow_id: str) -> Outcome:
    """The outcome of a run whose workflow Temporal does not know."""
    return _failed(
        WORKFLOW_NOT_FOUND,
        f"Temporal has no workflow {workflow_id} (it was never started, or was removed after its retention period)",
    )


def _failed(kind: str, message: str) -> Outcome:
    return Outcome("failed", {"type": kind, "message": message[:MAX_ERROR_CHARS]})


def reconciliation_schedule(settings: Settings) -> Schedule:
    """Every ``reconcile_interval_s``, one pass over all tenants' open runs; passes never overlap."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WORKFLOW_NAME,
            ReconcileInput(grace_s=settings.reconcile_grace_s, page_size=settings.reconcile_page_size),
            id=WORKFLOW_ID,
            task_queue=settings.agents_task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.reconcile_interval_s))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_reconciliation_schedule(client: Client, settings: Settings) -> None:
    """Create the schedule, or bring an existing one to the configured settings (idempotent)."""
    if await ensure_schedule(client, SCHEDULE_ID, reconciliation_schedule(settings)):
        log.info("run reconciliation scheduled", every_s=settings.reconcile_interval_s)
