"""Request and response bodies of ``/v1/tools`` and ``/v1/webhooks``."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field, StrictBool, ValidationInfo, field_validator
from pydantic.config import JsonDict

from core.tools.tenant_http import (
    RESERVED_TOOL_NAMES,
    TOOL_NAME,
    parameters_problem,
    url_template_problem,
)
from core.validation import CleanModel
from core.webhooks import EVENT_TYPES, EventType

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
_FORBIDDEN_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "idempotency-key"}
)

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
_HOST = r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z]([a-z0-9-]{0,61}[a-z0-9])?){0,3}(:[1-9][0-9]{0,3})?"
_PCHARS = r"A-Za-z0-9._~!$&'()*+,;=:@/-"
_URI_TEXT = re.compile(r"(%[0-9A-Fa-f]{2}|[A-Za-z0-9._~!$&'()*+,;=:@/?#\[\]-])+")
"""The characters a URI may hold (RFC 3986): unreserved, reserved and percent-encoded octets."""
WEBHOOK_URL_SCHEMA: JsonDict = {"pattern": rf"^https?://{_HOST}(/[{_PCHARS}]*)?(\?[?{_PCHARS}]*)?$"}
"""The documented shape of a webhook URL: http(s), a host name, a path and a query (no credentials, no fragment)."""
_TEMPLATE = rf"([{_PCHARS}]|\{{[A-Za-z_][A-Za-z0-9_]*\}})"
TOOL_URL_SCHEMA: JsonDict = {"pattern": rf"^https?://{_HOST}(/{_TEMPLATE}*)?(\?({_TEMPLATE}|\?)*)?$"}
"""The documented shape of a tool URL: a webhook URL whose path and query may hold ``{param}`` placeholders."""


class ToolCreate(CleanModel):
    """``POST /v1/tools``: a tenant-defined HTTP tool."""

    name: str = Field(min_length=1, max_length=64, pattern=TOOL_NAME.pattern)
    description: str = Field(default="", max_length=2000)
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema of the arguments (an object).",
        json_schema_extra={"properties": {"type": {"const": "object"}}, "required": ["type"]},
    )
    method: HttpMethod = "GET"
    url: str = Field(
        min_length=1,
        max_length=2000,
        description="http(s) URL; {param} placeholders (declared in `parameters.properties`) in the path or query.",
        json_schema_extra=TOOL_URL_SCHEMA,
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Header values may reference secrets as {{secret:NAME}}.",
        json_schema_extra={
            "maxProperties": 50,
            "propertyNames": {"pattern": _HEADER_NAME.pattern},
            "additionalProperties": {"type": "string", "maxLength": 8192, "pattern": r"^[^\u0000\r\n]*$"},
        },
    )
    side_effects: StrictBool | None = Field(default=None, description="Default: true unless the method is GET.")
    timeout_s: float = Field(default=15.0, gt=0, le=120)

    @field_validator("name")
    @classmethod
    def _not_builtin(cls, value: str) -> str:
        if value in RESERVED_TOOL_NAMES:
            raise ValueError(f"{value!r} is a built-in tool name")
        return value

    @field_validator("parameters")
    @classmethod
    def _schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        problem = parameters_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 50:
            raise ValueError("at most 50 headers")
        for name, header in value.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"invalid header name {name!r}")
            if name.lower() in _FORBIDDEN_HEADERS:
                raise ValueError(f"header {name!r} is set by the platform")
            if any(c in header for c in "\r\n") or len(header) > 8192:
                raise ValueError(f"invalid value for header {name!r} (line break or longer than 8192)")
        return value

    @field_validator("url")
    @classmethod
    def _url_template(cls, value: str, info: ValidationInfo) -> str:
        parameters = info.data.get("parameters")  # absent when it was refused: check the URL alone
        properties = (parameters.get("properties") or {}) if parameters is not None else None
        problem = url_template_problem(value, properties)
        if problem:
            raise ValueError(problem)
        return value


class ToolPublic(BaseModel):
    """A tool: built-in or tenant-defined."""

    name: str
    description: str
    parameters: dict[str, Any]
    builtin: bool
    method: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    side_effects: bool
    timeout_s: float | None = None
    created_at: datetime | None = None


class WebhookCreate(CleanModel):
    """``POST /v1/webhooks``."""

    url: str = Field(min_length=1, max_length=2000, json_schema_extra=WEBHOOK_URL_SCHEMA)
    events: list[EventType] = Field(min_length=1, max_length=len(EVENT_TYPES))

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            url = httpx.URL(value)
        except (httpx.InvalidURL, ValueError) as exc:
            raise ValueError(f"not a valid URL: {exc}") from None
        if url.scheme not in ("http", "https"):
            raise ValueError("must be an http or https URL")
        if not url.host:
            raise ValueError("must have a host")
        if url.userinfo:
            raise ValueError("must not contain credentials")
        if url.fragment:
            raise ValueError("must not contain a fragment")
        if not _URI_TEXT.fullmatch(value):
            raise ValueError("must hold only URI characters (RFC 3986): percent-encode the others")
        return value

    @field_validator("events")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class WebhookPublic(BaseModel):
    """A webhook (never its secret)."""

    id: str
    url: str
    events: list[str]
    created_at: datetime


class WebhookCreated(WebhookPublic):
    """The answer to ``POST /v1/webhooks``: the signing secret, shown this once."""

    secret: str


class DeliveryPublic(BaseModel):
    """One event sent (or being sent) to a webhook."""

    id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
