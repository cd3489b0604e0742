"""Starting pipeline runs in tests (the HTTP start route lives with the pipeline definitions) and waiting on them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from core.contracts.pipelines import PipelineRunStatus
from core.db.models import PipelineRun
from core.ids import new_id
from core.pipelines.runs import start_pipeline_run
from core.settings import Settings


async def start(
    engine: AsyncEngine,
    client: Client,
    tenant_id: str,
    definition: dict[str, Any],
    run_input: Any = None,
    *,
    pipeline_id: str | None = None,
    key: str | None = None,
) -> PipelineRun:
    """Start a run of ``definition`` (version 1 of a made-up pipeline id) for ``tenant_id``."""
    run, _ = await start_pipeline_run(
        engine,
        client,
        Settings(),
        tenant_id=tenant_id,
        pipeline_id=pipeline_id or new_id("pln"),
        version=1,
        definition=definition,
        run_input=run_input,
        idempotency_key=key,
    )
    return run


def final(run: dict[str, Any]) -> bool:
    """The run has an outcome."""
    return run["status"] in PipelineRunStatus.FINAL


async def wait_pipeline_run(
    http: httpx.AsyncClient,
    run_id: str,
    predicate: Callable[[dict[str, Any]], bool] = final,
    timeout_s: float = 60,
) -> dict[str, Any]:
    """Poll ``GET /v1/pipeline-runs/{id}`` until ``predicate`` holds (default: the run is final)."""
    deadline = time.monotonic() + timeout_s
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await http.get(f"/v1/pipeline-runs/{run_id}")
        assert response.status_code == 200, response.text
        run = response.json()
        if predicate(run):
            return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"pipeline run {run_id}: condition not met after {timeout_s}s: {run}")


async def final_runs(
    http: httpx.AsyncClient, params: dict[str, str], count: int, timeout_s: float = 60
) -> list[dict[str, Any]]:
    """The runs ``GET /v1/pipeline-runs?{params}`` lists, once ``count`` of them are final."""
    deadline = time.monotonic() + timeout_s
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = await http.get("/v1/pipeline-runs", params=params)
        assert response.status_code == 200, response.text
        runs = response.json()["items"]
        if sum(final(r) for r in runs) >= count:
            return runs
        await asyncio.sleep(0.2)
    raise AssertionError(f"{count} final runs of {params} expected: {runs}")


def steps_of(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The run's steps by id."""
    return {s["id"]: s for s in run["steps"]}


async def every_step(http: httpx.AsyncClient, run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The run's top-level steps and its maps' items (read page by page), by id."""
    steps = steps_of(run)
    for step in run["steps"]:
        if step.get("items"):
            steps |= {item["id"]: item for item in await map_items(http, run["id"], step["id"])}
    return steps


async def map_items(http: httpx.AsyncClient, run_id: str, parent: str, *, limit: int = 200) -> list[dict[str, Any]]:
    """Every item of the map step ``parent``, page by page (``GET /v1/pipeline-runs/{id}/steps?parent=``)."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"parent": parent, "limit": limit}
    while True:
        response = await http.get(f"/v1/pipeline-runs/{run_id}/steps", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]
