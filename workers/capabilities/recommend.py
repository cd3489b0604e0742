"""Recommendations on the optimizer queue: ``RecommendationWorkflow``, its activities, and a schedule per tenant.

Mining is offline analysis of the history like the optimizer's work, and its actions start
optimizer runs and replays: it shares the optimizer's queue (and worker) rather than adding
one more worker process per deployment, and stays off the queues of live runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import structlog

from activities.recommend import RecommendationActivities
from core.recommend.schedules import ensure_all_schedules
from workers.deps import WorkerDeps
from workers.registry import Slice
from workflows.recommend import RecommendationWorkflow

log = structlog.get_logger(__name__)


def _activities(deps: WorkerDeps) -> Sequence[Callable[..., Any]]:
    return RecommendationActivities(deps.engine).all()


async def _ensure(deps: WorkerDeps) -> None:
    try:
        await ensure_all_schedules(deps.client, deps.engine, deps.settings)
    except Exception:  # the next worker start, a tenant's creation or its next request ensures them again
        log.exception("recommendation schedules could not be ensured")


async def recommendation_schedules(deps: WorkerDeps) -> None:
    """Ensure every tenant's recommendation schedule, in the background (the worker polls meanwhile)."""
    deps.spawn(_ensure(deps))


SLICE = Slice(workflows=[RecommendationWorkflow], activities=_activities, on_start=[recommendation_schedules])
