"""Runs are visible in Temporal by tenant: `temporal workflow list --query "TenantId='…'"`."""

from __future__ import annotations

import base64
import json
import subprocess

from tests.conftest import TenantCtx
from tests.support.runs import create_agent, wait_run
from workers.embedded.stack import StackProcess
from workers.embedded.temporal import temporal_binary


def _list(stack: StackProcess, query: str) -> list[dict[str, object]]:
    out = subprocess.run(
        [temporal_binary(), "workflow", "list", "--address", stack.temporal_address, "--query", query, "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out) if out.strip() else []


async def test_runs_are_listed_by_tenant_search_attribute(
    stack: StackProcess, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    agent = await create_agent(tenant.http)
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "5 * 5"})).json()
    await wait_run(tenant.http, run["id"])
    other_agent = await create_agent(other_tenant.http)
    other_run = (await other_tenant.http.post(f"/v1/agents/{other_agent['id']}/runs", json={"input": "1"})).json()
    await wait_run(other_tenant.http, other_run["id"])

    mine = _list(stack, f"TenantId='{tenant.id}'")
    assert [w["execution"]["workflowId"] for w in mine] == [run["temporal"]["workflow_id"]]
    fields = mine[0]["searchAttributes"]["indexedFields"]  # type: ignore[index]
    decoded = {name: json.loads(base64.b64decode(value["data"])) for name, value in fields.items()}
    assert decoded.items() >= {"TenantId": tenant.id, "AgentId": agent["id"], "RunKind": "agent_run"}.items()
    by_agent = _list(stack, f"TenantId='{tenant.id}' AND AgentId='{agent['id']}' AND RunKind='agent_run'")
    assert len(by_agent) == 1
