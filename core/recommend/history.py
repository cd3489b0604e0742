"""The history the rules read: aggregates over one tenant's projections (runs, steps, feedback, pipeline runs).

Every query is filtered by the tenant and a time window on the run's creation, and groups in
PostgreSQL so that what comes back is small: one row per agent version and step name, per
pipeline step, per version, per cluster candidate. A :class:`Scope` narrows a query to the
current version of each live agent or pipeline (mining) or to one version since a moment
(outcomes); a :class:`RunTable` says how it filters a table of runs (``run``, ``pipeline_run``).
The SQL is built from constant fragments of this module (``noqa: S608``); every value is bound.
Steps join their runs by run id alone: the run is the tenant's (its filter), and a tenant filter
on the steps too would let the planner pair the tenant's whole step index with each run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.recommend.stats import Moments


@dataclass(frozen=True, kw_only=True)
class Scope:
    """Which runs: the tenant's since ``since`` (before ``until``); of the owners' current versions only, or of one
    ``owner_id`` (an agent or a pipeline) at ``version``."""

    tenant_id: str
    since: datetime
    until: datetime | None = None
    owner_id: str | None = None
    version: int | None = None

    def params(self) -> dict[str, Any]:
        """Bind parameters of the scope's filter (:meth:`RunTable.in_scope`)."""
        return {
            "t": self.tenant_id,
            "since": self.since,
            "until": self.until,
            "owner": self.owner_id,
            "version": self.version,
        }


@dataclass(frozen=True)
class RunTable:
    """A table of runs as a :class:`Scope` filters it: the runs' alias in a query, their owner and version columns,
    and the owners' table (``id``, ``tenant_id``, ``version``: the current one, ``deleted_at``)."""

    alias: str
    owner_column: str
    version_column: str
    owners: str

    def in_scope(self) -> str:
        """The SQL condition on the runs in a scope, over the scope's bind parameters."""
        run, owner, version = self.alias, f"{self.alias}.{self.owner_column}", f"{self.alias}.{self.version_column}"
        return (
            f" {run}.tenant_id = :t AND {run}.created_at >= :since"  # noqa: S608
            f" AND (CAST(:until AS timestamptz) IS NULL OR {run}.created_at < :until)"
            f" AND (CAST(:owner AS text) IS NULL OR ({owner} = :owner AND {version} = :version))"
            " AND (CAST(:owner AS text) IS NOT NULL OR EXISTS ("
            f" SELECT 1 FROM {self.owners} o WHERE o.id = {owner} AND o.tenant_id = :t AND o.version = {version}"
            " AND o.deleted_at IS NULL)) "
        )


_RUNS_IN_SCOPE = RunTable("r", "agent_id", "agent_version", "agent").in_scope()


@dataclass(frozen=True, kw_only=True)
class AgentState:
    """A live agent at its current version."""

    agent_id: str
    version: int
    config: dict[str, Any]


async def live_versions(conn: AsyncConnection, tenant_id: str, owners: str, column: str) -> Sequence[Row[Any]]:
    """The tenant's live ``owners`` (``agent``, ``pipeline``) at their current versions: ``id``, ``version`` and the
    version's ``column``."""
    rows = await conn.execute(
        text(
            f"SELECT o.id, o.version, v.{column} FROM {owners} o JOIN {owners}_version v ON v.{owners}_id = o.id"  # noqa: S608
            " AND v.version = o.version WHERE o.tenant_id = :t AND v.tenant_id = :t AND o.deleted_at IS NULL"
        ),
        {"t": tenant_id},
    )
    return rows.all()


async def live_agents(conn: AsyncConnection, tenant_id: str) -> dict[str, AgentState]:
    """The tenant's live agents with their current configuration, by id."""
    rows = await live_versions(conn, tenant_id, "agent", "config")
    return {row.id: AgentState(agent_id=row.id, version=row.version, config=row.config) for row in rows}


