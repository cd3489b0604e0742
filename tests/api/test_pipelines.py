"""Pipeline definitions over HTTP: create, list, versions, archive, validation with JSON pointers, on the real stack."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from core.pipelines.definition import MAX_DEFINITION_BYTES, MAX_STEPS
from tests.conftest import TenantCtx
from tests.support.runs import create_agent

PROBLEM = "application/problem+json"


def review(agent_id: str) -> dict[str, Any]:
    """An agent step, two tools in parallel after it, a condition and an approval (the README's example)."""
    return {
        "inputs": {"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"]},
        "steps": [
            {"id": "answer", "type": "agent", "agent_id": agent_id, "input": "${input.question}"},
            {"id": "sum", "type": "tool", "tool": "calculator", "args": {"expression": "2 * 21"}, "needs": ["answer"]},
            {"id": "clock", "type": "tool", "tool": "current_time", "needs": ["answer"]},
            {
                "id": "check",
                "type": "approval",
                "needs": ["sum", "clock"],
                "if": "size(steps.answer.output) > 10",
                "prompt": "Publish ${steps.answer.output}?",
                "timeout_s": 3600,
            },
        ],
        "output": "steps.answer.output",
    }


def _errors(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["type"].endswith("/validation-error")
    return {e["field"]: e["message"] for e in body["errors"]}


async def test_create_read_list_put_versions_and_archive(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    created = await tenant.http.post("/v1/pipelines", json={"name": "review", "definition": review(agent["id"])})
    assert created.status_code == 201, created.text
    pipeline = created.json()
    assert pipeline["id"].startswith("pip_")
    assert (pipeline["name"], pipeline["version"], pipeline["archived"]) == ("review", 1, False)
    assert pipeline["definition"] == review(agent["id"])
    pid = pipeline["id"]
    assert (await tenant.http.get(f"/v1/pipelines/{pid}")).json() == pipeline

    second = review(agent["id"])
    second["steps"][3]["if"] = "false"
    put = await tenant.http.put(f"/v1/pipelines/{pid}", json={"definition": second, "name": "review v2"})
    assert put.status_code == 200, put.text
    assert (put.json()["version"], put.json()["name"], put.json()["definition"]) == (2, "review v2", second)
    versions = (await tenant.http.get(f"/v1/pipelines/{pid}/versions")).json()["items"]
    assert [(v["version"], v["current"]) for v in versions] == [(2, True), (1, False)]
    assert all(v["created_by"]["id"].startswith("key_") for v in versions)
    first = (await tenant.http.get(f"/v1/pipelines/{pid}/versions/1")).json()
    assert first["definition"] == review(agent["id"])
    assert first["current"] is False
    assert (await tenant.http.get(f"/v1/pipelines/{pid}/versions/3")).status_code == 404
    page = (await tenant.http.get(f"/v1/pipelines/{pid}/versions", params={"limit": 1})).json()
    rest = (await tenant.http.get(f"/v1/pipelines/{pid}/versions", params={"cursor": page["next_cursor"]})).json()
    assert [v["version"] for v in page["items"] + rest["items"]] == [2, 1]

    other = await tenant.http.post("/v1/pipelines", json={"name": "later", "definition": review(agent["id"])})
    listed = (await tenant.http.get("/v1/pipelines")).json()
    assert [p["id"] for p in listed["items"]] == [other.json()["id"], pid]
    assert listed["items"][1]["version"] == 2
    first_page = (await tenant.http.get("/v1/pipelines", params={"limit": 1})).json()
    second_page = (await tenant.http.get("/v1/pipelines", params={"cursor": first_page["next_cursor"]})).json()
    assert [p["id"] for p in first_page["items"] + second_page["items"]] == [other.json()["id"], pid]
    assert second_page["next_cursor"] is None

    assert (await tenant.http.delete(f"/v1/pipelines/{pid}")).status_code == 204
    assert (await tenant.http.delete(f"/v1/pipelines/{pid}")).status_code == 204  # idempotent
    archived = (await tenant.http.get(f"/v1/pipelines/{pid}")).json()
    assert archived["archived"] is True
    assert archived["archived_at"] is not None
    assert archived["version"] == 2
    refused = await tenant.http.put(f"/v1/pipelines/{pid}", json={"definition": second})
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/pipeline-archived")
    assert [p["id"] for p in (await tenant.http.get("/v1/pipelines")).json()["items"]] == [other.json()["id"]]
    assert len((await tenant.http.get(f"/v1/pipelines/{pid}/versions")).json()["items"]) == 2

    actions = [e["action"] for e in (await tenant.http.get("/v1/audit-events")).json()["items"]]
    assert (actions.count("pipeline.created"), actions.count("pipeline.version_created")) == (2, 1)
    assert actions.count("pipeline.archived") == 1


async def test_validate_answers_errors_at_pointers_and_the_plan(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    good = await tenant.http.post("/v1/pipelines/validate", json={"definition": review(agent["id"])})
    assert good.status_code == 200, good.text
    assert good.json()["valid"] is True
    assert good.json()["errors"] == []
    assert good.json()["plan"]["waves"] == [["answer"], ["sum", "clock"], ["check"]]

    bad = review(agent["id"])
    bad["steps"][1]["tool"] = "no_such_tool"
    bad["steps"][3]["if"] = "steps.nowhere.output"
    bad["steps"][2]["needs"] = ["clock"]
    answer = await tenant.http.post("/v1/pipelines/validate", json={"definition": bad})
    assert answer.status_code == 200
    body = answer.json()
    assert body["valid"] is False
    assert body["plan"] is None
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert fields["/steps/1/tool"] == "unknown tool 'no_such_tool'"
    assert "/steps/2/needs/0" in fields
    assert "/steps/3/if" in fields
    assert (await tenant.http.get("/v1/pipelines")).json()["items"] == []  # nothing stored
    for method in ("GET", "PUT", "DELETE"):  # "validate" is no pipeline id
        other_method = await tenant.http.request(method, "/v1/pipelines/validate")
        assert other_method.status_code == 405, method
        assert other_method.headers["allow"] == "POST"


async def test_saving_an_invalid_definition_is_422_with_pointers_into_the_body(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    bad = review(agent["id"])
    bad["steps"][3]["if"] = "size(steps.answer.output) >"
    bad["steps"][0]["type"] = "teleport"
    fields = _errors(await tenant.http.post("/v1/pipelines", json={"name": "x", "definition": bad}))
    assert fields == {"/definition/steps/0/type": fields["/definition/steps/0/type"]}  # parse errors come alone
    assert "teleport" in fields["/definition/steps/0/type"]

    bad["steps"][0]["type"] = "agent"
    response = await tenant.http.post("/v1/pipelines", json={"name": "x", "definition": bad})
    assert set(_errors(response)) == {"/definition/steps/3/if"}
    assert response.json()["detail"].startswith("invalid pipeline definition — /definition/steps/3/if: ")
    assert set(_errors(await tenant.http.post("/v1/pipelines", json={"name": "x", "definition": {}}))) == {
        "/definition/steps"
    }
    assert (await tenant.http.get("/v1/pipelines")).json()["items"] == []

    created = (await tenant.http.post("/v1/pipelines", json={"name": "x", "definition": review(agent["id"])})).json()
    reads_itself = review(agent["id"])
    reads_itself["steps"].append({"id": "again", "type": "pipeline", "pipeline_id": created["id"]})
    fields = _errors(await tenant.http.put(f"/v1/pipelines/{created['id']}", json={"definition": reads_itself}))
    assert fields == {"/definition/steps/4/pipeline_id": f"unknown pipeline {created['id']!r}"}
    assert (await tenant.http.get(f"/v1/pipelines/{created['id']}")).json()["version"] == 1  # nothing stored
    nested = review(agent["id"])
    nested["steps"].append({"id": "sub", "type": "pipeline", "pipeline_id": created["id"]})
    assert (await tenant.http.post("/v1/pipelines", json={"name": "y", "definition": nested})).status_code == 201
    assert (await tenant.http.delete(f"/v1/pipelines/{created['id']}")).status_code == 204
    archived_sub = await tenant.http.post("/v1/pipelines", json={"name": "z", "definition": nested})
    assert set(_errors(archived_sub)) == {"/definition/steps/4/pipeline_id"}


async def test_another_tenants_agent_tool_or_pipeline_is_unknown(tenant: TenantCtx, other_tenant: TenantCtx) -> None:
    theirs = await create_agent(other_tenant.http)
    tool = {"name": "b_only", "parameters": {"type": "object", "properties": {}}, "method": "GET"}
    tool["url"] = "https://api.example.com/b"
    assert (await other_tenant.http.post("/v1/tools", json=tool)).status_code == 201
    their_pipeline = await other_tenant.http.post(
        "/v1/pipelines", json={"name": "b", "definition": review(theirs["id"])}
    )
    assert their_pipeline.status_code == 201
    definition = review(theirs["id"])
    definition["steps"][1]["tool"] = "b_only"
    definition["steps"].append({"id": "sub", "type": "pipeline", "pipeline_id": their_pipeline.json()["id"]})
    fields = _errors(await tenant.http.post("/v1/pipelines", json={"name": "steal", "definition": definition}))
    assert set(fields) == {
        f"/definition/steps/{i}/{name}" for i, name in ((0, "agent_id"), (1, "tool"), (4, "pipeline_id"))
    }
    assert fields["/definition/steps/0/agent_id"] == f"unknown agent {theirs['id']!r}"
    checked = (await tenant.http.post("/v1/pipelines/validate", json={"definition": definition})).json()
    assert {e["field"] for e in checked["errors"]} == {"/steps/0/agent_id", "/steps/1/tool", "/steps/4/pipeline_id"}
    assert (await tenant.http.get(f"/v1/pipelines/{their_pipeline.json()['id']}")).status_code == 404

    mine = await create_agent(tenant.http)
    archived = await create_agent(tenant.http)
    assert (await tenant.http.delete(f"/v1/agents/{archived['id']}")).status_code == 204
    definition = review(mine["id"])
    definition["steps"].append({"id": "old", "type": "agent", "agent_id": archived["id"]})
    fields = _errors(await tenant.http.post("/v1/pipelines", json={"name": "old", "definition": definition}))
    assert set(fields) == {"/definition/steps/4/agent_id"}


async def test_limits_and_bad_bodies(tenant: TenantCtx) -> None:
    wait = {"type": "wait", "seconds": 1}
    many = {"steps": [{"id": f"s{i}", **wait} for i in range(MAX_STEPS + 1)]}
    fields = _errors(await tenant.http.post("/v1/pipelines", json={"name": "big", "definition": many}))
    assert list(fields) == ["/definition/steps"]
    huge = {"steps": [{"id": "s", **wait}], "inputs": {"description": "x" * MAX_DEFINITION_BYTES}}
    fields = _errors(await tenant.http.post("/v1/pipelines", json={"name": "huge", "definition": huge}))
    assert fields == {"/definition": f"larger than {MAX_DEFINITION_BYTES} bytes of JSON"}
    deep: dict[str, Any] = {}
    for _ in range(60):
        deep = {"a": deep}
    nested = {"steps": [{"id": "s", "type": "tool", "tool": "calculator", "args": deep}]}
    too_deep = await tenant.http.post("/v1/pipelines/validate", json={"definition": nested})
    assert too_deep.status_code == 422  # request bodies nest at most 32 levels, below the definition's own bound
    assert too_deep.json()["errors"] == [{"field": "definition", "message": "nested too deeply"}]

    for body, field in (
        ({"definition": {"steps": [{"id": "s", **wait}]}}, "name"),
        ({"name": "", "definition": {"steps": []}}, "name"),
        ({"name": "x", "definition": [1]}, "definition"),
        ({"name": "x", "definition": {"steps": [{"id": "s", **wait}]}, "tenant_id": "ten_other"}, "tenant_id"),
    ):
        response = await tenant.http.post("/v1/pipelines", json=body)
        assert response.status_code == 422, body
        assert field in {e["field"] for e in response.json()["errors"]}, response.json()
    assert (await tenant.http.get("/v1/pipelines/pip_nope")).status_code == 404
    assert (await tenant.http.put("/v1/pipelines/pip_nope", json={"definition": {}})).status_code == 404
    assert (await tenant.http.get("/v1/pipelines")).json()["items"] == []


async def test_viewer_reads_but_cannot_write(tenant: TenantCtx, engine: AsyncEngine) -> None:
    agent = await create_agent(tenant.http)
    created = (await tenant.http.post("/v1/pipelines", json={"name": "r", "definition": review(agent["id"])})).json()
    viewer = {"Authorization": f"Bearer {await tenant.key_for(engine, 'viewer')}"}
    assert (await tenant.http.get(f"/v1/pipelines/{created['id']}", headers=viewer)).status_code == 200
    validated = await tenant.http.post(
        "/v1/pipelines/validate", json={"definition": review(agent["id"])}, headers=viewer
    )
    assert validated.status_code == 200
    for method, url, body in (
        ("POST", "/v1/pipelines", {"name": "v", "definition": review(agent["id"])}),
        ("PUT", f"/v1/pipelines/{created['id']}", {"definition": review(agent["id"])}),
        ("DELETE", f"/v1/pipelines/{created['id']}", None),
    ):
        assert (await tenant.http.request(method, url, json=body, headers=viewer)).status_code == 403, url
    assert (await tenant.http.get(f"/v1/pipelines/{created['id']}")).json()["archived"] is False


async def test_sub_pipelines_cannot_form_a_cycle(tenant: TenantCtx) -> None:
    def calls(*pipeline_ids: str) -> dict[str, Any]:
        steps: list[dict[str, Any]] = [{"id": "pause", "type": "wait", "seconds": 1}]
        steps += [{"id": f"sub{i}", "type": "pipeline", "pipeline_id": p} for i, p in enumerate(pipeline_ids)]
        if pipeline_ids:  # the last one also inside a map
            sub = {"type": "pipeline", "pipeline_id": pipeline_ids[-1]}
            steps.append({"id": "each", "type": "map", "over": "[1]", "step": sub})
        return {"steps": steps}

    async def create(definition: dict[str, Any]) -> str:
        response = await tenant.http.post("/v1/pipelines", json={"name": "p", "definition": definition})
        assert response.status_code == 201, response.text
        pipeline_id: str = response.json()["id"]
        return pipeline_id

    a = await create(calls())
    b = await create(calls(a))
    c = await create(calls(b))
    unrelated = await create(calls())
    fields = _errors(await tenant.http.put(f"/v1/pipelines/{a}", json={"definition": calls(unrelated, c)}))
    assert set(fields) == {"/definition/steps/2/pipeline_id", "/definition/steps/3/step/pipeline_id"}
    assert fields["/definition/steps/2/pipeline_id"].startswith(f"pipeline {c!r} runs this pipeline again")
    assert (await tenant.http.get(f"/v1/pipelines/{a}")).json()["version"] == 1
    assert (await tenant.http.put(f"/v1/pipelines/{a}", json={"definition": calls(unrelated)})).status_code == 200
    assert (await tenant.http.put(f"/v1/pipelines/{c}", json={"definition": calls(a, b)})).status_code == 200
