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
    parent_run_id: str | None
    parent_step_id: str | None
    reused_steps: list[str] | None
    schedule_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class RunStatusRow:
    """What a run's event stream and steps pages need of it."""

    status: str
    workflow_id: str
    reused_steps: list[str] | None


@dataclass(slots=True)
class PipelineStepRow:
    """A step of a pipeline run (or an item of a map step: ``m[3]``)."""

    run_id: str
    step_id: str
    type: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    attempts: int
    output: Any
    error: dict[str, Any] | None
    seq: int = 0
    """Position among the run's steps in the order they were first written (the steps pages' key)."""
    items: int | None = None
    """A map step's items recorded so far (``None`` for other steps)."""


TOP_LEVEL: LiteralString = "strpos(s.step_id, '[') = 0"
"""A top-level step of the definition (a map's items are ``<map id>[<index>]``)."""


def _item_of(item: LiteralString, parent: LiteralString) -> LiteralString:
    """``item`` is a direct item of the map step ``parent`` (``m[3]``, not a nested map's ``m[3][0]``)."""
    clause: LiteralString = "starts_with("
    clause += item
    clause += ", "
    clause += parent
    clause += " || '[') AND substr("
    clause += item
    clause += ", length("
    clause += parent
    clause += ") + 2) ~ '^[0-9]+\\]$'"
    return clause


_COLUMNS: LiteralString = "s.step_id, s.type, s.status, s.started_at, s.ended_at, s.attempts, s.output, s.error, s.id, "
_COLUMNS += "CASE WHEN s.type = 'map' THEN (SELECT count(*) FROM pipeline_run_step i"
_COLUMNS += (
    " WHERE i.run_id = s.run_id AND i.tenant_id = s.tenant_id AND " + _item_of("i.step_id", "s.step_id") + ") END"
)
"""``PipelineStepRow``'s fields after ``run_id``: ``items`` counts a map step's direct items."""
_STEPS_JSON: LiteralString = ", (SELECT coalesce(json_agg(json_build_array(" + _COLUMNS
_STEPS_JSON += ") ORDER BY s.id), '[]') FROM pipeline_run_step s"
_STEPS_JSON += " WHERE s.run_id = pipeline_run.id AND s.tenant_id = %(tenant)s AND " + TOP_LEVEL + ")"
"""The run's top-level steps as one JSON array, read in the same statement: one snapshot, so a run and its steps
always agree (a run and then its steps, read apart, can disagree). A map's items are paged apart (``steps``)."""


def _steps_page(*, parent: bool, after: bool) -> bytes:
    query: LiteralString = "SELECT s.run_id, " + _COLUMNS
    query += " FROM pipeline_run_step s WHERE s.run_id = %(run)s AND s.tenant_id = %(tenant)s AND "
    query += _item_of("s.step_id", "%(parent)s::text") if parent else TOP_LEVEL
    if after:
        query += " AND s.id > %(after)s"
    query += " ORDER BY s.id LIMIT %(limit)s"
    return query.encode()


_STEPS_PAGES = {(p, a): _steps_page(parent=p, after=a) for p in (False, True) for a in (False, True)}
_EVERY_STEP: LiteralString = "SELECT s.run_id, " + _COLUMNS
_EVERY_STEP += " FROM pipeline_run_step s WHERE s.run_id = %(run)s AND s.tenant_id = %(tenant)s ORDER BY s.id"
STATUS_BY_ID: LiteralString = (
    "SELECT status, workflow_id, reused_steps FROM pipeline_run WHERE id = %(id)s AND tenant_id = %(tenant)s"
)


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
        PipelineStepRow(
            run.id, step_id, type_, status, _time(started), _time(ended), attempts, output, error, seq, items
        )
        for step_id, type_, status, started, ended, attempts, output, error, seq, items in values[-1]
    ]
    return run, steps


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class PipelineRunReads(TenantReader):
    """Reads of one tenant's pipeline runs; each run comes with its top-level steps from the same snapshot."""

    async def status(self, run_id: str) -> RunStatusRow | None:
        """The status, workflow id and reused steps of the run ``run_id`` of this tenant."""
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=args_row(RunStatusRow))
            return await (await cursor.execute(STATUS_BY_ID, {"id": run_id, "tenant": self._tenant_id})).fetchone()

    async def steps(
        self, run_id: str, *, limit: int, after: int | None = None, parent: str | None = None
    ) -> list[PipelineStepRow]:
        """At most ``limit`` steps after position ``after``: the top-level ones, or the items of map ``parent``."""
        params = {"run": run_id, "tenant": self._tenant_id, "parent": parent, "after": after, "limit": limit}
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=args_row(PipelineStepRow))
            return await (
                await cursor.execute(_STEPS_PAGES[(parent is not None, after is not None)], params)
            ).fetchall()

    async def every_step(self, run_id: str) -> list[PipelineStepRow]:
        """Every step of the run, map items included, in the order they were first written (what a re-run copies)."""
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=args_row(PipelineStepRow))
            params = {"run": run_id, "tenant": self._tenant_id}
            return await (await cursor.execute(_EVERY_STEP.encode(), params)).fetchall()

    async def get(self, run_id: str) -> RunWithSteps | None:
        """The run ``run_id`` of this tenant with its top-level steps (in the order they were first written)."""
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
