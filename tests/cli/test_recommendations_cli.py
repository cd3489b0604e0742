"""``aimpact recommendations`` as a subprocess against the real stack: refresh, list, apply, dismiss."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from tests.cli.test_client_cli import aimpact
from tests.conftest import TenantCtx
from tests.recommend.support import failing_tool_agent
from workers.embedded.stack import StackProcess


async def test_refresh_list_apply_and_dismiss(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client, tmp_path: Path
) -> None:
    looked_up = await failing_tool_agent(tenant, engine)
    searched = await failing_tool_agent(tenant, engine, tool="search")
    started = aimpact(stack, tenant, tmp_path, "recommendations", "refresh", "--json")
    assert started.returncode == 0, started.stderr
    mining = json.loads(started.stdout)
    await temporal_client.get_workflow_handle(mining["workflow_id"], run_id=mining["run_id"]).result()

    listed = aimpact(stack, tenant, tmp_path, "recommendations", "list", "--status", "open", "--kind", "tool", "--json")
    assert listed.returncode == 0, listed.stderr
    by_agent = {r["target"]["agent_id"]: r for r in json.loads(listed.stdout)}
    assert set(by_agent) == {looked_up["id"], searched["id"]}
    table = aimpact(stack, tenant, tmp_path, "recommendations", "list")
    assert table.returncode == 0, table.stderr
    assert all(rec_id in table.stdout for rec_id in (r["id"] for r in by_agent.values()))
    none = aimpact(stack, tenant, tmp_path, "recommendations", "list", "--kind", "model")
    assert "recommendations: none" in none.stdout

    applied_id = by_agent[looked_up["id"]]["id"]
    applied = aimpact(stack, tenant, tmp_path, "recommendations", "apply", applied_id)
    assert applied.returncode == 0, applied.stderr
    assert f"recommendation {applied_id} applied" in applied.stdout
    assert '{"agent_version":2}' in applied.stdout
    again = aimpact(stack, tenant, tmp_path, "recommendations", "apply", applied_id)
    assert again.returncode == 1
    assert "409 Conflict" in again.stderr

    dismissed_id = by_agent[searched["id"]]["id"]
    dismissed = aimpact(
        stack, tenant, tmp_path, "recommendations", "dismiss", dismissed_id, "--reason", "being fixed", "--json"
    )
    assert dismissed.returncode == 0, dismissed.stderr
    shown = json.loads(dismissed.stdout)
    assert (shown["id"], shown["status"], shown["status_reason"]) == (dismissed_id, "dismissed", "being fixed")
    bad = aimpact(stack, tenant, tmp_path, "recommendations", "list", "--status", "closed")
    assert bad.returncode == 1
    assert "422" in bad.stderr
