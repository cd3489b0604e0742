"""The read projection of pipeline runs (``pipeline_run``, ``pipeline_run_step``): idempotent writes.

The API inserts a run (``queued``) when it starts one; the pipelines worker's activities
write everything after that, one statement per write, so a retried activity just writes
the same row again: steps upsert on ``(run_id, step_id)``, a run's status never leaves a
final status, and a final run's output/error are written once (the first finish wins).

Concurrency limits (``max_concurrent_runs``) are decided under a transaction-scoped
advisory lock on the pipeline id, so two starts or two claims never both take the last slot:

- ``reject``: ``insert(run, limit=n)`` inserts, counts the pipeline's live runs (``queued``,
  ``running``, ``waiting_approval``) and rolls back with :class:`ConcurrencyLimitError`
  when there are more than ``n``.
- ``queue``: the run is inserted ``queued``; its workflow's ``claim_slot`` marks it waiting
  (its workflow run id set) and moves it to ``running`` once fewer than ``n`` runs of the
  pipeline are ``running``/``waiting_approval`` and it is the oldest waiting run
  (``created_at``, then id). A run that leaves ``queued`` (cancelled) leaves the queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.contracts.pipelines import OnConcurrencyLimit, PipelineRunStatus, PipelineStepStatus
from core.db.engine import statement
from core.db.models import Pipeline, PipelineRun, PipelineRunStep, PipelineVersion, utcnow
from core.db.projection import StaleRun, stale_query

_run = PipelineRun.__table__  # type: ignore[attr-defined]
_pipeline = Pipeline.__table__  # type: ignore[attr-defined]
_version = PipelineVersion.__table__  # type: ignore[attr-defined]
_step = PipelineRunStep.__table__  # type: ignore[attr-defined]
_FINAL = tuple(str(s) for s in PipelineRunStatus.FINAL)
_STEP_FINAL = tuple(str(s) for s in PipelineStepStatus.FINAL)
_HOLDING = (PipelineRunStatus.RUNNING.value, PipelineRunStatus.WAITING_APPROVAL.value)
"""Statuses that hold one of a pipeline's concurrency slots once claimed."""
_LIVE = (PipelineRunStatus.QUEUED.value, *_HOLDING)
_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended('pipeline-slots:' || :pipeline_id, 0))")


class ConcurrencyLimitError(Exception):
    """The pipeline already has ``limit`` live runs (``on_concurrency_limit: reject``)."""

    def __init__(self, pipeline_id: str, limit: int):
        super().__init__(
            f"pipeline {pipeline_id} already has {limit} live run{'s' if limit > 1 else ''} "
            f"(max_concurrent_runs); start it again once one has ended"
        )
        self.pipeline_id = pipeline_id
        self.limit = limit


def rejecting_limit(definition: dict[str, Any]) -> int | None:
    """``max_concurrent_runs`` of a definition that refuses starts at its limit, else ``None``."""
    limit = definition.get("max_concurrent_runs")
    reject = definition.get("on_concurrency_limit") == OnConcurrencyLimit.REJECT
    return limit if reject and isinstance(limit, int) else None


_step_insert = insert(_step)
_UPSERT_STEP = _step_insert.on_conflict_do_update(
    index_elements=["run_id", "step_id"],
    set_={
        "status": _step_insert.excluded.status,
        "attempts": _step_insert.excluded.attempts,
        "started_at": func.coalesce(_step.c.started_at, _step_insert.excluded.started_at),
        "ended_at": _step_insert.excluded.ended_at,
        "output": _step_insert.excluded.output,
        "error": _step_insert.excluded.error,
    },
    where=text(  # literal values: a bound list cannot be expanded in an executemany
        "pipeline_run_step.status NOT IN ({})".format(", ".join(sorted(f"'{s}'" for s in PipelineStepStatus.FINAL)))
    ),
)
"""``type`` and a set ``started_at`` keep their first value; a retried write of the same state changes nothing,
and a step once final stays as it ended (a write that arrives late cannot move it back to ``running``)."""


@dataclass(kw_only=True)
class StepWrite:
    """A step's state as one write records it."""

    step_id: str
    type: str
    status: str
    attempts: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    output: Any = None
    error: dict[str, Any] | None = None


