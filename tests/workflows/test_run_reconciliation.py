"""``RunReconciliationWorkflow`` on the real stack: runs closed outside the API get their real status.

Runs start through the API test stack; the reconciliation runs on a worker of the test's
own (its own task queue), one pass scoped to the test's tenant with no grace period.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError, TerminatedError
from temporalio.worker import Worker

from activities.run_reconciliation import RunReconciliationActivities
from core.contracts.run_reconciliation import (
    TERMINATED,
    TIMED_OUT,
    WORKFLOW_FAILED,
    WORKFLOW_NOT_FOUND,
    ReconcileInput,
    ReconcileResult,
)
from core.db.projection import RunProjection
from core.events import RunEventLog
from core.run_reconciliation import Outcome, outcome_of_close
from tests.api.test_events import _names, _read_events
from tests.conftest import TenantCtx
from tests.support.runs import HISTORIES, create_agent, insert_run, record_history
from tests.workflows.test_step_states import _start, _until
from workers.embedded.stack import StackProcess
from workflows.run_reconciliation import RunReconciliationWorkflow

APPROVAL_AGENT: dict[str, Any] = {"tools": [{"name": "calculator", "requires_approval": True}]}


@dataclass
class _Reconciler:
    """Runs passes on the test's own worker and reads run events."""

    client: Client
    queue: str
    events: RunEventLog

    async def run(self, tenant_id: str, *, record: str | None = None, **kw: Any) -> ReconcileResult:
        """One pass over ``tenant_id``'s open runs (no grace period unless ``kw`` says otherwise)."""
        kw.setdefault("grace_s", 0)
        handle = await self.client.start_workflow(
            RunReconciliationWorkflow.run,
            ReconcileInput(tenant_id=tenant_id, **kw),
            id=f"{tenant_id}:test-reconcile:{uuid.uuid4().hex[:8]}",
            task_queue=self.queue,
        )
        result = await handle.result()
        if record:
            await record_history(self.client, handle.id, record, run_id=handle.first_execution_run_id)
        return result


@pytest.fixture
async def reconciler(stack: StackProcess, temporal_client: Client, engine: AsyncEngine) -> AsyncIterator[_Reconciler]:
    redis = Redis.from_url(stack.redis_url)
    events = RunEventLog(redis)
    activities = RunReconciliationActivities(projection=RunProjection(engine), events=events, client=temporal_client)
    queue = f"test-reconcile-{uuid.uuid4().hex}"
    async with Worker(
        temporal_client, task_queue=queue, workflows=[RunReconciliationWorkflow], activities=[activities.page]
    ):
        yield _Reconciler(temporal_client, queue, events)
    await redis.aclose()


async def test_a_run_terminated_in_temporal_is_reconciled_failed(
    tenant: TenantCtx, temporal_client: Client, reconciler: _Reconciler
) -> None:
    agent = await create_agent(tenant.http, **APPROVAL_AGENT)
    run_id = await _start(tenant, agent, "2 + 2")
    waiting = await _until(tenant, run_id, lambda r: r["status"] == "waiting_approval")
    [approval] = [s for s in waiting["steps"] if s["kind"] == "approval"]
    reader = asyncio.ensure_future(_read_events(tenant.http, run_id))  # an SSE client following the run
    await temporal_client.get_workflow_handle(waiting["temporal"]["workflow_id"]).terminate(reason="operator stop")
    assert (await tenant.http.get(f"/v1/runs/{run_id}")).json()["status"] == "waiting_approval"

    result = await reconciler.run(tenant.id, record="run_reconciliation")

    assert result.runs == {run_id: "failed"}
    assert (result.closed, result.failed_count, result.error) == (1, 0, None)
    run = (await tenant.http.get(f"/v1/runs/{run_id}")).json()
    assert run["status"] == "failed"
    assert run["error"] == {"type": TERMINATED, "message": "the workflow was terminated in Temporal: operator stop"}
    [ended] = [s for s in run["steps"] if s["id"] == approval["id"]]
    assert (ended["status"], ended["error"]) == ("failed", run["error"])
    assert ended["ended_at"] is not None
    assert all(s["status"] not in ("running", "waiting") and s["ended_at"] for s in run["steps"])

    streamed = _names(await asyncio.wait_for(reader, 30))  # the SSE client's stream ended
    assert streamed.index("run.failed:") == streamed.index(f"step.failed:{approval['id']}") + 1
    stored = await reconciler.events.range(tenant.id, run_id)
    assert [e.type for e in stored][-3:] == ["step.failed", "run.failed", "run.closed"]
    assert stored[-2].data["error"] == run["error"]
    assert stored[-2].data["reconciled"] is True
    assert stored[-1].data == {"status": "failed", "turn": 1}

    again = await reconciler.run(tenant.id)
    assert (again.examined, again.closed) == (0, 0)


