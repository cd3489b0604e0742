"""``RunReconciliationWorkflow``: runs the API shows open, checked against their workflows.

Started by the ``run-reconciliation`` Schedule (``core.run_reconciliation``). Each
workflow run checks one page of open runs in one heartbeated activity with a few
attempts, then continues as new with the next page and the running totals, so the
history stays a handful of events whatever the number of runs. A page that fails all
its attempts ends the pass early with the error in its result; the next pass starts over.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.run_reconciliation import RunReconciliationActivities
    from core.contracts.run_reconciliation import (
        MAX_ERROR_CHARS,
        WORKFLOW_NAME,
        ReconcileInput,
        ReconcilePage,
        ReconcilePageInput,
        ReconcileResult,
    )
    from core.errors import NON_RETRYABLE_TYPES
    from workflows._helpers import activity_error_text

PAGE_TIMEOUT = timedelta(minutes=10)
PAGE_HEARTBEAT = timedelta(seconds=60)
"""The activity beats after each run; one run taking longer than this counts as a lost worker."""
PAGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=3,
    non_retryable_error_types=list(NON_RETRYABLE_TYPES),
)
"""A page: a few attempts, then the pass ends and the next scheduled one tries again."""


@workflow.defn(name=WORKFLOW_NAME)
class RunReconciliationWorkflow:
    """Closes the runs whose workflow ended without writing their outcome."""

    @workflow.run
    async def run(self, inp: ReconcileInput) -> ReconcileResult:
        """One page of open runs per workflow run; totals of what was closed (and what could not be checked)."""
        totals = inp.totals or ReconcileResult()
        request = ReconcilePageInput(
            limit=max(1, inp.page_size),
            grace_s=inp.grace_s,
            concurrency=inp.concurrency,
            before=inp.before,
            after=inp.after,
            tenant_id=inp.tenant_id,
        )
        try:
            page: ReconcilePage = await workflow.execute_activity_method(
                RunReconciliationActivities.page,
                request,
                start_to_close_timeout=PAGE_TIMEOUT,
                heartbeat_timeout=PAGE_HEARTBEAT,
                retry_policy=PAGE_RETRY,
                summary=f"check {request.limit} open runs" + (f" of tenant {inp.tenant_id}" if inp.tenant_id else ""),
            )
        except ActivityError as exc:
            totals.error = activity_error_text(exc)[:MAX_ERROR_CHARS]
            workflow.logger.warning("run reconciliation stopped early", extra={"error": totals.error})
            return totals
        totals.add(page)
        if page.next is not None:
            workflow.continue_as_new(
                ReconcileInput(
                    tenant_id=inp.tenant_id,
                    grace_s=inp.grace_s,
                    page_size=inp.page_size,
                    concurrency=inp.concurrency,
                    before=page.before,
                    after=page.next,
                    totals=totals,
                )
            )
        if totals.closed or totals.failed_count:
            workflow.logger.info(
                "run reconciliation pass",
                extra={"closed": totals.closed, "by_status": totals.by_status, "failed_count": totals.failed_count},
            )
        return totals
