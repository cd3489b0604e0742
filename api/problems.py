"""RFC 9457 problem+json responses and the exception handlers that produce them."""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from api.problem_types import MEDIA_TYPE, ProblemType

log = structlog.get_logger(__name__)


class ProblemError(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: ProblemType | None = None,
        errors: Sequence[dict[str, str]] = (),
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = ProblemType(slug) if slug else ProblemType.for_status(status)
        self.errors = list(errors)
        self.headers = headers


def invalid(what: str, errors: Sequence[dict[str, str]]) -> ProblemError:
    """422 ``validation-error`` naming every field of ``errors``; the detail quotes the first.

    ``what`` names the refused thing: ``invalid <what> — <field>: <message>``.
    """
    first = errors[0]
    return ProblemError(
        422, f"invalid {what} — {first['field']}: {first['message']}", slug=ProblemType.VALIDATION_ERROR, errors=errors
    )


def problem_document(
    status: int, detail: str, *, slug: ProblemType | None = None, errors: Sequence[dict[str, str]] = ()
) -> dict[str, Any]:
    """The RFC 9457 body for ``status`` (``slug`` names the problem type, else the status does)."""
    body: dict[str, Any] = {
        "type": (slug or ProblemType.for_status(status)).uri,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = list(errors)
    return body


def problem_response(
    status: int,
    detail: str,
    *,
    slug: ProblemType | None = None,
    errors: Sequence[dict[str, str]] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response."""
    body = problem_document(status, detail, slug=slug, errors=errors)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def field_name(loc: Sequence[int | str]) -> str:
    """``("body", "tools", 0, "name")`` → ``"tools[0].name"``."""
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else list(loc)
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        elif part in ("function-after[_names_to_specs()]",):
            continue
        else:
            name += ("." if name else "") + str(part)
    if loc and loc[0] in ("query", "header") and name:
        return name
    return name or (str(loc[0]) if loc else "body")


JSON_MEDIA_TYPE = "application/json"


def _unparsed_body(exc: RequestValidationError) -> bool:
    """Whether the body arrived but was not read as JSON (its ``Content-Type`` is absent or not JSON)."""
    return any(tuple(e.get("loc", ())) == ("body",) and isinstance(e.get("input"), bytes) for e in exc.errors())


def _json_position(doc: object, position: int) -> str:
    """``line L, column C`` of the character at ``position`` in the JSON text ``doc``."""
    text = doc if isinstance(doc, str) else ""
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f"line {line}, column {column}"


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    items = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            loc = error.get("loc", ())
            position = loc[-1] if len(loc) == 2 and isinstance(loc[-1], int) else 0
            reason = str((error.get("ctx") or {}).get("error", "not JSON"))
            items.append(
                {"field": "body", "message": f"invalid JSON at {_json_position(exc.body, position)}: {reason}"}
            )
            continue
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "missing" and tuple(error.get("loc", ())) == ("body",):
            message = f"a JSON body is required, sent with `Content-Type: {JSON_MEDIA_TYPE}`"
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        items.append({"field": field_name(error.get("loc", ())), "message": message})
    return items


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods of the resource at ``path`` (the ``Allow`` of a 405).

    The resource is the most literal path that matches: ``/v1/memories/search`` is its own,
    not a ``/v1/memories/{memory_id}``. A hidden API route that answers 405 itself
    (``PUT /v1/pipelines/validate``) adds no method.
    """
    by_params: dict[int, set[str]] = {}
    for route in iter_route_contexts(app.routes):
        original = route.original_route
        documented = not isinstance(original, APIRoute) or original.include_in_schema
        if route.path and route.methods and documented and compile_path(route.path)[0].match(path):
            by_params.setdefault(route.path.count("{"), set()).update(route.methods)
    return sorted(by_params[min(by_params)]) if by_params else []


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with problem+json (``api.openapi`` declares the Problem schema)."""

    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.status, exc.detail, slug=exc.slug, errors=exc.errors, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if _unparsed_body(exc):
            sent = (request.headers.get("content-type") or "no Content-Type")[:100]
            message = f"the body must be JSON sent with `Content-Type: {JSON_MEDIA_TYPE}` (this request had {sent})"
            return problem_response(
                415,
                message,
                slug=ProblemType.UNSUPPORTED_MEDIA_TYPE,
                errors=[{"field": "Content-Type", "message": message}],
            )
        errors = _validation_errors(exc)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(422, f"invalid request — {detail}", slug=ProblemType.VALIDATION_ERROR, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # a route answers only its own methods; the path may have more
            headers["Allow"] = ", ".join(allowed_methods(app, request.url.path))
        return problem_response(exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(DataError)
    async def _unstorable(_: Request, exc: DataError) -> JSONResponse:
        log.warning("database refused a value", error=str(exc.orig)[:200])
        return problem_response(
            422, "a value cannot be stored (invalid characters or out of range)", slug=ProblemType.VALIDATION_ERROR
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return problem_response(500, "internal error; the request was logged", slug=ProblemType.INTERNAL_ERROR)
