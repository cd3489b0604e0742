"""The read projection of pipeline runs (``pipeline_run``, ``pipeline_run_step``): idempotent writes.

The API inserts a run (``queued``) when it starts one; the pipelines worker's activities
write everything after that, one statement per write, so a retried activity just writes
the same row again: steps upsert on ``(run_id, step_id)``, a run's status never leaves a
final status, and a final run's output/error are written once (the first finish wins).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core.contracts.pipelines import PipelineRunStatus, PipelineStepStatus
from core.db.engine import statement
from core.db.models import PipelineRun, PipelineRunStep, utcnow

_run = PipelineRun.__table__  # type: ignore[attr-defined]
_step = PipelineRunStep.__table__  # type: ignore[attr-defined]
_FINAL = tuple(str(s) for s in PipelineRunStatus.FINAL)

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

    async def insert(self, run: PipelineRun, steps: Sequence[StepWrite] = ()) -> tuple[PipelineRun, bool]:
        """Insert ``run`` and its first ``steps`` in one transaction; ``(run, True)``.

        With its idempotency key already used, the run that used it and ``False``; without a key,
        a run of the same id already recorded (a retried insert of a derived id) and ``False``.
        """
        values = {c.name: getattr(run, c.name) for c in _run.columns}
        async with self._engine.begin() as conn:
            inserted = (
                await conn.execute(insert(_run).values(values).on_conflict_do_nothing().returning(_run.c.id))
            ).first()
            if inserted is not None:
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
