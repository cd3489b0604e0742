"""Run helpers shared by tests: agents, runs inserted or polled, histories recorded, conditions awaited."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from core.db.engine import make_sessionmaker
from core.db.models import Run
from core.db.repos import RunRepository
from core.ids import new_id, run_workflow_id
from tests.conftest import TenantCtx

HISTORIES = Path(__file__).parent.parent / "replay" / "histories"

FINAL = {"completed", "failed", "cancelled"}

CALC_AGENT: dict[str, Any] = {
    "name": "calc",
    "instructions": "Use the calculator for arithmetic.",
    "model": {"provider": "local", "name": "local-echo"},
    "tools": ["calculator", "current_time"],
}


async def create_agent(http: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    """Create an agent (the calculator agent unless overridden)."""
    response = await http.post("/v1/agents", json=CALC_AGENT | overrides)
    assert response.status_code == 201, response.text
    agent: dict[str, Any] = response.json()
    return agent


async def agent_with_deleted_secret(http: httpx.AsyncClient, secret: str, **overrides: Any) -> dict[str, Any]:
    """An agent whose ``model.api_key_secret`` names ``secret``, deleted after the agent was created.

    An agent cannot be created naming a missing secret (422); deleting the secret afterwards
    is how a run meets one: its model step fails with ``ProviderRejected``.
    """
    assert (await http.post("/v1/secrets", json={"name": secret, "value": "soon-deleted"})).status_code == 201
    model = {"provider": "local"} | overrides.pop("model", {}) | {"api_key_secret": secret}
    agent = await create_agent(http, model=model, **overrides)
    assert (await http.delete(f"/v1/secrets/{secret}")).status_code == 204
    return agent


async def wait_run(http: httpx.AsyncClient, run_id: str, timeout_s: float = 60) -> dict[str, Any]:
    """Poll ``GET /v1/runs/{id}`` until the run reaches a final status."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = await http.get(f"/v1/runs/{run_id}")
        assert response.status_code == 200, response.text
        run: dict[str, Any] = response.json()
        if run["status"] in FINAL:
            return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} not final after {timeout_s}s: {run['status']}")


async def record_history(client: Client, workflow_id: str, name: str, *, run_id: str | None = None) -> None:
    """With ``AIMPACT_RECORD_HISTORIES=1``, store the workflow's history (its latest run, or ``run_id``)."""
    if os.environ.get("AIMPACT_RECORD_HISTORIES") != "1":
        return
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    path = HISTORIES / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(history.to_json())


async def insert_run(engine: AsyncEngine, tenant_id: str, agent: dict[str, object], text: str) -> Run:
    """A queued run row of ``agent``, for workflow tests that start the workflow themselves."""
    run_id = new_id("run")
    async with make_sessionmaker(engine)() as session:
        run, _ = await RunRepository(session, tenant_id).create(
            Run(
                id=run_id,
                tenant_id=tenant_id,
                agent_id=str(agent["id"]),
                agent_version=1,
                thread_id=new_id("thr"),
                status="queued",
                input=text,
                workflow_id=run_workflow_id(tenant_id, run_id),
            )
        )
    return run


async def wait_for(
    tenant: TenantCtx, run_id: str, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = 30
) -> dict[str, Any]:
    """Poll the run until ``predicate`` holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run: dict[str, Any] = (await tenant.http.get(f"/v1/runs/{run_id}")).json()
        if predicate(run):
            return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met: {run}")


async def until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``condition`` for up to ``timeout_s``; whether it held."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True
