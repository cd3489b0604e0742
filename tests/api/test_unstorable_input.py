"""Text the database cannot store is refused with 422 naming where it was, never 500."""

from __future__ import annotations

from tests.conftest import TenantCtx
from tests.support.runs import create_agent


async def test_nul_and_surrogates_are_422(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    cases = [
        ("POST", "/v1/api-keys", b'{"name": "a\\u0000b", "role": "viewer"}', "name"),
        ("POST", "/v1/api-keys", b'{"name": "\\udb35", "role": "viewer"}', "name"),
        ("POST", f"/v1/agents/{agent['id']}/runs", b'{"input": "x", "metadata": {"k\\u0000": 1}}', "metadata"),
        ("POST", "/v1/agents", b'{"name": "n", "instructions": "\\u0000"}', "instructions"),
        ("GET", "/v1/agents/agt%00x", None, "path"),
        ("GET", "/v1/runs?agent_id=%00", None, "query"),
        ("GET", "/v1/runs?agent_id=%ff", None, "query"),
    ]
    for method, url, body, field in cases:
        response = await tenant.http.request(
            method, url, content=body, headers={"content-type": "application/json"} if body else {}
        )
        assert response.status_code == 422, (url, body, response.text)
        assert field in [e["field"] for e in response.json().get("errors", [])], (url, response.text)
    assert len((await tenant.http.get("/v1/api-keys")).json()["items"]) == 1
