"""Reads of pipeline runs at driver speed (plain SQL on the API's psycopg pool), tenant-scoped."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

from psycopg.rows import args_row

from core.db.reads import Keyset, TenantReader, select_columns


@dataclass(slots=True)
class PipelineRunRow:
    """A pipeline run as the API shows it."""

    id: str
    tenant_id: str
    pipeline_id: str
    version: int
    status: str
    input: Any
    output: Any
    error: dict[str, Any] | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    workflow_id: str
    workflow_run_id: str | None
    rerun_of: str | None
    reused_steps: list[str] | None
    schedule_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class PipelineStepRow:
    """A step of a pipeline run (map items too)."""

    run_id: str
    step_id: str
    type: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    attempts: int
    output: Any
    error: dict[str, Any] | None


_STEPS_JSON: LiteralString = (
    ", (SELECT coalesce(json_agg(json_build_array(step_id, type, status, started_at, ended_at, attempts, output, error)"
    " ORDER BY s.id), '[]') FROM pipeline_run_step s WHERE s.run_id = pipeline_run.id AND s.tenant_id = %(tenant)s)"
)
"""The run's steps as one JSON array (``PipelineStepRow``'s fields after ``run_id``), read in the same statement:
one snapshot, so a run and its steps always agree (a run and then its steps, read apart, can disagree)."""


def _query(where: LiteralString, tail: LiteralString = "") -> bytes:
    query: LiteralString = "SELECT {}"
    query += _STEPS_JSON
    query += " FROM pipeline_run WHERE "
    query += where
    query += tail
    return select_columns(PipelineRunRow, query)


RUN_BY_ID = _query("id = %(id)s AND tenant_id = %(tenant)s")


def _list_query(*, pipeline: bool, status: bool, schedule: bool, after: bool) -> bytes:
    where: LiteralString = "tenant_id = %(tenant)s"
    if pipeline:
        where += " AND pipeline_id = %(pipeline)s"
    if schedule:
        where += " AND schedule_id = %(schedule)s"
    if status:
        where += " AND status = %(status)s"
    if after:
        where += " AND (created_at, id) < (%(moment)s, %(last_id)s)"
    return _query(where, " ORDER BY created_at DESC, id DESC LIMIT %(limit)s")


_FLAGS = (False, True)
_LISTS = {
    (p, s, c, a): _list_query(pipeline=p, status=s, schedule=c, after=a)
    for p in _FLAGS
    for s in _FLAGS
    for c in _FLAGS
    for a in _FLAGS
}
RunWithSteps = tuple[PipelineRunRow, list[PipelineStepRow]]


def _run_with_steps(*values: Any) -> RunWithSteps:
    """A row of the queries above: the run's columns, then its steps as a JSON array."""
    run = PipelineRunRow(*values[:-1])
    steps = [
        PipelineStepRow(run.id, step_id, type_, status, _time(started), _time(ended), attempts, output, error)
        for step_id, type_, status, started, ended, attempts, output, error in values[-1]
    ]
    return run, steps


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class PipelineRunReads(TenantReader):
    """Reads of one tenant's pipeline runs; each run comes with its steps from the same snapshot."""

    async def get(self, run_id: str) -> RunWithSteps | None:
        """The run ``run_id`` of this tenant with its steps (in the order they were first written)."""
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=args_row(_run_with_steps))
            return await (await cursor.execute(RUN_BY_ID, {"id": run_id, "tenant": self._tenant_id})).fetchone()

    async def list(
        self,
        *,
        limit: int,
        after: Keyset | None = None,
        pipeline_id: str | None = None,
        status: str | None = None,
        schedule_id: str | None = None,
    ) -> list[RunWithSteps]:
        """At most ``limit`` runs newest first after the keyset ``after``, each with its steps."""
        params: dict[str, Any] = {
            "tenant": self._tenant_id,
            "pipeline": pipeline_id,
            "status": status,
            "schedule": schedule_id,
            "limit": limit,
        }
        if after is not None:
            params["moment"], params["last_id"] = after
        query = _LISTS[(pipeline_id is not None, status is not None, schedule_id is not None, after is not None)]
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=args_row(_run_with_steps))
            return await (await cursor.execute(query, params)).fetchall()