@dataclass(frozen=True, kw_only=True)
class RunVolume:
    """Runs of one agent version in scope, how many failed, and their cost."""

    agent_id: str
    version: int
    runs: int
    failed: int
    bad: int
    """Runs failed or rated below ``BAD_SCORE`` (mean of their feedback)."""
    cost: Moments
    feedback: Moments
    """Per-run mean feedback scores (runs with feedback only)."""


BAD_SCORE = 0.5
_SCORED = "SELECT run_id, avg(score) AS s FROM run_feedback WHERE tenant_id = :t GROUP BY run_id"


async def run_volumes(conn: AsyncConnection, scope: Scope, *, all_versions: bool = False) -> list[RunVolume]:
    """Per agent version in scope (every version of the live agents with ``all_versions``): runs, failures, cost,
    feedback."""
    where = _RUNS_IN_SCOPE
    if all_versions:
        where = (
            "r.tenant_id = :t AND r.created_at >= :since AND EXISTS (SELECT 1 FROM agent a WHERE a.id = r.agent_id"
            " AND a.tenant_id = :t AND a.deleted_at IS NULL)"
        )
    rows = await conn.execute(
        text(
            f"WITH scored AS ({_SCORED})"  # noqa: S608
            " SELECT r.agent_id, r.agent_version, count(*) AS runs,"
            " count(*) FILTER (WHERE r.status = 'failed') AS failed,"
            " count(*) FILTER (WHERE r.status = 'failed' OR sc.s < :bad) AS bad,"
            " avg(r.cost_usd) AS cost, coalesce(var_samp(r.cost_usd), 0) AS cost_var,"
            " count(sc.s) AS fb_n, coalesce(avg(sc.s), 0) AS fb_mean, coalesce(var_samp(sc.s), 0) AS fb_var"
            " FROM run r LEFT JOIN scored sc ON sc.run_id = r.id"
            f" WHERE {where} AND r.status IN ('completed', 'failed')"
            " GROUP BY r.agent_id, r.agent_version"
        ),
        scope.params() | {"bad": BAD_SCORE},
    )
    return [
        RunVolume(
            agent_id=row.agent_id,
            version=row.agent_version,
            runs=row.runs,
            failed=row.failed,
            bad=row.bad,
            cost=Moments(row.runs, float(row.cost or 0.0), float(row.cost_var)),
            feedback=Moments(row.fb_n, float(row.fb_mean), float(row.fb_var)),
        )
        for row in rows
    ]


@dataclass(kw_only=True)
class StepGroup:
    """The calls of one step name (a tool, a model, an approval) of one agent version in scope."""

    agent_id: str
    version: int
    kind: str
    name: str
    n: int
    """Ended calls (completed or failed, rejected approvals too)."""
    failed_result: int
    """The tool answered an error (bad arguments, its own failure): no retry happens."""
    failed_activity: int
    """The call itself failed after its retries (the run failed with it)."""
    rejected: int
    """Tool calls a person rejected (not the tool's failure); for approvals, the rejections."""
    timeout_errors: int
    retried: int
    retried_ok: int
    extra_attempts: int
    exhausted_attempts: list[int]
    """``attempts`` of each call that failed as an activity (compared with the call's limit by the rules)."""
    ok_durations: list[float]
    """Seconds of each call that completed at its first attempt, ascending (tools and approvals; none for models)."""
    retried_durations: list[float]
    """Seconds of each call that ended after a retry (not failing as an activity): its attempts and pauses."""
    deadline: int = 0
    """Approvals decided by their deadline, not a person."""
    examples: list[str] = field(default_factory=list)
    """Runs with a failed call, newest first (at most 5)."""


_STEP_FAILURE = """CASE WHEN s.status = 'failed' AND s.error ? 'type' THEN 'activity'
  WHEN s.status = 'failed' AND s.error->>'message' LIKE 'error: the call was rejected%' THEN 'rejected'
  WHEN s.status = 'failed' THEN 'result' ELSE '' END"""
_SECONDS = "extract(epoch FROM s.ended_at - s.started_at)"


