"""The OpenAPI document and the API explorer, both built from the routes in one place.

Every operation gets, from its route: a summary (the first line of its docstring), the
bearer security scheme when a dependency authenticates, and the problem responses its
dependencies can give (401 and 429 when authenticated, 403 when a permission is checked,
404 for path ids, 422 for parameters and bodies); routes add the problems of their own
logic with ``responses=problems(409)``. Request text and the keys of free JSON carry the
server's text rule (no NUL) as a pattern, and the main request bodies carry examples. ``/docs``
(Swagger UI) and ``/redoc`` serve files shipped by the ``fastapi-offline`` package under
``/docs/static``: the explorer needs no network.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.staticfiles import StaticFiles
from pydantic.json_schema import models_json_schema

from api.deps import get_principal
from api.openapi_examples import REQUEST_EXAMPLES
from api.permissions import AUTHENTICATED
from api.problem_types import Problem, problem
from api.routes.codec_auth import COOKIE, authorize_codec

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
STATIC_URL = "/docs/static"
BEARER = "bearer"
CODEC_SESSION = "codecSession"
STORABLE_TEXT = r"^[^\u0000]*$"
"""No NUL in request text (``core.validation``; lone surrogates are refused too, but the Rust and
ECMAScript regex engines of schema validators cannot name them)."""
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`aim_…`) or an access token of `POST /v1/auth/token`.",
    },
    CODEC_SESSION: {
        "type": "apiKey",
        "in": "cookie",
        "name": COOKIE,
        "description": "The codec session of `POST /v1/auth/codec-session` (for the Temporal UI).",
    },
}


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


@dataclass(frozen=True)
class _Operation:
    """What the routes tell about one operation."""

    summary: str
    statuses: tuple[int, ...]
    security: list[dict[str, list[str]]] | None


def _operation(route: Any) -> _Operation:
    """The summary, derived problems and security requirement (``None``: public) of an API route."""
    dependants = [route.dependant, *_dependencies(route.dependant)]
    calls = [dependant.call for dependant in dependants[1:]]
    authenticated = any(call is get_principal or hasattr(call, "permission") for call in calls)
    permission = any(getattr(call, "permission", AUTHENTICATED) != AUTHENTICATED for call in calls)
    has_path = any(dependant.path_params for dependant in dependants)
    has_input = route.body_field is not None or any(
        dependant.query_params or dependant.header_params or dependant.path_params for dependant in dependants
    )
    statuses = (401, 429) * authenticated + (403,) * permission + (404,) * has_path + (422,) * has_input
    first = (route.description or "").strip().splitlines()[:1]
    summary = route.summary or (first[0].strip().rstrip(".").replace("``", "`") if first else route.name)
    security: list[dict[str, list[str]]] | None = None
    if authenticated:
        security = [{BEARER: []}, {CODEC_SESSION: []}] if authorize_codec in calls else [{BEARER: []}]
    return _Operation(summary=summary, statuses=statuses, security=security)


def _text_rule(schema: Any) -> None:
    """Give every free string of a request schema the storable-text pattern."""
    if isinstance(schema, list):
        for item in schema:
            _text_rule(item)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not {"pattern", "format", "enum", "const"} & schema.keys():
        schema["pattern"] = STORABLE_TEXT
    if schema.get("type") == "object" and schema.get("additionalProperties", True) is True:
        schema["propertyNames"] = {"pattern": STORABLE_TEXT}  # values: free JSON, described, not a recursive schema
        schema.setdefault("description", "Free JSON; its strings and keys contain no NUL.")
    for key, value in schema.items():
        if key not in ("examples", "example", "default", "enum", "const"):
            _text_rule(value)


def _request_schemas(document: dict[str, Any]) -> set[str]:
    """The component schemas reachable from request bodies."""
    schemas = document["components"]["schemas"]
    found: set[str] = set()
    pending = [
        content["schema"]
        for operations in document["paths"].values()
        for operation in operations.values()
        for content in operation.get("requestBody", {}).get("content", {}).values()
        if "schema" in content
    ]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            name = ref.rsplit("/", 1)[-1]
            if ref and name not in found:
                found.add(name)
                pending.append(schemas[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def _add_examples(document: dict[str, Any]) -> None:
    for operations in document["paths"].values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            name = content.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
            if name in REQUEST_EXAMPLES:
                content["example"] = REQUEST_EXAMPLES[name]


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of ``app`` (see the module docstring)."""
    derived = {
        (route.path_format, method.lower()): _operation(route)
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute) and route.include_in_schema
        for method in route.methods or ()
    }
    app.openapi_schema = None
    document = FastAPI.openapi(app)
    components = document.setdefault("components", {})
    _, problem_schemas = models_json_schema([(Problem, "serialization")], ref_template="#/components/schemas/{model}")
    components.setdefault("schemas", {}).update(problem_schemas["$defs"])
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            found = derived.get((path, method))
            if found is None:  # not an API route's operation (none today)
                continue
            operation["summary"] = found.summary
            responses = operation["responses"]
            for status in found.statuses:
                responses.setdefault(str(status), problem(status))
            operation["responses"] = dict(sorted(responses.items()))
            if found.security:
                operation["security"] = found.security
            for parameter in operation.get("parameters", []):
                if parameter["in"] in ("query", "header"):
                    _text_rule(parameter["schema"])
    for name in _request_schemas(document):
        _text_rule(components["schemas"][name])
    _add_examples(document)
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve the document at ``/openapi.json`` and Swagger UI at ``/docs``, its assets from the API itself."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    static = files("fastapi_offline") / "static"
    app.mount(STATIC_URL, StaticFiles(directory=str(static)), name="docs-static")

    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} API",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},  # no online validator badge
        )

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} API",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )

    app.add_route(DOCS_URL, docs, include_in_schema=False)  # plain routes: pages, not API operations
    app.add_route(REDOC_URL, redoc, include_in_schema=False)
