"""The miners: each reads one part of a tenant's history (``core.recommend.history``) and applies its rules.

``mine`` runs one miner (a key of :data:`~core.contracts.recommend.MINERS`) over the window
ending now; ``mine_all`` runs them all concurrently, as a pass of ``RecommendationWorkflow``
does. Clustering is CPU-bound and runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.contracts.recommend import MINERS, Finding, Mined
from core.recommend import history as h
from core.recommend import pipeline_history as ph
from core.recommend.cluster import cluster
from core.recommend.findings import Window
from core.recommend.rules import calls, model, pipeline, prompt
from core.recommend.thresholds import DEFAULT, Thresholds

Miner = Callable[[AsyncConnection, str, Window, Thresholds], Awaitable[Mined]]


async def _calls(conn: AsyncConnection, tenant_id: str, window: Window, th: Thresholds) -> Mined:
    scope = h.Scope(tenant_id=tenant_id, since=window.since)
    agents = await h.live_agents(conn, tenant_id)
    runs = {(v.agent_id, v.version): v.runs for v in await h.run_volumes(conn, scope)}
    groups = [g for g in await h.step_groups(conn, scope) if g.agent_id in agents]
    found: list[Finding] = []
    failing = []
    for group in groups:
        agent, count = agents[group.agent_id], runs.get((group.agent_id, group.version), 0)
        for rule in (*calls.RETRY_RULES, *calls.TIMEOUT_RULES, calls.always_approved):
            hit = rule(agent, group, count, window, th)
            if hit is not None:
                found.append(hit)
        if calls.failing_tool(agent, group, count, window, th, []) is not None:
            failing.append(group)
    errors = await h.top_errors(conn, scope, [(g.agent_id, g.name) for g in failing])
    for group in failing:
        agent, count = agents[group.agent_id], runs.get((group.agent_id, group.version), 0)
        hit = calls.failing_tool(agent, group, count, window, th, errors.get((group.agent_id, group.name), []))
        if hit is not None:
            found.append(hit)
    return Mined(miner="calls", findings=found, scanned=sum(runs.values()))


async def _model(conn: AsyncConnection, tenant_id: str, window: Window, th: Thresholds) -> Mined:
    scope = h.Scope(tenant_id=tenant_id, since=window.since)
    agents = await h.live_agents(conn, tenant_id)
    volumes = await h.run_volumes(conn, scope, all_versions=True)
    models = await h.version_models(conn, tenant_id, list(agents))
    pairs = await h.replayed_pairs(conn, scope)
    found = []
    for agent in agents.values():
        mine = {v.version: v for v in volumes if v.agent_id == agent.agent_id}
        versions = {version: spec for (agent_id, version), spec in models.items() if agent_id == agent.agent_id}
        replays = {p.version: p for p in pairs if p.agent_id == agent.agent_id and p.recorded_version == agent.version}
        hit = model.cheaper_model(agent, mine, versions, replays, window, th)
        if hit is not None:
            found.append(hit)
    scanned = sum(v.runs for v in volumes if v.agent_id in agents and agents[v.agent_id].version == v.version)
    return Mined(miner="model", findings=found, scanned=scanned)


async def _prompt(conn: AsyncConnection, tenant_id: str, window: Window, th: Thresholds) -> Mined:
    scope = h.Scope(tenant_id=tenant_id, since=window.since)
    agents = await h.live_agents(conn, tenant_id)
    runs = {v.agent_id: v.runs for v in await h.run_volumes(conn, scope)}
    population = await h.cluster_population(conn, scope, bad_score=th.bad_score, per_agent=th.max_cluster_runs)
    found: list[Finding] = []
    for agent_id, agent in agents.items():
        mine = [r for r in population if r.agent_id == agent_id]
        if len(mine) < th.min_cluster_runs or sum(1 for r in mine if r.bad) < th.min_cluster_bad:
            continue
        texts = [r.input for r in mine]
        clusters = await asyncio.to_thread(cluster, texts, smallest=prompt.smallest_cluster(mine, th))
        found += prompt.clustered(agent, mine, clusters, runs.get(agent_id, 0), window, th)
    return Mined(miner="prompt", findings=found, scanned=sum(runs.values()))


async def _pipeline(conn: AsyncConnection, tenant_id: str, window: Window, th: Thresholds) -> Mined:
    scope = h.Scope(tenant_id=tenant_id, since=window.since)
    pipelines = await ph.live_pipelines(conn, tenant_id)
    counts = await ph.pipeline_runs(conn, scope)
    found: list[Finding] = []
    for group in await ph.pipeline_step_groups(conn, scope):
        state = pipelines.get(group.pipeline_id)
        if state is not None:
            hit = pipeline.failing_step(state, group, counts.get(group.pipeline_id, 0), window, th)
            found += [hit] if hit is not None else []
    for state in pipelines.values():
        total = counts.get(state.pipeline_id, 0)
        edges = pipeline.loose_needs(state)
        maps = [name for name, step in pipeline.top_steps(state).items() if step.get("type") == "map"]
        if total < th.min_pipeline_runs or not (edges or maps):
            continue
        wanted = sorted({name for edge in edges for name in edge} | set(maps))
        per_run = await ph.run_steps(conn, scope, state.pipeline_id, state.version, wanted)
        for edge in edges:
            hit = pipeline.concurrency(state, edge, per_run, total, window, th)
            found += [hit] if hit is not None else []
        for map_id in maps:
            hit = pipeline.slow_map(state, map_id, per_run, total, window, th)
            found += [hit] if hit is not None else []
    return Mined(miner="pipeline", findings=found, scanned=sum(counts.values()))


_MINERS: dict[str, Miner] = {"calls": _calls, "model": _model, "prompt": _prompt, "pipeline": _pipeline}
assert _MINERS.keys() == MINERS.keys()


def window_ending(now: datetime, days: float) -> Window:
    """The ``days`` before ``now``."""
    return Window(since=now - timedelta(days=days), until=now)


async def mine(
    engine: AsyncEngine,
    tenant_id: str,
    miner: str,
    *,
    window_days: float,
    thresholds: Thresholds = DEFAULT,
    now: datetime | None = None,
) -> Mined:
    """Run one miner over the tenant's last ``window_days`` (``KeyError`` for an unknown miner)."""
    run = _MINERS[miner]
    window = window_ending(now or datetime.now(UTC), window_days)
    async with engine.connect() as conn:
        return await run(conn, tenant_id, window, thresholds)


async def mine_all(
    engine: AsyncEngine, tenant_id: str, *, window_days: float, thresholds: Thresholds = DEFAULT
) -> list[Mined]:
    """Every miner, concurrently (each on a connection of its own)."""
    now = datetime.now(UTC)
    return list(
        await asyncio.gather(
            *(mine(engine, tenant_id, name, window_days=window_days, thresholds=thresholds, now=now) for name in MINERS)
        )
    )