async def step_groups(conn: AsyncConnection, scope: Scope) -> list[StepGroup]:
    """Calls per agent version and (kind, name): outcomes, attempts, durations, example failing runs."""
    rows = await conn.execute(
        text(
            "WITH steps AS (SELECT r.agent_id, r.agent_version, r.id AS run_id, r.created_at, s.kind, s.name,"  # noqa: S608
            f" s.status, s.attempts, s.error, s.output, {_SECONDS} AS seconds, {_STEP_FAILURE} AS failure"
            " FROM run r JOIN run_step s ON s.run_id = r.id"
            f" WHERE {_RUNS_IN_SCOPE} AND s.status IN ('completed', 'failed', 'rejected'))"
            " SELECT agent_id, agent_version, kind, name, count(*) AS n,"
            " count(*) FILTER (WHERE failure = 'result') AS failed_result,"
            " count(*) FILTER (WHERE failure = 'activity') AS failed_activity,"
            " count(*) FILTER (WHERE failure = 'rejected' OR status = 'rejected') AS rejected,"
            " count(*) FILTER (WHERE failure = 'activity' AND error->>'type' ILIKE '%timeout%') AS timeout_errors,"
            " count(*) FILTER (WHERE attempts > 1) AS retried,"
            " count(*) FILTER (WHERE attempts > 1 AND failure <> 'activity') AS retried_ok,"
            " coalesce(sum(attempts - 1) FILTER (WHERE attempts > 1), 0) AS extra_attempts,"
            " count(*) FILTER (WHERE output->>'decided_by' = 'deadline') AS deadline,"
            " array_agg(attempts) FILTER (WHERE failure = 'activity') AS exhausted,"
            " array_agg(seconds ORDER BY seconds)"
            "   FILTER (WHERE kind <> 'llm' AND status IN ('completed', 'rejected') AND attempts = 1"
            "   AND seconds IS NOT NULL) AS ok,"
            " array_agg(seconds) FILTER (WHERE kind <> 'llm' AND attempts > 1 AND failure <> 'activity'"
            "   AND seconds IS NOT NULL)"
            "   AS retried_s,"
            " (array_agg(run_id ORDER BY created_at DESC)"
            "   FILTER (WHERE failure IN ('result', 'activity')))[1:5] AS examples"
            " FROM steps GROUP BY agent_id, agent_version, kind, name"
        ),
        scope.params(),
    )
    return [
        StepGroup(
            agent_id=row.agent_id,
            version=row.agent_version,
            kind=row.kind,
            name=row.name,
            n=row.n,
            failed_result=row.failed_result,
            failed_activity=row.failed_activity,
            rejected=row.rejected,
            timeout_errors=row.timeout_errors,
            retried=row.retried,
            retried_ok=row.retried_ok,
            extra_attempts=int(row.extra_attempts),
            exhausted_attempts=list(row.exhausted or []),
            ok_durations=[float(d) for d in row.ok or []],
            retried_durations=[float(d) for d in row.retried_s or []],
            deadline=row.deadline,
            examples=list(row.examples or []),
        )
        for row in rows
    ]


