"""Run reconciliation on the agents queue: the workflow, its page activity and its schedule."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from activities.run_reconciliation import RunReconciliationActivities
from core.db.projection import RunProjection
from core.events import RunEventLog
from core.run_reconciliation import ensure_reconciliation_schedule
from workers.deps import WorkerDeps
from workers.registry import Slice
from workflows.run_reconciliation import RunReconciliationWorkflow


def _activities(deps: WorkerDeps) -> Sequence[Callable[..., Any]]:
    activities = RunReconciliationActivities(
        projection=RunProjection(deps.engine), events=RunEventLog(deps.redis), client=deps.client
    )
    return [activities.page]


async def reconciliation_schedule(deps: WorkerDeps) -> None:
    """Create or update the Temporal Schedule of ``RunReconciliationWorkflow``."""
    await ensure_reconciliation_schedule(deps.client, deps.settings)


SLICE = Slice(workflows=[RunReconciliationWorkflow], activities=_activities, on_start=[reconciliation_schedule])
