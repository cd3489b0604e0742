"""Helpers shared by tests: agent creation and polling runs to a final status."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

HISTORIES = Path(__file__).parent / "replay" / "histories"

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
    HISTORIES.mkdir(parents=True, exist_ok=True)
    (HISTORIES / f"{name}.json").write_text(history.to_json())
