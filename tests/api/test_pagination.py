"""Every list validates ``limit`` (1..200) and ``cursor`` and pages with cursors of its own."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.routing import APIRoute, iter_route_contexts

from api.app import create_app
from api.schemas import Page
from tests.conftest import TenantCtx
from tests.support.users import platform_admin_token
from workers.embedded.stack import StackProcess

PROBLEM = "application/problem+json"
KNOWN_LISTS = {
    "/v1/agents",
    "/v1/runs",
    "/v1/pipeline-runs",
    "/v1/pipeline-runs/{pipeline_run_id}/steps",
    "/v1/users",
    "/v1/api-keys",
    "/v1/secrets",
    "/v1/tools",
    "/v1/webhooks",
    "/v1/webhooks/{webhook_id}/deliveries",
    "/v1/memories",
    "/v1/audit-events",
    "/v1/threads/{thread_id}/messages",
    "/v1/threads/{thread_id}/compactions",
    "/v1/tenants",
    "/v1/pipelines",
    "/v1/pipelines/{pipeline_id}/versions",
    "/v1/recommendations",
}
PLATFORM_LISTS = {"/v1/tenants"}
"""Lists of the platform admin (tenant users get 403)."""


def list_paths() -> list[str]:
    """Paths of every GET route that answers a ``Page``."""
    paths = []
    for context in iter_route_contexts(create_app().routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or context.path is None or "GET" not in (context.methods or ()):
            continue
        if isinstance(route.response_model, type) and issubclass(route.response_model, Page):
            paths.append(context.path)
    assert set(paths) >= KNOWN_LISTS, KNOWN_LISTS - set(paths)
    return paths


def _refused_field(response: Any) -> tuple[str, str]:
    assert response.status_code == 422, (response.request.url, response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM)
    (error,) = response.json()["errors"]
    return error["field"], error["message"]


async def test_every_list_refuses_bad_limits_and_cursors(stack: StackProcess, tenant: TenantCtx) -> None:
    cursor_messages = set()
    admin = httpx.AsyncClient(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {await platform_admin_token(stack)}"}
    )
    for path in list_paths():
        url = re.sub(r"\{\w+\}", "x_missing", path)
        base = {"subject": "ana"}  # the memory list needs one; the others ignore it
        client = admin if path in PLATFORM_LISTS else tenant.http
        for limit in (-1, 0, 201, 10**12, "ten"):
            field, _ = _refused_field(await client.get(url, params=base | {"limit": limit}))
            assert field == "limit", (path, limit)
        for cursor in ("garbage", "%%%", "eyJhIjogMX0", "WyJ4Il0", "x" * 600):
            field, message = _refused_field(await client.get(url, params=base | {"cursor": cursor}))
            assert field == "cursor", (path, cursor)
            cursor_messages.add(message)
    await admin.aclose()
    assert len(cursor_messages) == 2, cursor_messages  # ours and the length limit's: no exception text


async def test_pages_chain_through_a_list_and_cursors_stay_in_their_list(tenant: TenantCtx) -> None:
    names = sorted(f"S{i}" for i in range(5))
    for name in names:
        assert (await tenant.http.post("/v1/secrets", json={"name": name, "value": "v"})).status_code == 201
    seen: list[str] = []
    cursors = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = (await tenant.http.get("/v1/secrets", params=params)).json()
        assert len(page["items"]) <= 2
        seen += [item["name"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        cursors.append(page["next_cursor"])
        params = {"limit": 2, "cursor": page["next_cursor"]}
    assert seen == names
    assert len(cursors) == 2

    audit = (await tenant.http.get("/v1/audit-events", params={"limit": 3})).json()
    assert len(audit["items"]) == 3
    assert audit["next_cursor"]
    rest = (await tenant.http.get("/v1/audit-events", params={"limit": 200, "cursor": audit["next_cursor"]})).json()
    assert {e["id"] for e in audit["items"]}.isdisjoint(e["id"] for e in rest["items"])
    assert len(audit["items"]) + len(rest["items"]) == 5

    for other in ("/v1/api-keys", "/v1/users", "/v1/tools", "/v1/runs"):
        field, _ = _refused_field(await tenant.http.get(other, params={"cursor": cursors[0]}))
        assert field == "cursor", other
    field, _ = _refused_field(await tenant.http.get("/v1/secrets", params={"cursor": audit["next_cursor"]}))
    assert field == "cursor"
