"""The problem types of the API and the OpenAPI schema of a problem document (RFC 9457)."""

from __future__ import annotations

from enum import StrEnum
from http import HTTPStatus
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, WithJsonSchema

from core.errors import problem_type

MEDIA_TYPE = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"


class ProblemType(StrEnum):
    """Every problem type the API answers with; the value is the last segment of its ``type`` URI."""

    BAD_REQUEST = "bad-request"
    """400: the HTTP parser refused the request line or the headers."""
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not-found"
    """Absent, or another tenant's (the two are indistinguishable)."""
    METHOD_NOT_ALLOWED = "method-not-allowed"
    REQUEST_TIMEOUT = "request-timeout"
    """408: the headers or the body arrived too slowly."""
    CONFLICT = "conflict"
    AGENT_ARCHIVED = "agent-archived"
    PIPELINE_ARCHIVED = "pipeline-archived"
    LAST_OWNER = "last-owner"
    WEBHOOK_LIMIT = "webhook-limit"
    FEEDBACK_LIMIT = "feedback-limit"
    DATASET_LIMIT = "dataset-limit"
    """409: the tenant already keeps ``AIMPACT_DATASETS_PER_TENANT`` datasets."""
    RUN_NOT_FINISHED = "run-not-finished"
    REQUEST_ENTITY_TOO_LARGE = "request-entity-too-large"
    REQUEST_URI_TOO_LONG = "request-uri-too-long"
    UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"
    """415: a body that is not sent as ``application/json``."""
    REQUEST_HEADER_FIELDS_TOO_LARGE = "request-header-fields-too-large"
    VALIDATION_ERROR = "validation-error"
    """422 naming each invalid field in ``errors``."""
    IDEMPOTENCY_KEY_REUSED = "idempotency-key-reused"
    """422: an ``Idempotency-Key`` sent again with another request than the one it started."""
    DECRYPTION_FAILED = "decryption-failed"
    QUOTA_EXCEEDED = "quota-exceeded"
    PIPELINE_CONCURRENCY_LIMIT = "pipeline-concurrency-limit"
    """429: the pipeline already has ``max_concurrent_runs`` live runs and its definition says ``reject``."""
    LOGIN_THROTTLED = "login-throttled"
    TOO_MANY_STREAMS = "too-many-streams"
    INTERNAL_ERROR = "internal-error"
    EMBEDDER_REJECTED = "embedder-rejected"
    TEMPORAL_UNAVAILABLE = "temporal-unavailable"
    EMBEDDER_UNAVAILABLE = "embedder-unavailable"

    @property
    def uri(self) -> str:
        """The ``type`` member of the problem document."""
        return problem_type(self.value)

    @classmethod
    def from_uri(cls, uri: str) -> ProblemType:
        """The problem type whose URI is ``uri`` (``ValueError`` for any other string)."""
        for member in cls:
            if member.uri == uri:
                return member
        raise ValueError(f"{uri!r} is not a declared problem type")

    @classmethod
    def for_status(cls, status: int) -> ProblemType:
        """The type of a problem raised with a status only (an HTTP error of the framework or the server)."""
        return _BY_STATUS.get(status, cls.BAD_REQUEST if status < 500 else cls.INTERNAL_ERROR)


_BY_STATUS = {
    400: ProblemType.BAD_REQUEST,
    401: ProblemType.UNAUTHORIZED,
    403: ProblemType.FORBIDDEN,
    404: ProblemType.NOT_FOUND,
    405: ProblemType.METHOD_NOT_ALLOWED,
    408: ProblemType.REQUEST_TIMEOUT,
    409: ProblemType.CONFLICT,
    413: ProblemType.REQUEST_ENTITY_TOO_LARGE,
    414: ProblemType.REQUEST_URI_TOO_LONG,
    415: ProblemType.UNSUPPORTED_MEDIA_TYPE,
    422: ProblemType.VALIDATION_ERROR,
    431: ProblemType.REQUEST_HEADER_FIELDS_TOO_LARGE,
    500: ProblemType.INTERNAL_ERROR,
}


def _declared(uri: str) -> str:
    ProblemType.from_uri(uri)
    return uri


ProblemUri = Annotated[
    str,
    AfterValidator(_declared),
    WithJsonSchema(
        {
            "type": "string",
            "format": "uri",
            "enum": [member.uri for member in ProblemType],
            "x-enum-varnames": [member.name for member in ProblemType],
        }
    ),
]


class ProblemField(BaseModel):
    """One invalid part of a request."""

    field: str = Field(description="Where: `tools[0].name`, `limit`, `body`, …")
    message: str


class Problem(BaseModel):
    """The body of every error response (`application/problem+json`, RFC 9457)."""

    type: ProblemUri = Field(description="The problem type: `https://aimpact.dev/problems/<slug>`.")
    title: str = Field(description="The phrase of the HTTP status.")
    status: int
    detail: str
    errors: list[ProblemField] = Field(
        default_factory=list, description="Each invalid field (validation problems); absent when empty."
    )


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "default": {
        "description": "A problem: every error answers `application/problem+json`.",
        "content": {MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
    }
}
"""The ``responses`` of the app: the Problem schema is every route's default response."""

_MEANING = {
    401: "Missing or invalid credentials.",
    403: "The caller's role lacks the permission.",
    404: "Not found (or another tenant's).",
    409: "The request conflicts with the resource's state.",
    422: "A parameter or the body is invalid; `errors` names each field.",
    429: "A quota or limit is reached; `Retry-After` says when to retry.",
    502: "An upstream service refused the request.",
    503: "A service the request needs is unavailable; retry later.",
}
_HEADERS = {
    401: {"WWW-Authenticate": {"description": "`Bearer`.", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
}


def problem(status: int) -> dict[str, Any]:
    """The OpenAPI response object of a ``status`` problem."""
    response: dict[str, Any] = {
        "description": _MEANING.get(status, HTTPStatus(status).phrase),
        "content": {MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
    }
    if status in _HEADERS:
        response["headers"] = _HEADERS[status]
    return response


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route whose own logic answers these problems."""
    return {status: problem(status) for status in statuses}
