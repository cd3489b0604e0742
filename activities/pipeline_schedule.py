"""``pipeline.begin_scheduled``: the first activity of a ``PipelineWorkflow`` a schedule started.

The schedule's action could not know a run id, so this activity records the run: its id
derives from the workflow id (a retried attempt finds the row the first one wrote and
answers the same), its ``schedule_id`` is the schedule's. It resolves the version (the
pinned one, else the pipeline's current one), checks the input against that version's
``inputs`` schema, the tenant's run quota and, with ``on_concurrency_limit: reject``, the
pipeline's ``max_concurrent_runs``. A run that cannot start is recorded ``failed`` with a
typed error (``PipelineArchived``, ``PipelineInputInvalid``, ``PipelineRunQuotaExceeded``,
``PipelineConcurrencyLimit``), never dropped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from activities.errors import classify_database_errors
from core.contracts.pipelines import (
    CONCURRENCY_LIMIT,
    INPUT_INVALID,
    PIPELINE_ARCHIVED,
    PIPELINE_NOT_FOUND,
    RUN_QUOTA_EXCEEDED,
    PipelineRunStatus,
    ScheduledRun,
    ScheduledRunStart,
)
from core.db.engine import make_sessionmaker
from core.db.models import PipelineRun
from core.pipelines.repository import PipelineRepository
from core.pipelines.schedules import scheduled_run_id
from core.pipelines.store import ConcurrencyLimitError, PipelineRunStore, rejecting_limit
from core.pipelines.validation import validate_input
from core.quotas import QuotaExceededError


class ScheduledRunActivities:
    """Records the runs schedules start, over the database and the tenant's run quota."""

    def __init__(self, engine: AsyncEngine, *, quota_check: Callable[[str], Awaitable[None]]):
        self._engine = engine
        self._store = PipelineRunStore(engine)
        self._quota_check = quota_check

    @activity.defn(name="pipeline.begin_scheduled")
    @classify_database_errors
    async def begin_scheduled(self, inp: ScheduledRunStart) -> ScheduledRun:
        """Record the scheduled run (once) and answer its version and definition, or its recorded failure."""
        run_id = scheduled_run_id(inp.workflow_id)
        version, definition, error = await self._resolve(inp)
        try:
            run, created = await self._store.insert(
                _scheduled_row(inp, run_id, version, error), limit=None if error else rejecting_limit(definition)
            )
        except ConcurrencyLimitError as exc:  # on_concurrency_limit: reject
            error = {"type": CONCURRENCY_LIMIT, "message": str(exc)}
            run, created = await self._store.insert(_scheduled_row(inp, run_id, version, error))
        if created:
            return ScheduledRun(run_id=run_id, version=version, definition=definition, error=error)
        if run.status == PipelineRunStatus.FAILED and run.error:  # an earlier attempt recorded it failed
            return ScheduledRun(run_id=run_id, version=run.version, error=run.error)
        if run.version != version:  # an earlier attempt resolved another version (saved since): keep it
            async with make_sessionmaker(self._engine)() as session:
                found = await PipelineRepository(session, inp.tenant_id).get_version(inp.pipeline_id, run.version)
            definition = found.definition if found else {}
        return ScheduledRun(run_id=run_id, version=run.version, definition=definition)

    async def _resolve(self, inp: ScheduledRunStart) -> tuple[int, dict[str, Any], dict[str, Any] | None]:
        """``(version, definition, error)``: what the run interprets, or why it cannot start."""
        async with make_sessionmaker(self._engine)() as session:
            repo = PipelineRepository(session, inp.tenant_id)
            pipeline = await repo.get_any(inp.pipeline_id)
            if pipeline is None or pipeline.deleted_at is not None:
                message = f"pipeline {inp.pipeline_id} is archived: its schedule starts no runs"
                return inp.version, {}, {"type": PIPELINE_ARCHIVED, "message": message}
            number = inp.version or pipeline.version
            version = await repo.get_version(inp.pipeline_id, number)
        if version is None:
            message = f"pipeline {inp.pipeline_id} has no version {number}"
            return number, {}, {"type": PIPELINE_NOT_FOUND, "message": message}
        refused = validate_input(version.definition.get("inputs"), inp.input)
        if refused:
            errors = [{"field": e.field, "message": e.message} for e in refused]
            message = "the schedule's input does not match the version's inputs schema"
            return number, {}, {"type": INPUT_INVALID, "message": message, "errors": errors}
        try:
            await self._quota_check(inp.tenant_id)
        except QuotaExceededError as exc:
            return number, {}, {"type": RUN_QUOTA_EXCEEDED, "message": f"the tenant's run quota is exhausted: {exc}"}
        return number, version.definition, None

    def all(self) -> list[Any]:
        """Every activity callable, for the worker."""
        return [self.begin_scheduled]


def _scheduled_row(inp: ScheduledRunStart, run_id: str, version: int, error: dict[str, Any] | None) -> PipelineRun:
    """The row of a scheduled run: ``queued``, or ``failed`` with ``error`` when it cannot start."""
    return PipelineRun(
        id=run_id,
        tenant_id=inp.tenant_id,
        pipeline_id=inp.pipeline_id,
        version=version,
        status=PipelineRunStatus.FAILED if error else PipelineRunStatus.QUEUED,
        input=inp.input,
        error=error,
        workflow_id=inp.workflow_id,
        workflow_run_id=activity.info().workflow_run_id,
        schedule_id=inp.schedule_id,
    )
