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


RUN_BY_ID = select_columns(PipelineRunRow, "SELECT {} FROM pipeline_run WHERE id = %s AND tenant_id = %s")
STEPS_OF_RUN = select_columns(
    PipelineStepRow, "SELECT {} FROM pipeline_run_step WHERE run_id = %s AND tenant_id = %s ORDER BY id"
)
STEPS_OF_RUNS = select_columns(
    PipelineStepRow, "SELECT {} FROM pipeline_run_step WHERE tenant_id = %s AND run_id = ANY(%s) ORDER BY run_id, id"
)


def _list_query(*, pipeline: bool, status: bool, after: bool) -> bytes:
    query: LiteralString = "SELECT {} FROM pipeline_run WHERE tenant_id = %(tenant)s"
    if pipeline:
        query += " AND pipeline_id = %(pipeline)s"
    if status:
        query += " AND status = %(status)s"
    if after:
        query += " AND (created_at, id) < (%(moment)s, %(last_id)s)"
    return select_columns(PipelineRunRow, query + " ORDER BY created_at DESC, id DESC LIMIT %(limit)s")


_FLAGS = (False, True)
_LISTS = {(p, s, a): _list_query(pipeline=p, status=s, after=a) for p in _FLAGS for s in _FLAGS for a in _FLAGS}


class PipelineRunReads(TenantReader):
    """Reads of one tenant's pipeline runs."""

    async def get(self, run_id: str) -> tuple[PipelineRunRow, list[PipelineStepRow]] | None:
        """The run ``run_id`` of this tenant with its steps (in the order they were first written)."""
        async with self._pool.connection() as conn:
            runs = conn.cursor(row_factory=args_row(PipelineRunRow))
            run = await (await runs.execute(RUN_BY_ID, (run_id, self._tenant_id))).fetchone()
            if run is None:
                return None
            steps = conn.cursor(row_factory=args_row(PipelineStepRow))
            return run, await (await steps.execute(STEPS_OF_RUN, (run_id, self._tenant_id))).fetchall()

    async def list(
        self, *, limit: int, after: Keyset | None = None, pipeline_id: str | None = None, status: str | None = None
    ) -> tuple[list[PipelineRunRow], dict[str, list[PipelineStepRow]]]:
        """At most ``limit`` runs newest first after the keyset ``after``, and their steps by run id."""
        params: dict[str, Any] = {"tenant": self._tenant_id, "pipeline": pipeline_id, "status": status, "limit": limit}
        if after is not None:
            params["moment"], params["last_id"] = after
        query = _LISTS[(pipeline_id is not None, status is not None, after is not None)]
        async with self._pool.connection() as conn:
            runs = conn.cursor(row_factory=args_row(PipelineRunRow))
            found = await (await runs.execute(query, params)).fetchall()
            by_run: dict[str, list[PipelineStepRow]] = {run.id: [] for run in found}
            if found:
                steps = conn.cursor(row_factory=args_row(PipelineStepRow))
                for step in await (await steps.execute(STEPS_OF_RUNS, (self._tenant_id, list(by_run)))).fetchall():
                    by_run[step.run_id].append(step)
        return found, by_run
