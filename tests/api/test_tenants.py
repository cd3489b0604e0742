"""``GET /v1/tenants``: the platform admin lists every tenant, page by page; tenant users get 403."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import TenantCtx
from tests.support.users import platform_admin_token
from workers.embedded.stack import StackProcess


async def test_the_platform_admin_lists_tenants_newest_first(
    stack: StackProcess, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    headers = {"Authorization": f"Bearer {await platform_admin_token(stack)}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers) as admin:
        seen: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 1}
        while len(seen) < 4:
            page = (await admin.get("/v1/tenants", params=params)).json()
            assert len(page["items"]) == 1
            seen += page["items"]
            if page["next_cursor"] is None:
                break
            params = {"limit": 1, "cursor": page["next_cursor"]}
        assert [t["id"] for t in seen[:2]] == [other_tenant.id, tenant.id]  # the newest first, no repeats
        assert seen[0].keys() == {"id", "name", "quotas", "egress_allowlist", "created_at"}
        everyone = (await admin.get("/v1/tenants", params={"limit": 200})).json()["items"]
        assert [t["id"] for t in everyone[: len(seen)]] == [t["id"] for t in seen]
        foreign = (await tenant.http.get("/v1/agents", params={"limit": 1})).json()["next_cursor"]
        assert foreign is None or (await admin.get("/v1/tenants", params={"cursor": foreign})).status_code == 422

    refused = await tenant.http.get("/v1/tenants")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert other_tenant.id not in refused.text
