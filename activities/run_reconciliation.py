"""Activities of ``RunReconciliationWorkflow``: check a page of open runs against Temporal.

A run whose workflow has closed (or that Temporal does not know) gets its real status,
its open steps end with it, and its event stream gets the steps' ends, the final
``run.<status>`` event and ``run.closed``, so that open SSE streams and long-polls end.

Pipeline runs are checked in the same pages: the open agent runs and pipeline runs are
one stream ordered by ``(updated_at, id)`` (ids never collide), so the cursor covers both.
A pipeline run whose ``PipelineWorkflow`` completed gets the outcome the workflow
returned (it ended before ``pipeline.finish`` could write it); otherwise the status its
close means, as for agent runs; its unfinished steps are marked ``cancelled``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import structlog
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from activities.agent_run.steps import announce_close, announce_ended_steps, turn_end_data
from activities.errors import database_rejections
from core.contracts.agent_run import AgentRunResult
from core.contracts.llm import Usage
from core.contracts.pipelines import PipelineRunResult
from core.contracts.run_reconciliation import (
    MAX_ERROR_CHARS,
    PAGE_ACTIVITY,
    ReconcileCursor,
    ReconcilePage,
    ReconcilePageInput,
)
from core.db.models import utcnow
from core.db.projection import ClosedRun, RunProjection, StaleRun
from core.events import RunEventLog
from core.pipelines.store import PipelineRunStore
from core.run_reconciliation import Outcome, missing_workflow, outcome_of_close
from core.telemetry import metrics

log = structlog.get_logger(__name__)
RPC_TIMEOUT = timedelta(seconds=10)
"""Deadline of each Temporal call about one run."""


class RunReconciliationActivities:
    """Reconciliation activities with the projection, event log and Temporal client injected by the worker."""

    def __init__(
        self,
        *,
        projection: RunProjection,
        events: RunEventLog,
        client: Client,
        pipelines: PipelineRunStore | None = None,
    ):
        self._projection = projection
        self._pipelines = pipelines or PipelineRunStore(projection.engine)
        self._events = events
        self._client = client

    @activity.defn(name=PAGE_ACTIVITY)
    async def page(self, inp: ReconcilePageInput) -> ReconcilePage:
        """Check one page of open runs; close those whose workflow has ended.

        Beats after each run. A run that cannot be checked (Temporal or the database
        refusing it) is reported in ``failed`` and the page goes on; the next pass
        checks it again. Closing a run is idempotent, so a retried page repeats nothing.
        """
        before = datetime.fromisoformat(inp.before) if inp.before else utcnow() - timedelta(seconds=inp.grace_s)
        after = (datetime.fromisoformat(inp.after.updated_at), inp.after.run_id) if inp.after else None
        limit = max(1, inp.limit)
        with database_rejections(PAGE_ACTIVITY):
            agent_runs = await self._projection.stale_runs(
                before=before, limit=limit, after=after, tenant_id=inp.tenant_id
            )
            pipeline_runs = await self._pipelines.stale_runs(
                before=before, limit=limit, after=after, tenant_id=inp.tenant_id
            )
        runs = sorted([*agent_runs, *pipeline_runs], key=lambda r: (r.updated_at, r.run_id))[:limit]
        page = ReconcilePage(before=before.isoformat(), examined=len(runs))
        gate = asyncio.Semaphore(max(1, inp.concurrency))

        async def one(run: StaleRun) -> None:
            async with gate:
                try:
                    status = await self._reconcile(run)
                except Exception as exc:  # one run that cannot be checked does not hold up the others
                    page.failed[run.run_id] = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
                    log.warning("run reconciliation failed", run_id=run.run_id, error=page.failed[run.run_id])
                else:
                    if status is not None:
                        page.closed[run.run_id] = status
                activity.heartbeat(len(page.closed) + len(page.failed))

        await asyncio.gather(*(one(run) for run in runs))
        if len(runs) == limit:
            page.next = ReconcileCursor(updated_at=runs[-1].updated_at.isoformat(), run_id=runs[-1].run_id)
        return page

    async def _reconcile(self, run: StaleRun) -> str | None:
        """Close ``run`` if its workflow has ended; the status written, or ``None``."""
        if run.pipeline:
            return await self._reconcile_pipeline(run)
        outcome = await self._outcome(run)
        if outcome is None:
            return None
        async with self._projection.engine.begin() as conn:
            closed = await self._projection.close_open_run(
                run.tenant_id, run.run_id, status=outcome.status, error=outcome.error, output=outcome.output, conn=conn
            )
            if closed is None:  # the workflow wrote its own outcome meanwhile
                return None
            # Published before the commit: if the events cannot go out, the run stays open for the next pass.
            await self._announce(run, outcome, closed)
        metrics.RUNS_FINISHED.labels(outcome.status).inc()
        log.info("run reconciled", tenant_id=run.tenant_id, run_id=run.run_id, status=outcome.status)
        return outcome.status

    async def _reconcile_pipeline(self, run: StaleRun) -> str | None:
        """Close the pipeline ``run`` if its workflow has ended; the status written, or ``None``."""
        found = await self._pipeline_outcome(run)
        if found is None:
            return None
        status, output, error = found
        closed = await self._pipelines.close_live_run(
            run.tenant_id, run.run_id, status=status, output=output, error=error
        )
        if not closed:  # the workflow wrote its own outcome meanwhile
            return None
        log.info("pipeline run reconciled", tenant_id=run.tenant_id, pipeline_run_id=run.run_id, status=status)
        return status

    async def _pipeline_outcome(self, run: StaleRun) -> tuple[str, Any, dict[str, Any] | None] | None:
        """``(status, output, error)`` of the pipeline run's ended workflow; ``None`` while it is open."""
        handle = self._client.get_workflow_handle(run.workflow_id, result_type=PipelineRunResult)
        try:
            described = await handle.describe(rpc_timeout=RPC_TIMEOUT)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            missing = missing_workflow(run.workflow_id)
            return missing.status, None, missing.error
        closed = outcome_of_close(described.status) if described.status is not None else None
        if described.status is None or closed is None:
            return None
        try:
            result = await handle.result(follow_runs=False, rpc_timeout=RPC_TIMEOUT)
        except WorkflowFailureError as exc:
            failed = outcome_of_close(described.status, exc.cause) or closed
            return failed.status, None, failed.error
        return result.status, result.output, result.error

    async def _outcome(self, run: StaleRun) -> Outcome | None:
        """What Temporal says about the run's workflow (its latest run); ``None`` while it is open."""
        handle = self._client.get_workflow_handle(run.workflow_id, result_type=AgentRunResult)
        try:
            described = await handle.describe(rpc_timeout=RPC_TIMEOUT)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return missing_workflow(run.workflow_id)
            raise
        if described.status is None or outcome_of_close(described.status) is None:
            return None
        try:
            result = await handle.result(follow_runs=False, rpc_timeout=RPC_TIMEOUT)
        except WorkflowFailureError as exc:
            return outcome_of_close(described.status, exc.cause)
        return outcome_of_close(described.status, output=result.output)

    async def _announce(self, run: StaleRun, outcome: Outcome, closed: ClosedRun) -> None:
        """The ended steps, then the run's final event and ``run.closed``, as ``finish`` and the workflow would."""
        await announce_ended_steps(self._events, run.tenant_id, run.run_id, closed.steps)
        usage = Usage(closed.input_tokens, closed.output_tokens, closed.cost_usd)
        data = turn_end_data(outcome.status, closed.output, outcome.error, usage, closed.turn) | {"reconciled": True}
        await self._events.publish(run.tenant_id, run.run_id, f"run.{outcome.status}", data)
        await announce_close(self._events, run.tenant_id, run.run_id, outcome.status, closed.turn)
