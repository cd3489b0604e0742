"""What the routes of optimizer runs and replays share: their workflows on the optimizer queue.

Both record a row ``queued`` under the tenant's live cap (``record_live``: 429 over it), start
its workflow (``start_on_optimizer_queue``), and cancel it (``cancel_live``). ``temporal_call``
turns Temporal's failures into problems.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol, TypeVar, cast

from temporalio.client import RPCError, RPCStatusCode
from temporalio.common import Priority, SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.deps import too_many_requests
from api.problem_types import ProblemType
from api.problems import ProblemError
from api.state import AppState
from core.contracts.optimizer import FINAL_STATUSES, OptimizerRunStatus
from core.ids import AGENT_ID, RUN_KIND, TENANT_ID
from core.optimizer.live_rows import LiveRows, M
from core.quotas import LiveCap, QuotaExceededError

T = TypeVar("T")
ACCEPTED: dict[int | str, dict[str, Any]] = {202: {"description": "The row as it stands; the workflow acts next."}}


async def temporal_call(
    call: Awaitable[T], detail: str, closed: tuple[RPCStatusCode, ...] = (), *, what: str = "the optimizer run"
) -> T:
    """A call to Temporal: a workflow gone (``closed``) answers 409 naming ``what``, Temporal out of reach 503."""
    try:
        return await call
    except RPCError as exc:
        if exc.status in closed:
            raise ProblemError(409, f"{what} is closed", slug=ProblemType.CONFLICT) from None
        raise ProblemError(503, detail, slug=ProblemType.TEMPORAL_UNAVAILABLE, headers={"Retry-After": "2"}) from exc
    except RuntimeError as exc:  # no connection
        raise ProblemError(503, detail, slug=ProblemType.TEMPORAL_UNAVAILABLE, headers={"Retry-After": "2"}) from exc


async def record_live(store: LiveRows[M], row: M, cap: LiveCap) -> None:
    """Insert ``row`` unless the tenant already has ``cap.limit`` live rows of its kind (then 429 naming the cap)."""
    try:
        await store.insert(row, cap=cap)
    except QuotaExceededError as exc:
        raise too_many_requests(exc) from None


async def start_on_optimizer_queue(
    state: AppState, name: str, inp: Any, workflow_id: str, tenant_id: str, agent_id: str, kind: str
) -> None:
    """Start workflow ``name`` on the optimizer queue (tenant's fairness key, searchable); started already: nothing."""
    try:
        await state.temporal.start_workflow(
            name,
            inp,
            id=workflow_id,
            task_queue=state.settings.optimizer_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(TENANT_ID, tenant_id),
                    SearchAttributePair(RUN_KIND, kind),
                    SearchAttributePair(AGENT_ID, agent_id),
                ]
            ),
            priority=Priority(fairness_key=tenant_id),
        )
    except WorkflowAlreadyStartedError:
        return


class LiveRow(Protocol):
    """A row of a workflow on the optimizer queue."""

    id: str
    tenant_id: str
    status: str
    workflow_id: str


R = TypeVar("R", bound=LiveRow)


async def cancel_live(state: AppState, store: LiveRows[Any], row: R, what: str, **unstarted: Any) -> R:
    """Cancel the workflow of ``row`` (``what`` names it): 409 once it is final; the row as it stands then.

    A ``queued`` row whose workflow never started (Temporal was out of reach at its start) is
    cancelled at once, with the values ``unstarted`` gives.
    """
    if row.status in FINAL_STATUSES:
        raise ProblemError(409, f"{what} is {row.status}", slug=ProblemType.CONFLICT)
    try:
        await temporal_call(
            state.temporal.get_workflow_handle(row.workflow_id).cancel(),
            "the cancellation could not be delivered; retry it",
            (RPCStatusCode.NOT_FOUND,),
            what=f"the {what}",
        )
    except ProblemError as exc:
        if exc.status != 409 or row.status != OptimizerRunStatus.QUEUED:
            raise
        await store.update_live(row.tenant_id, row.id, {"status": OptimizerRunStatus.CANCELLED.value, **unstarted})
        return cast(R, await store.get(row.tenant_id, row.id))
    return row
