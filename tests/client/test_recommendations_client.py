"""The clients' recommendations against the real stack: refresh, list by status and kind, apply, dismiss."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client as TemporalClient

from aimpact_client import ApiError, AsyncClient, Client
from tests.conftest import TenantCtx
from tests.recommend.support import failing_tool_agent
from workers.embedded.stack import StackProcess


async def test_refresh_list_and_apply(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine, temporal_client: TemporalClient
) -> None:
    made = await failing_tool_agent(tenant, engine)
    async with AsyncClient(stack.api_url, api_key=tenant.key) as client:
        started = await client.recommendations.refresh()
        assert not started["reused"]
        await temporal_client.get_workflow_handle(started["workflow_id"], run_id=started["run_id"]).result()

        (rec,) = [r async for r in client.recommendations.list(status="open", page_size=1)]
        assert (rec["kind"], rec["rule"], rec["action"]["requires"]) == ("tool", "tool.failure_rate", "agents:write")
        assert rec["target"] == {"type": "agent", "agent_id": made["id"], "tool": "lookup"}
        assert [r["id"] async for r in client.recommendations.list(kind="tool")] == [rec["id"]]
        assert [r async for r in client.recommendations.list(kind="model")] == []

        applied = await client.recommendations.apply(rec["id"])
        assert (applied["status"], applied["result"]) == ("applied", {"agent_version": 2})
        assert (await client.agents.get(made["id"]))["version"] == 2
        assert [r["id"] async for r in client.recommendations.list(status="applied")] == [rec["id"]]
        with pytest.raises(ApiError) as again:
            await client.recommendations.apply(rec["id"])
        assert again.value.status == 409


async def test_dismiss_with_and_without_a_reason(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine, temporal_client: TemporalClient
) -> None:
    await failing_tool_agent(tenant, engine)
    await failing_tool_agent(tenant, engine, tool="search")
    with Client(stack.api_url, api_key=tenant.key) as client:
        started = client.recommendations.refresh()
        await temporal_client.get_workflow_handle(started["workflow_id"], run_id=started["run_id"]).result()
        first, second = client.recommendations.list(status="open")

        dismissed = client.recommendations.dismiss(first["id"], reason="being fixed")
        assert (dismissed["status"], dismissed["status_reason"]) == ("dismissed", "being fixed")
        plain = client.recommendations.dismiss(second["id"])
        assert (plain["status"], plain["status_reason"]) == ("dismissed", None)
        assert {r["id"] for r in client.recommendations.list(status="dismissed")} == {first["id"], second["id"]}
        with pytest.raises(ApiError) as again:
            client.recommendations.dismiss(first["id"])
        assert again.value.status == 409
        with pytest.raises(ApiError) as missing:
            client.recommendations.apply("rec_missing")
        assert missing.value.status == 404
