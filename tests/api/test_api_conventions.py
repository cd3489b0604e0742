"""API conventions: one alias per permission, every problem type declared in OpenAPI, run statuses as one enum."""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Any

import httpx
import jsonschema
from fastapi.params import Depends

from api import permissions
from api.problem_types import ProblemType
from core.contracts.agent_run import RunStatus
from core.roles import PERMISSIONS, Permission
from tests.conftest import TenantCtx
from tests.support.runs import create_agent
from workers.embedded.stack import StackProcess

PROBLEM_REF = "#/components/schemas/Problem"


def _alias_permission(alias: Any) -> str | None:
    """The permission an ``Annotated[Principal, Depends(...)]`` alias declares."""
    for meta in getattr(alias, "__metadata__", ()):
        if isinstance(meta, Depends):
            return getattr(meta.dependency, "permission", None)
    return None


def test_one_alias_per_permission_named_after_it() -> None:
    aliases = {name: _alias_permission(value) for name, value in vars(permissions).items() if name[0].isupper()}
    declared = {perm: name for name, perm in aliases.items() if perm is not None}
    assert set(declared) == {*Permission, permissions.AUTHENTICATED}
    for permission, name in declared.items():
        assert name == "".join(part.capitalize() for part in permission.replace(":", "_").split("_"))
    assert set().union(*PERMISSIONS.values()) <= set(Permission)


async def _openapi(stack: StackProcess) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as client:  # built on first request
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def test_every_problem_type_is_declared_and_is_every_routes_default(stack: StackProcess) -> None:
    document = await _openapi(stack)
    problem = document["components"]["schemas"]["Problem"]
    assert problem["properties"]["type"]["enum"] == [member.uri for member in ProblemType]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    without_default = [
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if operation["responses"].get("default", {}).get("content", {}).get("application/problem+json")
        != {"schema": {"$ref": PROBLEM_REF}}
    ]
    assert without_default == []
    assert "HTTPValidationError" not in document["components"]["schemas"]  # 422s are problems too


def test_status_defaults_are_problem_types() -> None:
    for status in (400, 401, 403, 404, 405, 408, 409, 413, 414, 431):  # raised by the framework or the server
        assert ProblemType.for_status(status) == HTTPStatus(status).phrase.lower().replace(" ", "-")  # as before
    assert ProblemType.for_status(418) is ProblemType.BAD_REQUEST
    assert ProblemType.for_status(507) is ProblemType.INTERNAL_ERROR


async def test_real_problems_match_the_declared_schema(stack: StackProcess, tenant: TenantCtx) -> None:
    document = await _openapi(stack)
    agent = await create_agent(tenant.http)
    assert (await tenant.http.delete(f"/v1/agents/{agent['id']}")).status_code == 204
    email = f"dup-{uuid.uuid4().hex[:8]}@example.com"
    duplicate = {"email": email, "password": "long enough password", "role": "viewer"}
    assert (await tenant.http.post("/v1/users", json=duplicate)).status_code == 201
    async with httpx.AsyncClient(base_url=stack.api_url) as anonymous:
        unauthenticated = await anonymous.get("/v1/agents")
    answers = {
        ProblemType.NOT_FOUND: await tenant.http.get("/v1/agents/agt_nope"),
        ProblemType.AGENT_ARCHIVED: await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "hi"}),
        ProblemType.CONFLICT: await tenant.http.post("/v1/users", json=duplicate),
        ProblemType.VALIDATION_ERROR: await tenant.http.post("/v1/agents", json={"name": ""}),
        ProblemType.METHOD_NOT_ALLOWED: await tenant.http.put("/v1/agents"),
        ProblemType.UNAUTHORIZED: unauthenticated,
    }
    schema = {"$ref": PROBLEM_REF, "components": document["components"]}
    for expected, response in answers.items():
        assert response.headers["content-type"] == "application/problem+json", response.text
        body = response.json()
        jsonschema.validate(body, schema)
        assert ProblemType.from_uri(body["type"]) is expected, body
        assert (body["status"], body["title"]) == (response.status_code, HTTPStatus(response.status_code).phrase)
    assert answers[ProblemType.VALIDATION_ERROR].json()["errors"]


async def test_run_statuses_are_one_enum_in_openapi(stack: StackProcess) -> None:
    schemas = (await _openapi(stack))["components"]["schemas"]
    assert schemas["RunPublic"]["properties"]["status"] == {"$ref": "#/components/schemas/RunStatus"}
    assert schemas["RunStatus"]["enum"] == ["queued", "running", "waiting_approval", "completed", "failed", "cancelled"]
    assert set(RunStatus) == RunStatus.ACTIVE | RunStatus.FINAL
    assert not RunStatus.ACTIVE & RunStatus.FINAL
    step = schemas["StepPublic"]["properties"]
    assert (step["kind"], step["status"]) == (
        {"$ref": "#/components/schemas/StepKind"},
        {"$ref": "#/components/schemas/StepStatus"},
    )