async def top_errors(
    conn: AsyncConnection, scope: Scope, groups: Sequence[tuple[str, str]], *, per_group: int = 3
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The most frequent error messages (first 200 characters) of failed tool calls of each (agent, tool)."""
    if not groups:
        return {}
    rows = await conn.execute(
        text(
            "WITH failures AS (SELECT r.agent_id, s.name, left(coalesce(s.error->>'message', ''), 200) AS message"  # noqa: S608
            " FROM run r JOIN run_step s ON s.run_id = r.id"
            f" WHERE {_RUNS_IN_SCOPE} AND s.kind = 'tool' AND s.status = 'failed'"
            " AND (r.agent_id || '/' || s.name) = ANY(:keys)),"
            " counted AS (SELECT agent_id, name, message, count(*) AS n,"
            " row_number() OVER (PARTITION BY agent_id, name ORDER BY count(*) DESC, message) AS rank"
            " FROM failures GROUP BY agent_id, name, message)"
            " SELECT agent_id, name, message, n FROM counted WHERE rank <= :per ORDER BY agent_id, name, rank"
        ),
        scope.params() | {"keys": [f"{a}/{n}" for a, n in groups], "per": per_group},
    )
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault((row.agent_id, row.name), []).append({"message": row.message, "count": row.n})
    return found


@dataclass(frozen=True, kw_only=True)
class ClusterRun:
    """A run of a current agent version that failed or has feedback: the clustering population."""

    agent_id: str
    run_id: str
    input: str
    bad: bool
    score: float | None


async def cluster_population(
    conn: AsyncConnection, scope: Scope, *, bad_score: float, per_agent: int
) -> list[ClusterRun]:
    """The newest ``per_agent`` runs of each current agent version in scope that failed or were rated."""
    rows = await conn.execute(
        text(
            f"WITH scored AS ({_SCORED}),"  # noqa: S608
            " population AS (SELECT r.agent_id, r.id, left(r.input, 1000) AS input, r.status, sc.s,"
            " row_number() OVER (PARTITION BY r.agent_id ORDER BY r.created_at DESC, r.id DESC) AS rank"
            " FROM run r LEFT JOIN scored sc ON sc.run_id = r.id"
            f" WHERE {_RUNS_IN_SCOPE} AND (r.status = 'failed' OR (r.status = 'completed' AND sc.s IS NOT NULL)))"
            " SELECT agent_id, id, input, status, s FROM population WHERE rank <= :per ORDER BY agent_id, rank"
        ),
        scope.params() | {"per": per_agent},
    )
    return [
        ClusterRun(
            agent_id=row.agent_id,
            run_id=row.id,
            input=row.input,
            bad=row.status == "failed" or (row.s is not None and float(row.s) < bad_score),
            score=None if row.s is None else float(row.s),
        )
        for row in rows
    ]


async def version_models(conn: AsyncConnection, tenant_id: str, agent_ids: Sequence[str]) -> dict[tuple[str, int], Any]:
    """The ``model`` of every version of the given agents, by (agent id, version)."""
    rows = await conn.execute(
        text(
            "SELECT agent_id, version, config->'model' AS model FROM agent_version WHERE tenant_id = :t"
            " AND agent_id = ANY(:agents)"
        ),
        {"t": tenant_id, "agents": list(agent_ids)},
    )
    return {(row.agent_id, row.version): row.model for row in rows}


@dataclass(frozen=True, kw_only=True)
class ReplayedPair:
    """Completed scored replays of candidate ``version`` over recorded runs of ``recorded_version``, pooled."""

    agent_id: str
    version: int
    recorded_version: int
    difference: Moments
    """Candidate score minus recorded score, per replayed run."""
    candidate_cost: float
    replay_ids: list[str]


async def replayed_pairs(conn: AsyncConnection, scope: Scope) -> list[ReplayedPair]:
    """Paired scores of the tenant's completed replays since ``scope.since``, per candidate and recorded version."""
    rows = await conn.execute(
        text(
            "SELECT p.agent_id, p.version, r.agent_version AS recorded, count(*) AS n,"
            " avg(x.candidate_score - x.recorded_score) AS mean,"
            " coalesce(var_samp(x.candidate_score - x.recorded_score), 0) AS var, avg(x.cost_usd) AS cost,"
            " array_agg(DISTINCT p.id) AS replays"
            " FROM replay p JOIN replay_result x ON x.replay_id = p.id AND x.tenant_id = :t"
            " JOIN run r ON r.id = x.run_id AND r.tenant_id = :t"
            " WHERE p.tenant_id = :t AND p.status = 'completed' AND p.created_at >= :since"
            " AND x.outcome = 'completed' AND x.candidate_score IS NOT NULL AND x.recorded_score IS NOT NULL"
            " GROUP BY p.agent_id, p.version, r.agent_version"
        ),
        scope.params(),
    )
    return [
        ReplayedPair(
            agent_id=row.agent_id,
            version=row.version,
            recorded_version=row.recorded,
            difference=Moments(row.n, float(row.mean), float(row.var)),
            candidate_cost=float(row.cost or 0.0),
            replay_ids=sorted(row.replays),
        )
        for row in rows
    ]
