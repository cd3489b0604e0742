"""Recommendation tests: agents and pipelines made over HTTP, histories bulk-written, passes run and awaited."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from bench import recommend_history as bh
from bench.recommend_history import HistoryWriter, PipelineRunMaker, RunSpec, write_pipeline_runs, write_runs
from core.contracts.recommend import MINERS, Finding
from core.recommend.mining import mine
from core.recommend.schedules import refresh_workflow_id
from tests.conftest import TenantCtx


async def tools(http: httpx.AsyncClient, *names: str) -> None:
    """Tenant HTTP tools of these names (never called: the history is written, not run)."""
    for name in names:
        body = {
            "name": name,
            "description": name,
            "parameters": {"type": "object", "properties": {}},
            "method": "GET",
            "url": f"https://api.example.com/{name}",
        }
        created = await http.post("/v1/tools", json=body)
        assert created.status_code == 201, created.text


async def agent(http: httpx.AsyncClient, tool_specs: list[Any], **overrides: Any) -> dict[str, Any]:
    """An agent with these tools (names or specs), on the local model unless overridden."""
    body = {
        "name": "support",
        "instructions": "Help.",
        "model": {"provider": "local", "name": "local-echo"},
        "tools": tool_specs,
    } | overrides
    created = await http.post("/v1/agents", json=body)
    assert created.status_code == 201, created.text
    found: dict[str, Any] = created.json()
    return found


async def pipeline(http: httpx.AsyncClient, name: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """A pipeline of these steps."""
    created = await http.post("/v1/pipelines", json={"name": name, "definition": {"steps": steps}})
    assert created.status_code == 201, created.text
    found: dict[str, Any] = created.json()
    return found


async def history(
    engine: AsyncEngine,
    tenant_id: str,
    runs: Sequence[tuple[str, int, Callable[[random.Random], RunSpec], int]] = (),
    pipeline_runs: Sequence[tuple[str, int, PipelineRunMaker, int]] = (),
    *,
    seed: int = 1,
    after: datetime | None = None,
) -> list[str]:
    """Write ``(agent_id, version, maker, count)`` runs and ``(pipeline_id, version, maker, count)`` pipeline runs
    over the last 20 days (the agent runs within a minute after ``after`` when given)."""
    rng, now, writer = random.Random(seed), datetime.now(UTC), HistoryWriter(tenant_id)
    ids = []
    for agent_id, version, make, count in runs:
        if after is None:
            ids += write_runs(writer, agent_id, version, make, count, rng=rng, now=now)
        else:
            ids += write_runs(
                writer, agent_id, version, make, count, rng=rng, now=after + timedelta(minutes=1), days=1 / 1440
            )
    for pipeline_id, version, make_steps, count in pipeline_runs:
        ids += write_pipeline_runs(writer, pipeline_id, version, make_steps, count, rng=rng, now=now)
    await writer.flush(engine)
    return ids


async def failing_tool_agent(
    tenant: TenantCtx, engine: AsyncEngine, rate: float = 0.4, tool: str = "lookup"
) -> dict[str, Any]:
    """An agent whose HTTP tool ``tool`` failed in ``rate`` of its 300 written runs: a pass opens one recommendation."""
    await tools(tenant.http, tool)
    made = await agent(tenant.http, [tool])
    await history(engine, tenant.id, [(made["id"], 1, partial(bh.failing_tool_run, tool=tool, rate=rate), 300)])
    return made


async def findings(engine: AsyncEngine, tenant_id: str, *miners: str) -> list[Finding]:
    """What the miners (all by default) find in the tenant's last 30 days."""
    found: list[Finding] = []
    for name in miners or tuple(MINERS):
        found += (await mine(engine, tenant_id, name, window_days=30)).findings
    return found


async def refreshed(tenant: TenantCtx, temporal: Client) -> dict[str, Any]:
    """``POST /v1/recommendations/refresh``, then the pass's summary once it ends."""
    started = await tenant.http.post("/v1/recommendations/refresh")
    assert started.status_code == 202, started.text
    body = started.json()
    assert body["workflow_id"] == refresh_workflow_id(tenant.id)
    summary: dict[str, Any] = await temporal.get_workflow_handle(body["workflow_id"], run_id=body["run_id"]).result()
    return summary


async def listed(tenant: TenantCtx, **params: str) -> list[dict[str, Any]]:
    """``GET /v1/recommendations`` (every page)."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await tenant.http.get("/v1/recommendations", params=params | ({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items
