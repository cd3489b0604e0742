"""``optimizer.begin_scheduled``: the first activity of an ``OptimizerWorkflow`` a schedule started.

The schedule's start has no run id, so this activity records the run: its id derives from the
workflow id (a retried attempt finds the row the first one wrote and answers the same), its
``schedule_id`` is the schedule's. Its dataset is built fresh from the agent's latest feedback:
the completed runs of the last :data:`~core.optimizer.schedules.FEEDBACK_WINDOW` whose mean
feedback score is at least :data:`~core.optimizer.schedules.MIN_SCORE` (their outputs become
``expected``), the newest ``AIMPACT_DATASET_MAX_EXAMPLES`` of them; when those are exactly the
examples of the agent's newest dataset, that dataset is used again. The baseline is the agent's
current version, the metric ``exact``. A fire that cannot run is recorded ``failed`` with a
typed error (``AgentArchived``, ``OptimizerTooFewExamples``, ``DatasetLimitReached``, and
``OptimizerRunQuotaExceeded`` when the tenant already has as many live optimizer runs as its quota
allows: the run is inserted under the same per-tenant lock and count as the API's), never dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities.errors import classify_database_errors
from core.contracts.optimizer import (
    AGENT_ARCHIVED,
    DATASET_LIMIT,
    RUN_QUOTA,
    TOO_FEW_EXAMPLES,
    OptimizerRunStatus,
    ScheduledBegun,
    ScheduledStart,
)
from core.db.engine import make_sessionmaker
from core.db.models import Dataset, OptimizerRun
from core.db.repos import AgentRepository, Author
from core.optimizer.dataset_store import DatasetLimitReached, DatasetStore, RunFilter
from core.optimizer.datasets import MIN_EXAMPLES, Source, build
from core.optimizer.metrics import ExactMetric
from core.optimizer.run_store import OptimizerRunStore, run_seed
from core.optimizer.schedules import FEEDBACK_WINDOW, MIN_SCORE, scheduled_run_id
from core.quotas import QuotaExceededError, stored_quotas
from core.settings import Settings

_METRIC = ExactMetric(type="exact").model_dump(mode="json", exclude_none=True)


class ScheduledOptimizerActivities:
    """Records the runs optimizer schedules start, with the dataset each is built on."""

    def __init__(self, engine: AsyncEngine, settings: Settings):
        self._engine = engine
        self._settings = settings
        self._runs = OptimizerRunStore(engine)

    @activity.defn(name="optimizer.begin_scheduled")
    @classify_database_errors
    async def begin_scheduled(self, inp: ScheduledStart) -> ScheduledBegun:
        """Record the scheduled run (once) over a fresh dataset; answer what it optimizes, or its recorded failure."""
        run_id = scheduled_run_id(inp.workflow_id)
        found = await self._runs.get(inp.tenant_id, run_id)
        if found is None:
            await self._insert(inp, run_id)
            found = await self._runs.get(inp.tenant_id, run_id)
            assert found is not None  # inserted, or inserted by an attempt before this one
        if found.status == OptimizerRunStatus.FAILED and found.error:
            return ScheduledBegun(run_id=run_id, baseline_version=found.baseline_version, error=found.error)
        return ScheduledBegun(
            run_id=run_id,
            dataset_id=found.dataset_id or "",
            baseline_version=found.baseline_version,
            metric=found.metric,
            seed=run_seed(found.dataset_hash, found.baseline_version),
        )

    async def _insert(self, inp: ScheduledStart, run_id: str) -> None:
        """Record the run: ``queued`` within the tenant's live-run quota, else ``failed`` saying which quota."""
        async with make_sessionmaker(self._engine)() as session:
            cap = (await stored_quotas(session, self._settings, inp.tenant_id)).optimizer_runs
            live = await self._runs.live(inp.tenant_id)
            if live >= cap.limit:  # at the quota already: no dataset is built for a run that cannot start
                row = _row(inp, run_id, 0, None, _over_quota(cap.refusal(live)))
            else:
                row = await self._record(session, inp, run_id)
                await session.commit()
        if row.status != OptimizerRunStatus.QUEUED:
            await self._runs.insert(row)
            return
        try:
            await self._runs.insert(row, cap=cap)
        except QuotaExceededError as exc:  # the quota filled while the dataset was built
            await self._runs.insert(_row(inp, run_id, row.baseline_version, None, _over_quota(exc)))

    async def _record(self, session: AsyncSession, inp: ScheduledStart, run_id: str) -> OptimizerRun:
        """The run's row: ``queued`` over its dataset (created in ``session``), or ``failed`` with why."""
        agent = await AgentRepository(session, inp.tenant_id).get_any(inp.agent_id)
        if agent is None or agent.deleted_at is not None:
            message = f"agent {inp.agent_id} is archived: its schedule starts no runs"
            return _row(inp, run_id, 0, None, {"type": AGENT_ARCHIVED, "message": message})
        try:
            dataset = await self._dataset(session, inp, run_id)
        except DatasetLimitReached as exc:
            error = {"type": DATASET_LIMIT, "message": f"{exc} (AIMPACT_DATASETS_PER_TENANT)"}
            return _row(inp, run_id, agent.version, None, error)
        if isinstance(dataset, str):
            return _row(inp, run_id, agent.version, None, {"type": TOO_FEW_EXAMPLES, "message": dataset})
        return _row(inp, run_id, agent.version, dataset, None)

    async def _dataset(self, session: AsyncSession, inp: ScheduledStart, run_id: str) -> Dataset | str:
        """The dataset of the agent's latest well-rated runs (its newest one when identical), or why there is none."""
        store = DatasetStore(session, inp.tenant_id)
        since = datetime.now(UTC) - FEEDBACK_WINDOW
        wanted = RunFilter(min_score=MIN_SCORE, since=since, limit=self._settings.dataset_max_examples)
        examples = await store.run_examples(inp.agent_id, wanted)
        built = build(examples)
        if len(built.examples) < MIN_EXAMPLES:
            return (
                f"{len(built.examples)} distinct completed runs since {since:%Y-%m-%d %H:%M} UTC have a mean "
                f"feedback score of at least {MIN_SCORE:g}; a dataset needs {MIN_EXAMPLES}"
            )
        newest = await store.of_agent(inp.agent_id, limit=1)
        if newest and newest[0].hash == built.hash:
            return newest[0]
        filters = {"min_score": MIN_SCORE, "since": since.isoformat(), "limit": self._settings.dataset_max_examples}
        return await store.create(
            inp.agent_id,
            f"scheduled {datetime.now(UTC):%Y-%m-%d %H:%M}",
            built,
            source=Source.RUNS,
            filters=filters,
            author=Author(kind="optimizer", id=run_id),
            limit=self._settings.datasets_per_tenant,
        )

    def all(self) -> list[Any]:
        """Every activity callable, for the worker."""
        return [self.begin_scheduled]


def _over_quota(refusal: QuotaExceededError) -> dict[str, Any]:
    return {"type": RUN_QUOTA, "message": str(refusal)}


def _row(
    inp: ScheduledStart, run_id: str, version: int, dataset: Dataset | None, error: dict[str, Any] | None
) -> OptimizerRun:
    """The row of a scheduled run: ``queued`` over ``dataset``, or ``failed`` with ``error``."""
    return OptimizerRun(
        id=run_id,
        tenant_id=inp.tenant_id,
        agent_id=inp.agent_id,
        dataset_id=dataset.id if dataset else None,
        status=(OptimizerRunStatus.FAILED if error else OptimizerRunStatus.QUEUED).value,
        baseline_version=version,
        metric=_METRIC,
        budget={"max_evals": inp.max_evals, "max_cost_usd": inp.max_cost_usd},
        strategies=inp.strategies,
        auto_promote=inp.auto_promote,
        reason=f"failed: {error['message']}" if error else None,
        error=error,
        dataset_hash=dataset.hash if dataset else "",
        workflow_id=inp.workflow_id,
        schedule_id=inp.schedule_id,
    )