async def test_runs_without_a_workflow_fail_and_live_runs_stay(
    engine: AsyncEngine, tenant: TenantCtx, reconciler: _Reconciler
) -> None:
    agent = await create_agent(tenant.http, **APPROVAL_AGENT)
    live = await _start(tenant, agent, "2 + 2")
    await _until(tenant, live, lambda r: r["status"] == "waiting_approval")
    orphans = [(await insert_run(engine, tenant.id, agent, f"orphan {n}")).id for n in range(3)]

    within_grace = await reconciler.run(tenant.id, grace_s=3600)
    result = await reconciler.run(tenant.id, page_size=2, record="run_reconciliation_paged")

    assert (within_grace.examined, within_grace.closed) == (0, 0)
    assert result.runs == dict.fromkeys(orphans, "failed")
    assert (result.examined, result.closed, result.by_status, result.pages) == (4, 3, {"failed": 3}, 3)
    for run_id in orphans:
        run = (await tenant.http.get(f"/v1/runs/{run_id}")).json()
        assert (run["status"], run["error"]["type"]) == ("failed", WORKFLOW_NOT_FOUND)
        events = await reconciler.events.range(tenant.id, run_id)
        assert [e.type for e in events] == ["run.failed", "run.closed"]
    assert (await tenant.http.get(f"/v1/runs/{live}")).json()["status"] == "waiting_approval"
    assert (await tenant.http.post(f"/v1/runs/{live}/cancel")).status_code == 202


@pytest.mark.parametrize(
    ("status", "cause", "expected"),
    [
        (WorkflowExecutionStatus.RUNNING, None, None),
        (WorkflowExecutionStatus.CONTINUED_AS_NEW, None, None),
        (WorkflowExecutionStatus.COMPLETED, None, Outcome("completed")),
        (WorkflowExecutionStatus.CANCELED, None, Outcome("cancelled")),
        (
            WorkflowExecutionStatus.TERMINATED,
            TerminatedError("Workflow terminated"),
            Outcome("failed", {"type": TERMINATED, "message": "the workflow was terminated in Temporal"}),
        ),
        (
            WorkflowExecutionStatus.TIMED_OUT,
            None,
            Outcome("failed", {"type": TIMED_OUT, "message": "the workflow timed out in Temporal"}),
        ),
        (
            WorkflowExecutionStatus.FAILED,
            ApplicationError("run r not found", type="RunNotFound"),
            Outcome("failed", {"type": "RunNotFound", "message": "run r not found"}),
        ),
        (
            WorkflowExecutionStatus.FAILED,
            RuntimeError("boom"),
            Outcome("failed", {"type": WORKFLOW_FAILED, "message": "boom"}),
        ),
    ],
)
def test_what_a_closed_workflow_means_for_its_run(
    status: WorkflowExecutionStatus, cause: BaseException | None, expected: Outcome | None
) -> None:
    assert outcome_of_close(status, cause) == expected


def test_a_pass_keeps_its_history_bounded() -> None:
    """One page activity per workflow run, then continue-as-new: the recorded paged pass shows it."""
    events = json.loads((HISTORIES / "run_reconciliation_paged.json").read_text())["events"]
    kinds = [e["eventType"] for e in events]
    assert kinds.count("EVENT_TYPE_ACTIVITY_TASK_SCHEDULED") == 1
    assert kinds[-1] == "EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW"
