"""A secret named by an agent's model or a tenant tool's header must exist in the tenant when it is named."""

from __future__ import annotations

from typing import Any

from tests.conftest import TenantCtx
from tests.support.runs import create_agent, wait_run

TOOL: dict[str, Any] = {
    "name": "ticket",
    "parameters": {"type": "object", "properties": {}},
    "method": "POST",
    "url": "https://tickets.example.com/api",
    "headers": {"Authorization": "Bearer {{secret:TICKETS_TOKEN}}", "X-Trace": "{{secret:TRACE}}-static"},
}


def _errors(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [(e["field"], e["message"]) for e in response.json()["errors"]]


async def test_an_agent_naming_a_missing_secret_is_422_at_creation(tenant: TenantCtx, other_tenant: TenantCtx) -> None:
    assert (await other_tenant.http.post("/v1/secrets", json={"name": "OPENAI_KEY", "value": "x"})).status_code == 201
    model = {"provider": "local", "api_key_secret": "OPENAI_KEY"}
    refused = await tenant.http.post("/v1/agents", json={"name": "a", "model": model})  # theirs does not count
    assert _errors(refused) == [
        ("model.api_key_secret", "unknown secret 'OPENAI_KEY'; store it first with POST /v1/secrets")
    ]
    assert (await tenant.http.get("/v1/agents")).json()["items"] == []

    agent = await create_agent(tenant.http, model={"provider": "local"})
    patched = await tenant.http.patch(f"/v1/agents/{agent['id']}", json={"model": model})
    assert [field for field, _ in _errors(patched)] == ["model.api_key_secret"]
    assert (await tenant.http.get(f"/v1/agents/{agent['id']}")).json()["version"] == 1

    assert (await tenant.http.post("/v1/secrets", json={"name": "OPENAI_KEY", "value": "mine"})).status_code == 201
    assert (await tenant.http.patch(f"/v1/agents/{agent['id']}", json={"model": model})).status_code == 200
    assert (await tenant.http.post("/v1/agents", json={"name": "b", "model": model})).status_code == 201

    # Deleting a secret an agent names is allowed: edits that do not set the model pass, runs fail.
    assert (await tenant.http.delete("/v1/secrets/OPENAI_KEY")).status_code == 204
    edited = await tenant.http.patch(f"/v1/agents/{agent['id']}", json={"instructions": "other words"})
    assert edited.status_code == 200, edited.text
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "hi"})).json()
    failed = await wait_run(tenant.http, run["id"])
    assert (failed["status"], failed["error"]["type"]) == ("failed", "ProviderRejected")
    assert "OPENAI_KEY" in failed["error"]["message"]


async def test_a_tool_header_naming_a_missing_secret_is_422_naming_the_header(
    tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    for name in ("TICKETS_TOKEN", "TRACE"):
        assert (await other_tenant.http.post("/v1/secrets", json={"name": name, "value": "v"})).status_code == 201
    assert _errors(await tenant.http.post("/v1/tools", json=TOOL)) == [
        ("headers.Authorization", "unknown secret 'TICKETS_TOKEN'; store it first with POST /v1/secrets"),
        ("headers.X-Trace", "unknown secret 'TRACE'; store it first with POST /v1/secrets"),
    ]
    assert (await tenant.http.post("/v1/secrets", json={"name": "TICKETS_TOKEN", "value": "t"})).status_code == 201
    assert [f for f, _ in _errors(await tenant.http.post("/v1/tools", json=TOOL))] == ["headers.X-Trace"]
    assert (await tenant.http.get("/v1/tools/ticket")).status_code == 404
    assert (await tenant.http.post("/v1/secrets", json={"name": "TRACE", "value": "t"})).status_code == 201
    assert (await tenant.http.post("/v1/tools", json=TOOL)).status_code == 201
