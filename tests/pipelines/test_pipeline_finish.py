"""A pipeline run's outcome always reaches PostgreSQL: a cancel that lands while the run is being finished
does not skip ``pipeline.finish``, and run reconciliation closes pipeline runs whose workflow ended without it.

The workflows here run on a worker of the test's own (its own task queue) whose ``pipeline.finish``
is the test's: it fails its first attempt once the workflow has seen a cancel, or writes nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.pipeline import PipelineActivities
from activities.run_reconciliation import RunReconciliationActivities
from core.contracts.pipelines import FinishRunInput, PipelineRunInput, PipelineRunResult, PipelineRunStatus
from core.contracts.run_reconciliation import TERMINATED, ReconcileInput, ReconcileResult
from core.db.models import PipelineRun
from core.db.projection import RunProjection
from core.events import RunEventLog
from core.ids import new_id, pipeline_run_workflow_id
from core.pipelines.store import PipelineRunStore
from core.tools.base import ToolRegistry
from tests.conftest import TenantCtx
from tests.support.pipelines import start, steps_of, wait_pipeline_run
from tests.support.runs import record_history
from workers.embedded.stack import StackProcess
from workflows.pipeline import PipelineWorkflow
from workflows.run_reconciliation import RunReconciliationWorkflow

QUICK = {"steps": [{"id": "pause", "type": "wait", "seconds": 0}], "output": "'done'"}
Finish = Callable[[FinishRunInput], Awaitable[None]]


async def _no_quota_check(tenant_id: str) -> None:
    del tenant_id


@pytest.fixture
async def events(stack: StackProcess) -> AsyncIterator[RunEventLog]:
    """The stack's event log."""
    redis = Redis.from_url(stack.redis_url)
    yield RunEventLog(redis)
    await redis.aclose()


async def _run_on_own_worker(
    client: Client,
    engine: AsyncEngine,
    events: RunEventLog,
    tenant_id: str,
    finish: Finish,
    body: Callable[[WorkflowHandle[Any, Any]], Any],
) -> PipelineRun:
    """Start a run of ``QUICK`` on a worker whose ``pipeline.finish`` is ``finish``; ``body`` drives it."""
    store = PipelineRunStore(engine)
    real = PipelineActivities(
        store,
        RunProjection(engine),
        ToolRegistry([]),
        events=events,
        agents_task_queue="unused",
        quota_check=_no_quota_check,
    )
    run_id = new_id("prn")
    run, _ = await store.insert(
        PipelineRun(
            id=run_id,
            tenant_id=tenant_id,
            pipeline_id=new_id("pln"),
            version=1,
            status=PipelineRunStatus.QUEUED,
            workflow_id=pipeline_run_workflow_id(tenant_id, run_id),
        )
    )
    queue = f"test-pipeline-finish-{uuid.uuid4().hex}"
    activities = [real.claim_slot, real.project, activity.defn(name="pipeline.finish")(finish)]
    async with Worker(client, task_queue=queue, workflows=[PipelineWorkflow], activities=activities):
        handle = await client.start_workflow(
            PipelineWorkflow.run,
            PipelineRunInput(
                tenant_id=tenant_id, run_id=run_id, pipeline_id=run.pipeline_id, version=1, definition=QUICK
            ),
            id=run.workflow_id,
            task_queue=queue,
        )
        await body(handle)
    return run


async def _cancel_seen(handle: WorkflowHandle[Any, Any]) -> None:
    """Until the workflow has completed a workflow task after the cancel request reached it."""
    while True:
        kinds = [e.event_type async for e in handle.fetch_history_events()]
        if EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED in kinds:
            after = kinds[kinds.index(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED) :]
            if EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED in after:
                return
        await asyncio.sleep(0.05)


async def test_a_cancel_that_lands_while_the_run_finishes_does_not_skip_the_finish(
    engine: AsyncEngine, temporal_client: Client, tenant: TenantCtx, events: RunEventLog
) -> None:
    finishing = asyncio.Event()
    seen = asyncio.Event()
    store = PipelineRunStore(engine)

    async def finish(inp: FinishRunInput) -> None:
        if activity.info().attempt == 1:  # the outcome is decided; the cancel lands now, then the write fails once
            finishing.set()
            await seen.wait()
            raise ApplicationError("the database is briefly unreachable")
        await store.finish(inp.tenant_id, inp.run_id, status=inp.status, output=inp.output, error=inp.error)

    async def late_cancel(handle: WorkflowHandle[Any, Any]) -> None:
        await finishing.wait()
        await handle.cancel()
        await _cancel_seen(handle)
        seen.set()
        result: PipelineRunResult = await handle.result()
        assert (result.status, result.output) == ("completed", "done")  # the decided outcome stands
        await record_history(temporal_client, handle.id, "pipelines/late_cancel")

    run = await _run_on_own_worker(temporal_client, engine, events, tenant.id, finish, late_cancel)
    body = await wait_pipeline_run(tenant.http, run.id)
    assert (body["status"], body["output"]) == ("completed", "done")


@pytest.fixture
async def reconcile(
    temporal_client: Client, engine: AsyncEngine, events: RunEventLog
) -> AsyncIterator[Callable[[str], Awaitable[ReconcileResult]]]:
    """One reconciliation pass over a tenant's open runs (no grace period) on a worker of the test's own."""
    activities = RunReconciliationActivities(projection=RunProjection(engine), events=events, client=temporal_client)
    queue = f"test-reconcile-{uuid.uuid4().hex}"

    async def one_pass(tenant_id: str) -> ReconcileResult:
        result: ReconcileResult = await temporal_client.execute_workflow(
            RunReconciliationWorkflow.run,
            ReconcileInput(tenant_id=tenant_id, grace_s=0, page_size=1),
            id=f"{tenant_id}:test-reconcile:{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        return result

    async with Worker(
        temporal_client, task_queue=queue, workflows=[RunReconciliationWorkflow], activities=[activities.page]
    ):
        yield one_pass


async def test_reconciliation_closes_pipeline_runs_whose_workflow_ended_without_their_outcome(
    engine: AsyncEngine,
    events: RunEventLog,
    temporal_client: Client,
    tenant: TenantCtx,
    reconcile: Callable[[str], Awaitable[ReconcileResult]],
) -> None:
    async def lost(inp: FinishRunInput) -> None:
        """The outcome never reaches the projection."""
        del inp

    async def until_done(handle: WorkflowHandle[Any, Any]) -> None:
        await handle.result()

    completed = await _run_on_own_worker(temporal_client, engine, events, tenant.id, lost, until_done)
    waiting = await start(engine, temporal_client, tenant.id, {"steps": [{"id": "hold", "type": "approval"}]})
    await wait_pipeline_run(tenant.http, waiting.id, lambda r: r["status"] == "waiting_approval")
    await temporal_client.get_workflow_handle(waiting.workflow_id).terminate("stopped by an operator")
    assert (await wait_pipeline_run(tenant.http, completed.id, lambda r: True))["status"] == "running"

    result = await reconcile(tenant.id)  # one run per page: the cursor pages through both kinds
    assert result.runs == {completed.id: "completed", waiting.id: "failed"}
    assert result.pages >= 2
    done = await wait_pipeline_run(tenant.http, completed.id)
    assert (done["status"], done["output"]) == ("completed", "done")
    terminated = await wait_pipeline_run(tenant.http, waiting.id)
    assert terminated["error"]["type"] == TERMINATED
    assert steps_of(terminated)["hold"]["status"] == "cancelled"
    assert (await reconcile(tenant.id)).closed == 0  # closed once
