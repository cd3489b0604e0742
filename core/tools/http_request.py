"""``http_request``: the model sends one HTTP request to a public URL (egress-guarded).

Requests other than ``GET`` may change something on the other side, so they carry
``Idempotency-Key: <workflow id + step id>``: a retried or replayed step sends the
same key and a server that honours it applies the request once. The response body
handed back to the model is capped at 256 KiB.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import jsonschema

from core.contracts.llm import ToolSchema
from core.egress import EgressError, GuardedResponse, guarded_request
from core.errors import ToolError
from core.tools.base import ToolContext

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_RESPONSE_BYTES",
    "HttpRequestTool",
    "check_arguments",
    "check_request_headers",
    "response_for_model",
]

MAX_RESPONSE_BYTES = 256 * 1024
"""Response body bytes returned to the model."""
DEFAULT_TIMEOUT_S = 15.0
MAX_TIMEOUT_S = 60.0
MAX_REQUEST_BODY = 256 * 1024
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

_RESPONSE_HEADERS = (
    "content-type",
    "content-length",
    "location",
    "retry-after",
    "etag",
    "last-modified",
    "cache-control",
    "link",
)
_FORBIDDEN_REQUEST_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "proxy-authorization"}
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")

AllowlistFor = Callable[[str], Awaitable[list[str]]]
"""``allowlist_for(tenant_id)``: the tenant's own egress allowlist."""


def check_request_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers safe to send; ``ToolError`` for malformed or hop-by-hop ones."""
    if len(headers) > 50:
        raise ToolError("at most 50 headers")
    clean: dict[str, str] = {}
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise ToolError(f"invalid header name {name!r}")
        if name.lower() in _FORBIDDEN_REQUEST_HEADERS:
            raise ToolError(f"header {name!r} cannot be set")
        if any(c in value for c in "\r\n\x00") or len(value) > 8192:
            raise ToolError(f"invalid value for header {name!r}")
        clean[name] = value
    return clean


def check_arguments(validator: jsonschema.protocols.Validator, arguments: Any) -> None:
    """``ToolError`` naming the most relevant schema violation of ``arguments``, if any."""
    error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "arguments"
        raise ToolError(f"invalid arguments: {where}: {error.message}")


def response_for_model(response: GuardedResponse, *, cap: int = MAX_RESPONSE_BYTES) -> dict[str, Any]:
    """``{"status", "headers" (a few), "body" (text, with a note when cut), "truncated"}``."""
    body = response.text()
    if response.truncated:
        body += f"\n[truncated: the response is longer than {cap} bytes]"
    return {
        "status": response.status,
        "headers": {name: response.headers[name] for name in _RESPONSE_HEADERS if name in response.headers},
        "body": body,
        "truncated": response.truncated,
    }


class HttpRequestTool:
    """Sends an HTTP request chosen by the model; side-effecting for methods other than GET."""

    side_effects = True
    pure = False
    schema = ToolSchema(
        name="http_request",
        description=(
            "Send an HTTP request to a public URL and return its status, main headers and body "
            f"(at most {MAX_RESPONSE_BYTES // 1024} KiB). Use 'json' for a JSON body or 'body' for raw text."
        ),
        parameters={
            "type": "object",
            "properties": {
                "method": {"type": "string", "enum": list(METHODS)},
                "url": {"type": "string", "minLength": 1, "maxLength": 2000},
                "headers": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "maxLength": 8192},
                    "maxProperties": 50,
                },
                "body": {"type": "string", "maxLength": MAX_REQUEST_BODY},
                "json": {"description": "A JSON value sent as the request body."},
                "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_TIMEOUT_S},
            },
            "required": ["method", "url"],
            "additionalProperties": False,
        },
    )
    _validator = jsonschema.Draft202012Validator(schema.parameters)

    def __init__(
        self,
        *,
        allowlist_for: AllowlistFor,
        platform_allowlist: Sequence[str] = (),
        default_timeout_s: float = DEFAULT_TIMEOUT_S,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ):
        """Build the tool.

        Args:
            allowlist_for: Loads a tenant's own egress allowlist.
            platform_allowlist: Entries of ``AIMPACT_EGRESS_ALLOWLIST``.
            default_timeout_s: Timeout when the model gives none.
            max_response_bytes: Body bytes returned to the model.
        """
        self._allowlist_for = allowlist_for
        self._platform = list(platform_allowlist)
        self._timeout_s = default_timeout_s
        self._max_bytes = max_response_bytes

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> Any:
        """Send the request; ``ToolError`` for refused URLs, bad arguments and network failures."""
        check_arguments(self._validator, arguments)
        if "body" in arguments and "json" in arguments:
            raise ToolError("give 'body' or 'json', not both")
        method = str(arguments["method"])
        headers = check_request_headers(arguments.get("headers") or {})
        if method != "GET":
            headers = {k: v for k, v in headers.items() if k.lower() != "idempotency-key"}
            headers["Idempotency-Key"] = context.idempotency_key
        allowlist = self._platform + await self._allowlist_for(context.tenant_id)
        try:
            response = await guarded_request(
                method,
                str(arguments["url"]),
                allowlist=allowlist,
                headers=headers,
                content=arguments.get("body"),
                json=arguments.get("json"),
                timeout_s=float(arguments.get("timeout_s") or self._timeout_s),
                max_response_bytes=self._max_bytes,
                follow_redirects=method == "GET",
            )
        except EgressError as exc:
            raise ToolError(str(exc)) from None
        return response_for_model(response, cap=self._max_bytes)
