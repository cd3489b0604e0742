"""Outcomes: the measured effect of an applied recommendation, next to what it expected.

The change an apply made (a new agent or pipeline version, an optimizer run) is measured on
the runs of the new version since the apply, against the runs of the version the evidence
was computed on over the same length of time before it. Until ``min_outcome_runs`` runs of
the new version exist the outcome is ``measuring`` (with the count so far); then it is
``measured`` and final. What is measured follows the rule:

- calls (``tool.*``, ``retry_policy.*``, ``timeout.*``): failed calls of the tool or model per
  1,000 runs (a removed tool: failed runs per 1,000 runs);
- ``model.cheaper``: cost per run (USD per 1,000 runs) and the mean feedback score;
- ``prompt.cluster``: the optimizer run's decision and, once a version it made is current, bad
  runs (failed or rated below 0.5) per 1,000 runs;
- ``pipeline.failing_step``: failed steps per 1,000 runs; ``pipeline.concurrency`` and
  ``pipeline.slow_map``: the median run duration in seconds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db.models import Recommendation, utcnow
from core.recommend import history as h
from core.recommend import pipeline_history as ph
from core.recommend.stats import Estimate, mean_estimate, per_thousand, quantile, wilson
from core.recommend.thresholds import Thresholds


def _per_thousand(estimate: Estimate, runs: int, calls: int) -> dict[str, Any]:
    """A rate of calls as events per 1,000 runs (interval scaled alike)."""
    scale = per_thousand(calls, runs)
    return Estimate(estimate.value * scale, estimate.lo * scale, estimate.hi * scale, estimate.n).to_json()


async def _calls(conn: AsyncConnection, before: h.Scope, after: h.Scope, target: dict[str, Any]) -> dict[str, Any]:
    sides = {}
    for name, scope in (("before", before), ("after", after)):
        runs = sum(v.runs for v in await h.run_volumes(conn, scope))
        groups = [g for g in await h.step_groups(conn, scope) if _targets(g, target)]
        calls = sum(g.n - g.rejected for g in groups)
        failed = sum(g.failed_result + g.failed_activity for g in groups)
        sides[name] = _per_thousand(wilson(failed, calls), runs, calls) if calls else None
    return _sides("failed_calls_per_1000_runs", sides, "fewer failed calls per 1,000 runs", lower_is_better=True)


def _targets(group: h.StepGroup, target: dict[str, Any]) -> bool:
    if "tool" in target:
        return group.kind == "tool" and group.name == target["tool"]
    return group.kind == "llm"


async def _runs(conn: AsyncConnection, before: h.Scope, after: h.Scope, what: str) -> dict[str, Any]:
    sides: dict[str, Any] = {}
    for name, scope in (("before", before), ("after", after)):
        volume = next(iter(await h.run_volumes(conn, scope)), None)
        if volume is None or volume.runs == 0:
            sides[name] = None
        elif what == "cost":
            cost = mean_estimate(volume.cost)
            sides[name] = Estimate(cost.value * 1000, cost.lo * 1000, cost.hi * 1000, cost.n).to_json(digits=6)
        else:
            count = volume.bad if what == "bad" else volume.failed
            sides[name] = _per_thousand(wilson(count, volume.runs), volume.runs, volume.runs)
    if what == "cost":
        return _sides("cost_per_1000_runs_usd", sides, "USD saved per 1,000 runs", lower_is_better=True)
    unit = "fewer bad runs per 1,000 runs" if what == "bad" else "fewer failed runs per 1,000 runs"
    return _sides(f"{what}_runs_per_1000_runs", sides, unit, lower_is_better=True)


def _sides(name: str, sides: dict[str, Any], unit: str, *, lower_is_better: bool) -> dict[str, Any]:
    measured: dict[str, Any] = {"metric": name, **sides}
    if sides.get("before") and sides.get("after"):
        delta = sides["before"]["value"] - sides["after"]["value"]
        measured["measured_gain"] = {"quantity": round(delta if lower_is_better else -delta, 4), "unit": unit}
    return measured


async def _pipeline(conn: AsyncConnection, rec: Recommendation, before: h.Scope, after: h.Scope) -> Any:
    if rec.rule == "pipeline.failing_step":
        sides = {}
        for name, scope in (("before", before), ("after", after)):
            group = next(
                (g for g in await ph.pipeline_step_groups(conn, scope) if g.step_id == rec.target["step_id"]), None
            )
            sides[name] = None if group is None else _per_thousand(wilson(group.failed, group.n), group.n, group.n)
        return _sides("failed_steps_per_1000_runs", sides, "fewer failed steps per 1,000 runs", lower_is_better=True)
    sides = {}
    for name, scope in (("before", before), ("after", after)):
        durations = await ph.run_durations(conn, scope)
        sides[name] = quantile(durations, 0.5).to_json(digits=3) if durations else None
    return _sides("median_run_s", sides, "seconds shorter per run", lower_is_better=True)


async def _optimizer(conn: AsyncConnection, rec: Recommendation) -> dict[str, Any]:
    run_id = (rec.result or {}).get("optimizer_run_id")
    row = (
        await conn.execute(
            text("SELECT status, winner, promoted, reason FROM optimizer_run WHERE tenant_id = :t AND id = :id"),
            {"t": rec.tenant_id, "id": run_id},
        )
    ).first()
    if row is None:
        return {"optimizer_run": None}
    return {
        "optimizer_run": {
            "id": run_id,
            "status": row.status,
            "winner": row.winner,
            "promoted": row.promoted,
            "reason": row.reason,
        }
    }


async def _version_after(conn: AsyncConnection, rec: Recommendation) -> int | None:
    """The agent version the apply made (an optimizer run's: its winner once promoted, by the run or a person)."""
    result = rec.result or {}
    if "agent_version" in result:
        return int(result["agent_version"])
    row = (
        await conn.execute(
            text(
                "SELECT o.winner FROM optimizer_run o JOIN agent a ON a.id = o.agent_id AND a.tenant_id = :t"
                " WHERE o.tenant_id = :t AND o.id = :id AND (o.promoted OR a.version = o.winner)"
            ),
            {"t": rec.tenant_id, "id": result.get("optimizer_run_id")},
        )
    ).first()
    return None if row is None or row.winner is None else int(row.winner)


async def _measure_pipeline(
    conn: AsyncConnection, rec: Recommendation, th: Thresholds, since: datetime, applied: datetime
) -> dict[str, Any]:
    pipeline_id = rec.target["pipeline_id"]
    version = int((rec.result or {}).get("pipeline_version", 0))
    before = h.Scope(
        tenant_id=rec.tenant_id,
        since=since,
        until=applied,
        owner_id=pipeline_id,
        version=int(rec.basis["pipeline_version"]),
    )
    after = h.Scope(tenant_id=rec.tenant_id, since=applied, owner_id=pipeline_id, version=version)
    runs = (await ph.pipeline_runs(conn, after)).get(pipeline_id, 0)
    measured = await _pipeline(conn, rec, before, after) if runs >= th.min_outcome_runs else {}
    return _progress(runs, th) | {"version": version} | measured


async def _measure_agent(
    conn: AsyncConnection, rec: Recommendation, th: Thresholds, since: datetime, applied: datetime
) -> dict[str, Any]:
    extra = await _optimizer(conn, rec) if rec.action.get("type") == "optimizer_run" else {}
    version = await _version_after(conn, rec)
    if version is None:
        run = extra.get("optimizer_run") or {}
        ended = run.get("status") in ("completed", "failed", "cancelled") and run.get("winner") is None
        return extra | {
            "final": ended,
            "status": "measured" if ended else "measuring",
            "runs": 0,
            "needed": th.min_outcome_runs,
        }
    agent_id = rec.target["agent_id"]
    before = h.Scope(
        tenant_id=rec.tenant_id, since=since, until=applied, owner_id=agent_id, version=int(rec.basis["agent_version"])
    )
    after = h.Scope(tenant_id=rec.tenant_id, since=applied, owner_id=agent_id, version=version)
    runs = sum(v.runs for v in await h.run_volumes(conn, after))
    progress = extra | _progress(runs, th) | {"version": version}
    if runs < th.min_outcome_runs:
        return progress
    if rec.kind in ("tool", "retry_policy", "timeout"):
        if any(op.get("op") == "remove_tool" for op in rec.action.get("ops", [])):
            return progress | await _runs(conn, before, after, "failed")
        return progress | await _calls(conn, before, after, rec.target)
    return progress | await _runs(conn, before, after, "cost" if rec.kind == "model" else "bad")


async def measure(conn: AsyncConnection, rec: Recommendation, th: Thresholds, *, window_days: float) -> dict[str, Any]:
    """The outcome of an applied recommendation as of now (see the module docstring)."""
    applied = rec.decided_at or rec.updated_at
    since = applied - timedelta(days=window_days)
    base: dict[str, Any] = {"expected_gain": rec.expected_gain, "measured_at": utcnow().isoformat()}
    if rec.target.get("type") == "pipeline":
        return base | await _measure_pipeline(conn, rec, th, since, applied)
    return base | await _measure_agent(conn, rec, th, since, applied)


def _progress(runs: int, th: Thresholds) -> dict[str, Any]:
    done = runs >= th.min_outcome_runs
    return {"final": done, "status": "measured" if done else "measuring", "runs": runs, "needed": th.min_outcome_runs}
