"""Bad input answers 4xx problem+json naming the field; never 500."""

from __future__ import annotations

import httpx

from tests.conftest import TenantCtx
from tests.support.runs import CALC_AGENT, create_agent
from workers.embedded.stack import StackProcess

PROBLEM = "application/problem+json"


def _fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"].startswith(PROBLEM), response.text
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == response.status_code
    return [e["field"] for e in body.get("errors", [])]


async def test_unknown_agent_is_404(tenant: TenantCtx) -> None:
    response = await tenant.http.post("/v1/agents/agt_nope/runs", json={"input": "hi"})
    assert response.status_code == 404
    _fields(response)
    assert (await tenant.http.get("/v1/agents/agt_nope")).status_code == 404
    assert (await tenant.http.get("/v1/runs/run_nope")).status_code == 404


async def test_invalid_run_body_names_the_field(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    url = f"/v1/agents/{agent['id']}/runs"
    cases = {
        "input": {"input": ""},
        "metadata": {"input": "x", "metadata": "not an object"},
        "thread_id": {"input": "x", "thread_id": "bad id with spaces"},
        "tenant_id": {"input": "x", "tenant_id": "ten_other"},
    }
    for field, body in cases.items():
        response = await tenant.http.post(url, json=body)
        assert response.status_code == 422, (field, response.text)
        assert field in _fields(response)
    missing = await tenant.http.post(url, json={})
    assert missing.status_code == 422
    assert "input" in _fields(missing)
    broken = await tenant.http.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 422
    _fields(broken)


async def test_agent_with_unknown_tool_or_provider_is_rejected_at_creation(tenant: TenantCtx) -> None:
    unknown_tool = await tenant.http.post("/v1/agents", json=CALC_AGENT | {"tools": ["calculator", "rm_rf"]})
    assert unknown_tool.status_code == 422
    assert "tools[1].name" in _fields(unknown_tool)
    assert "rm_rf" in unknown_tool.text

    unknown_provider = await tenant.http.post("/v1/agents", json=CALC_AGENT | {"model": {"provider": "skynet"}})
    assert unknown_provider.status_code == 422
    assert "model.provider" in _fields(unknown_provider)

    bad_option = await tenant.http.post(
        "/v1/agents", json=CALC_AGENT | {"tools": [{"name": "calculator", "max_attempts": 0}]}
    )
    assert bad_option.status_code == 422
    assert "tools[0].max_attempts" in _fields(bad_option)
    assert (await tenant.http.get("/v1/agents")).json()["items"] == []


async def test_bad_query_parameters(tenant: TenantCtx) -> None:
    assert "limit" in _fields(await tenant.http.get("/v1/runs", params={"limit": 0}))
    assert "limit" in _fields(await tenant.http.get("/v1/runs", params={"limit": 201}))
    assert "status" in _fields(await tenant.http.get("/v1/runs", params={"status": "exploded"}))
    assert "cursor" in _fields(await tenant.http.get("/v1/runs", params={"cursor": "%%%"}))


async def test_missing_or_wrong_credentials_are_401(stack: StackProcess) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url) as anonymous:
        for headers in ({}, {"Authorization": "Bearer aim_wrong"}, {"Authorization": "Basic abc"}):
            response = await anonymous.get("/v1/runs", headers=headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            _fields(response)


async def test_viewer_cannot_start_runs(tenant: TenantCtx, engine) -> None:  # type: ignore[no-untyped-def]
    agent = await create_agent(tenant.http)
    viewer = await tenant.key_for(engine, "viewer")
    response = await tenant.http.post(
        f"/v1/agents/{agent['id']}/runs", json={"input": "1+1"}, headers={"Authorization": f"Bearer {viewer}"}
    )
    assert response.status_code == 403
    _fields(response)
    allowed = await tenant.http.get(f"/v1/agents/{agent['id']}", headers={"Authorization": f"Bearer {viewer}"})
    assert allowed.status_code == 200


async def test_a_body_not_sent_as_json_is_415_saying_to_send_it(tenant: TenantCtx) -> None:
    body = b'{"name": "a", "instructions": "x"}'  # valid JSON: only its media type is wrong
    for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}, {}):
        response = await tenant.http.post("/v1/agents", content=body, headers=headers)
        assert response.status_code == 415, (headers, response.text)
        assert _fields(response) == ["Content-Type"]
        problem = response.json()
        assert problem["type"].endswith("/unsupported-media-type")
        assert "Content-Type: application/json" in problem["detail"]
        assert (headers.get("Content-Type") or "no Content-Type") in problem["detail"]
    assert (await tenant.http.get("/v1/agents")).json()["items"] == []  # nothing was created
    sent = await tenant.http.post("/v1/agents", content=body, headers={"Content-Type": "application/json"})
    assert sent.status_code == 201, sent.text


async def test_a_missing_body_says_to_send_json(tenant: TenantCtx) -> None:
    response = await tenant.http.post("/v1/agents")
    assert response.status_code == 422
    assert _fields(response) == ["body"]
    assert "Content-Type: application/json" in response.json()["errors"][0]["message"]


async def test_invalid_json_names_the_position_in_words(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    cases = {
        b'{"input": "x" "thread_id": "t"}': "invalid JSON at line 1, column 15: Expecting ',' delimiter",
        b'{\n  "input": "x",\n  "subject": }': "invalid JSON at line 3, column 14: Expecting value",
        b"": None,  # an empty body is a missing one, not invalid JSON
    }
    for raw, message in cases.items():
        response = await tenant.http.post(
            f"/v1/agents/{agent['id']}/runs", content=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422, response.text
        assert _fields(response) == ["body"]
        if message is not None:
            assert response.json()["errors"][0]["message"] == message
            assert message in response.json()["detail"]
