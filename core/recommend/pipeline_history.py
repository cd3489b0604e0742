"""The pipeline history the rules read: per top-level step of each live pipeline's current version, and per run.

Runs count once they ended (``completed`` or ``failed``); a map's items (``m[3]``) are counted
per run for the map, never as steps of their own. The SQL is built from constant fragments of
this module (``noqa: S608``); every value is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.recommend.history import RunTable, Scope, live_versions

RUNS_PER_PIPELINE = 5000
"""The newest runs of a pipeline version read per run (durations of its steps): bounded work."""


@dataclass(frozen=True, kw_only=True)
class PipelineState:
    """A live pipeline at its current version."""

    pipeline_id: str
    version: int
    definition: dict[str, Any]


async def live_pipelines(conn: AsyncConnection, tenant_id: str) -> dict[str, PipelineState]:
    """The tenant's live pipelines with their current definitions, by id."""
    rows = await live_versions(conn, tenant_id, "pipeline", "definition")
    return {r.id: PipelineState(pipeline_id=r.id, version=r.version, definition=r.definition) for r in rows}


@dataclass(kw_only=True)
class PipelineStepGroup:
    """One top-level step of a pipeline version over its runs in the window."""

    pipeline_id: str
    version: int
    step_id: str
    n: int
    failed: int
    retried: int
    retried_ok: int
    extra_attempts: int
    examples: list[str] = field(default_factory=list)


_IN_SCOPE = RunTable("p", "pipeline_id", "version", "pipeline").in_scope()


async def pipeline_runs(conn: AsyncConnection, scope: Scope) -> dict[str, int]:
    """Ended runs per pipeline in scope."""
    rows = await conn.execute(
        text(
            f"SELECT p.pipeline_id, count(*) AS n FROM pipeline_run p WHERE {_IN_SCOPE}"  # noqa: S608
            " AND p.status IN ('completed', 'failed') GROUP BY p.pipeline_id"
        ),
        scope.params(),
    )
    return {row.pipeline_id: row.n for row in rows}


async def pipeline_step_groups(conn: AsyncConnection, scope: Scope) -> list[PipelineStepGroup]:
    """Outcomes and attempts of each top-level step of the pipeline versions in scope."""
    rows = await conn.execute(
        text(
            "SELECT p.pipeline_id, p.version, s.step_id, count(*) AS n,"  # noqa: S608
            " count(*) FILTER (WHERE s.status = 'failed') AS failed,"
            " count(*) FILTER (WHERE s.attempts > 1) AS retried,"
            " count(*) FILTER (WHERE s.attempts > 1 AND s.status = 'completed') AS retried_ok,"
            " coalesce(sum(s.attempts - 1) FILTER (WHERE s.attempts > 1), 0) AS extra,"
            " (array_agg(p.id ORDER BY p.created_at DESC) FILTER (WHERE s.status = 'failed'))[1:5] AS examples"
            " FROM pipeline_run p JOIN pipeline_run_step s ON s.run_id = p.id"
            f" WHERE {_IN_SCOPE} AND s.status IN ('completed', 'failed') AND strpos(s.step_id, '[') = 0"
            " GROUP BY p.pipeline_id, p.version, s.step_id"
        ),
        scope.params(),
    )
    return [
        PipelineStepGroup(
            pipeline_id=r.pipeline_id,
            version=r.version,
            step_id=r.step_id,
            n=r.n,
            failed=r.failed,
            retried=r.retried,
            retried_ok=r.retried_ok,
            extra_attempts=int(r.extra),
            examples=list(r.examples or []),
        )
        for r in rows
    ]


@dataclass(frozen=True, kw_only=True)
class RunSteps:
    """One completed run: the seconds of its completed top-level steps, and the items of each map."""

    run_id: str
    seconds: dict[str, float]
    items: dict[str, int]


async def run_steps(
    conn: AsyncConnection, scope: Scope, pipeline_id: str, version: int, step_ids: Sequence[str]
) -> list[RunSteps]:
    """The newest completed runs of the pipeline version: durations of ``step_ids`` and item counts of maps."""
    rows = await conn.execute(
        text(
            "WITH runs AS (SELECT p.id, p.created_at FROM pipeline_run p WHERE p.tenant_id = :t"
            " AND p.pipeline_id = :pid AND p.version = :v AND p.created_at >= :since AND p.status = 'completed'"
            " ORDER BY p.created_at DESC LIMIT :cap)"
            " SELECT r.id AS run_id,"
            " jsonb_object_agg(s.step_id, extract(epoch FROM s.ended_at - s.started_at))"
            "   FILTER (WHERE s.step_id = ANY(:ids) AND s.status = 'completed' AND s.ended_at IS NOT NULL)"
            "   AS seconds,"
            " array_agg(split_part(s.step_id, '[', 1))"
            "   FILTER (WHERE s.step_id ~ '^[A-Za-z_][A-Za-z0-9_]*\\[[0-9]+\\]$') AS item_of"
            " FROM runs r JOIN pipeline_run_step s ON s.run_id = r.id"
            " GROUP BY r.id, r.created_at ORDER BY r.created_at DESC"
        ),
        {
            "t": scope.tenant_id,
            "since": scope.since,
            "pid": pipeline_id,
            "v": version,
            "ids": list(step_ids),
            "cap": RUNS_PER_PIPELINE,
        },
    )
    found = []
    for row in rows:
        items: dict[str, int] = {}
        for name in row.item_of or []:
            items[name] = items.get(name, 0) + 1
        seconds = {name: float(value) for name, value in (row.seconds or {}).items()}
        found.append(RunSteps(run_id=row.run_id, seconds=seconds, items=items))
    return found


async def run_durations(conn: AsyncConnection, scope: Scope) -> list[float]:
    """Seconds from start to end of the newest completed runs in scope, ascending."""
    rows = await conn.execute(
        text(
            "SELECT seconds FROM (SELECT extract(epoch FROM p.updated_at - p.created_at) AS seconds"  # noqa: S608
            f" FROM pipeline_run p WHERE {_IN_SCOPE} AND p.status = 'completed'"
            " ORDER BY p.created_at DESC LIMIT :cap) newest ORDER BY seconds"
        ),
        scope.params() | {"cap": RUNS_PER_PIPELINE},
    )
    return [float(row.seconds) for row in rows]
