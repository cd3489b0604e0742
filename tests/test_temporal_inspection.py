"""A run as the Temporal CLI shows it: query without input, activity summaries, ``RunStatus`` in lists."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from tests.conftest import TenantCtx
from tests.support.runs import create_agent, record_history, wait_for
from workers.embedded.stack import StackProcess
from workers.embedded.temporal import temporal_binary


def _temporal(stack: StackProcess, *args: str) -> str:
    """Run the ``temporal`` CLI against the stack, the way the README prints it (``--address``)."""
    result = subprocess.run(
        [temporal_binary(), *args, "--address", stack.temporal_address, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _state(stack: StackProcess, workflow_id: str) -> dict[str, Any]:
    out = json.loads(_temporal(stack, "workflow", "query", "--workflow-id", workflow_id, "--type", "state"))
    state: dict[str, Any] = out["queryResult"][0]
    return state


async def _listed(stack: StackProcess, query: str, workflow_id: str, timeout_s: float = 15) -> bool:
    """Whether ``temporal workflow list --query`` shows ``workflow_id`` within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = _temporal(stack, "workflow", "list", "--query", query)
        if workflow_id in {w["execution"]["workflowId"] for w in json.loads(out or "[]")}:
            return True
        await asyncio.sleep(0.2)
    return False


async def _summaries(client: Client, workflow_id: str) -> list[str | None]:
    """Summaries of the activities a run scheduled and of its local activities (markers), in order."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    converter = client.data_converter.payload_converter
    return [
        converter.from_payload(event.user_metadata.summary, str) if event.user_metadata.HasField("summary") else None
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        or event.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]


async def test_a_failed_run_is_listed_failed_queried_and_summarised(
    stack: StackProcess, tenant: TenantCtx, temporal_client: Client
) -> None:
    assert (await tenant.http.post("/v1/secrets", json={"name": "LATER", "value": "v"})).status_code == 201
    agent = await create_agent(tenant.http, model={"provider": "local", "api_key_secret": "LATER"})
    assert (await tenant.http.delete("/v1/secrets/LATER")).status_code == 204
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "9 * 9"})).json()
    workflow_id = run["temporal"]["workflow_id"]
    await wait_for(tenant, run["id"], lambda r: r["status"] == "failed")

    # The failed turn keeps the workflow open (retry is possible), yet the lists show it failed.
    failed = f"TenantId='{tenant.id}' AND RunStatus='failed'"
    assert await _listed(stack, failed, workflow_id)
    assert await _listed(stack, f"TenantId='{tenant.id}' AND ExecutionStatus='Running'", workflow_id)
    state = _state(stack, workflow_id)  # no --input
    assert state["status"] == "failed"
    assert [s["kind"] for s in state["steps"]] == ["llm"]

    await tenant.http.post("/v1/secrets", json={"name": "LATER", "value": "now-it-exists"})
    assert (await tenant.http.post(f"/v1/runs/{run['id']}/retry")).status_code == 202
    await wait_for(tenant, run["id"], lambda r: r["status"] == "completed")
    assert await _listed(stack, f"TenantId='{tenant.id}' AND RunStatus='completed'", workflow_id)
    assert not await _listed(stack, failed, workflow_id, timeout_s=0.5)
    state = _state(stack, workflow_id)
    assert (state["status"], state["output"]) == ("completed", "Result — calculator: 81")

    summaries = await _summaries(temporal_client, workflow_id)
    assert None not in summaries, summaries  # every activity says what it does
    assert summaries[:2] == [f"begin run: agent {agent['id']} v1", "s1 model local:local-echo"]
    assert "turn 1: failed" in summaries
    assert "turn 1: start" in summaries  # the retry's restart of the turn
    assert "s3 tool calculator" in summaries
    assert summaries[-1] == "turn 1: completed"
    await record_history(temporal_client, workflow_id, "run_status")
