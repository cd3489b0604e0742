"""The asynchronous client against the real stack: pages, versions, problems as ApiError, a failed run, SSE."""

from __future__ import annotations

import pytest

from aimpact_client import ApiError, AsyncClient
from tests.conftest import TenantCtx
from tests.support.runs import CALC_AGENT
from workers.embedded.stack import StackProcess


async def test_lists_are_read_across_pages_and_edits_make_versions(stack: StackProcess, tenant: TenantCtx) -> None:
    async with AsyncClient(stack.api_url, api_key=tenant.key) as client:
        made = [(await client.agents.create(**CALC_AGENT | {"name": f"agent-{i}"}))["id"] for i in range(5)]
        listed = [agent["id"] async for agent in client.agents.list(page_size=2)]  # three pages
        assert listed == made[::-1]

        edited = await client.agents.edit(made[0], instructions="Be brief.")
        assert (edited["version"], edited["instructions"]) == (2, "Be brief.")
        versions = [(v["version"], v["current"]) async for v in client.agents.versions(made[0], page_size=1)]
        assert versions == [(2, True), (1, False)]
        me = await client.me()
        assert (me["tenant_id"], me["role"]) == (tenant.id, "owner")


async def test_problems_raise_api_error_with_their_fields(stack: StackProcess, tenant: TenantCtx) -> None:
    async with AsyncClient(stack.api_url, api_key=tenant.key) as client:
        with pytest.raises(ApiError) as missing:
            await client.runs.get("run_missing")
        assert (missing.value.status, missing.value.title) == (404, "Not Found")
        assert missing.value.type.endswith("/not-found")
        assert "run_missing" in missing.value.detail

        with pytest.raises(ApiError) as invalid:
            await client.agents.create("bad", tools=["no_such_tool"])
        assert invalid.value.status == 422
        assert invalid.value.errors[0]["field"] == "tools[0].name"
        assert invalid.value.problem["status"] == 422

    async with AsyncClient(stack.api_url, api_key="aim_not_a_key") as stranger:
        with pytest.raises(ApiError) as refused:
            await stranger.agents.get("agt_x")
        assert refused.value.status == 401


async def test_a_failed_run_ends_its_turn_with_run_failed(stack: StackProcess, tenant: TenantCtx) -> None:
    async with AsyncClient(stack.api_url, api_key=tenant.key) as client:
        await client.secrets.set("GONE", "a-value")
        agent = await client.agents.create("keyed", model={"provider": "local", "api_key_secret": "GONE"})
        await client.secrets.delete("GONE")
        run = await client.runs.start(agent["id"], "9 * 9")
        events = [event async for event in client.runs.follow(run["id"])]
        assert events[-1].event == "run.failed"
        failed = await client.runs.wait(run["id"], timeout_s=10)
        assert failed["status"] == "failed"
        assert failed["error"] is not None
        assert failed["error"]["type"] == "ProviderRejected"
        assert [r["id"] async for r in client.runs.list(status="failed")] == [run["id"]]