class PipelineRunStore:
    """Writes of the pipeline-run projection (the worker's side; the API only inserts runs)."""

    def __init__(self, engine: AsyncEngine):
        self._engine = engine

    async def insert(
        self, run: PipelineRun, steps: Sequence[StepWrite] = (), *, limit: int | None = None
    ) -> tuple[PipelineRun, bool]:
        """Insert ``run`` and its first ``steps`` in one transaction; ``(run, True)``.

        With its idempotency key already used, the run that used it and ``False``; without a key,
        a run of the same id already recorded (a retried insert of a derived id) and ``False``.

        Raises:
            ConcurrencyLimitError: ``limit`` is set and the pipeline already has that many live runs.
        """
        values = {c.name: getattr(run, c.name) for c in _run.columns}
        async with self._engine.begin() as conn:
            if limit is not None:
                await conn.execute(_LOCK, {"pipeline_id": run.pipeline_id})
            inserted = (
                await conn.execute(insert(_run).values(values).on_conflict_do_nothing().returning(_run.c.id))
            ).first()
            if inserted is not None:
                if limit is not None and await _count(conn, run.pipeline_id, _LIVE) > limit:
                    raise ConcurrencyLimitError(run.pipeline_id, limit)  # rolls the insert back
                if steps:
                    await conn.execute(insert(_step), _step_rows(run.tenant_id, run.id, steps))
                return run, True
            if run.idempotency_key is None:
                found = select(_run).where(_run.c.tenant_id == run.tenant_id, _run.c.id == run.id)
            else:
                found = select(_run).where(
                    _run.c.tenant_id == run.tenant_id, _run.c.idempotency_key == run.idempotency_key
                )
            row = (await conn.execute(found)).one()
        return PipelineRun(**row._asdict()), False

    async def live_version(
        self, tenant_id: str, pipeline_id: str, version: int | None = None
    ) -> tuple[int, dict[str, Any]] | None:
        """``(version, definition)`` of the live pipeline ``pipeline_id``: its current version, or ``version``."""
        number = _pipeline.c.version if version is None else version
        query = (
            select(_version.c.version, _version.c.definition)
            .join(_pipeline, _pipeline.c.id == _version.c.pipeline_id)
            .where(
                _pipeline.c.id == pipeline_id,
                _pipeline.c.tenant_id == tenant_id,
                _pipeline.c.deleted_at.is_(None),
                _version.c.tenant_id == tenant_id,
                _version.c.version == number,
            )
        )
        async with statement(self._engine) as conn:
            row = (await conn.execute(query)).first()
        return (row.version, row.definition) if row is not None else None

    async def claim_slot(self, tenant_id: str, run_id: str, pipeline_id: str, limit: int, workflow_run_id: str) -> bool:
        """Move the queued run to ``running`` if a slot is free and it is first in line; whether it holds one.

        A run no longer ``queued`` (a claim retried after its answer was lost) holds its slot.
        """
        async with self._engine.begin() as conn:
            await conn.execute(_LOCK, {"pipeline_id": pipeline_id})
            mine = _run.c.id == run_id, _run.c.tenant_id == tenant_id
            status = (
                await conn.execute(
                    update(_run).where(*mine).values(workflow_run_id=workflow_run_id).returning(_run.c.status)
                )
            ).scalar_one()
            if status != PipelineRunStatus.QUEUED:
                return True
            if await _count(conn, pipeline_id, _HOLDING) >= limit:
                return False
            first = (
                await conn.execute(
                    select(_run.c.id)
                    .where(
                        _run.c.pipeline_id == pipeline_id,
                        _run.c.status == PipelineRunStatus.QUEUED.value,
                        _run.c.workflow_run_id.is_not(None),
                    )
                    .order_by(_run.c.created_at, _run.c.id)
                    .limit(1)
                )
            ).scalar_one()
            if first != run_id:
                return False
            await conn.execute(
                update(_run).where(*mine).values(status=PipelineRunStatus.RUNNING.value, updated_at=utcnow())
            )
            return True

    async def by_idempotency_key(self, tenant_id: str, key: str) -> PipelineRun | None:
        """The run the tenant started with the ``Idempotency-Key`` ``key``."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(_run).where(_run.c.tenant_id == tenant_id, _run.c.idempotency_key == key))
            ).first()
        return PipelineRun(**row._asdict()) if row is not None else None

    async def set_live(self, tenant_id: str, run_id: str, *, status: str = "", workflow_run_id: str = "") -> None:
        """A live status (``running``, ``waiting_approval``) and/or the workflow's run id, in one statement.

        A final run keeps its status.
        """
        values: dict[str, Any] = {}
        if status:
            values |= {"status": status, "updated_at": utcnow()}
        if workflow_run_id:
            values["workflow_run_id"] = workflow_run_id
        if not values:
            return
        async with statement(self._engine) as conn:
            await conn.execute(
                update(_run)
                .where(_run.c.id == run_id, _run.c.tenant_id == tenant_id, _run.c.status.not_in(_FINAL))
                .values(values)
            )

    async def finish(
        self,
        tenant_id: str,
        run_id: str,
        *,
        status: str,
        output: Any,
        error: dict[str, Any] | None,
        usage: tuple[int, int, float] = (0, 0, 0.0),
    ) -> None:
        """Record the run's outcome once (a retried or late finish of a final run changes nothing)."""
        input_tokens, output_tokens, cost = usage
        async with statement(self._engine) as conn:
            await conn.execute(
                update(_run)
                .where(_run.c.id == run_id, _run.c.tenant_id == tenant_id, _run.c.status.not_in(_FINAL))
                .values(
                    status=status,
                    output=output,
                    error=error,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    cost_usd=cost,
                    updated_at=utcnow(),
                )
            )

    async def stale_runs(
        self, *, before: datetime, limit: int, after: tuple[datetime, str] | None = None, tenant_id: str | None = None
    ) -> list[StaleRun]:
        """Live runs not updated since ``before``, oldest first, after the ``(updated_at, id)`` cursor ``after``."""
        query = stale_query(_run, _LIVE, before=before, after=after, tenant_id=tenant_id)
        async with statement(self._engine) as conn:
            rows = (await conn.execute(query.limit(limit))).all()
        return [StaleRun(row.tenant_id, row.id, row.workflow_id, row.updated_at, pipeline=True) for row in rows]

    async def close_live_run(
        self, tenant_id: str, run_id: str, *, status: str, output: Any, error: dict[str, Any] | None
    ) -> bool:
        """Write the outcome of a run whose workflow ended without it, and cancel its unfinished steps.

        ``False`` (nothing changed) when the run is final already. Its usage stays as written.
        """
        async with self._engine.begin() as conn:
            closed = (
                await conn.execute(
                    update(_run)
                    .where(_run.c.id == run_id, _run.c.tenant_id == tenant_id, _run.c.status.not_in(_FINAL))
                    .values(status=status, output=output, error=error, updated_at=utcnow())
                    .returning(_run.c.id)
                )
            ).first()
            if closed is None:
                return False
            await conn.execute(
                update(_step)
                .where(_step.c.run_id == run_id, _step.c.status.not_in(_STEP_FINAL))
                .values(status=PipelineStepStatus.CANCELLED.value, ended_at=func.coalesce(_step.c.ended_at, utcnow()))
            )
        return True

    async def write_steps(self, tenant_id: str, run_id: str, steps: list[StepWrite]) -> None:
        """Upsert several steps in one statement (keyed by run and step id)."""
        if not steps:
            return
        async with statement(self._engine) as conn:
            await conn.execute(_UPSERT_STEP, _step_rows(tenant_id, run_id, steps))


def _step_rows(tenant_id: str, run_id: str, steps: Sequence[StepWrite]) -> list[dict[str, Any]]:
    return [
        {
            "tenant_id": tenant_id,
            "run_id": run_id,
            "step_id": s.step_id,
            "type": s.type,
            "status": s.status,
            "attempts": s.attempts,
            "started_at": s.started_at,
            "ended_at": s.ended_at,
            "output": s.output,
            "error": s.error,
        }
        for s in steps
    ]


async def _count(conn: AsyncConnection, pipeline_id: str, statuses: tuple[str, ...]) -> int:
    """Runs of ``pipeline_id`` in ``statuses``."""
    found = await conn.execute(
        select(func.count()).select_from(_run).where(_run.c.pipeline_id == pipeline_id, _run.c.status.in_(statuses))
    )
    return int(found.scalar_one())
