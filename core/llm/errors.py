"""Classify SDK failures into ``ProviderError`` (shared by the HTTP providers).

Retryable: timeouts, connection errors, HTTP 408, 409, 429 and 5xx (incl. 529
"overloaded"). Not retryable: every other 4xx (400, 401, 403, 404, 413, 422 …)
and content-policy refusals. Messages name the provider and the status and
never contain the API key. Also: tolerant parsing of tool-call arguments.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from core.llm.base import ProviderError

RETRYABLE_STATUSES = frozenset({408, 409, 429})
"""4xx statuses worth retrying; every 5xx is retried too."""

ERROR_TYPE_STATUS: Mapping[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "api_error": 500,
    "server_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
"""HTTP status implied by an error ``type``/``code`` sent inside an SSE stream (status 200)."""

CONTENT_POLICY_CODES = frozenset({"content_policy_violation", "content_filter"})

_MAX_DETAIL = 300
_KEY_LIKE = re.compile(r"\b(sk-(?:ant-)?)[A-Za-z0-9_\-]{6,}")


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status is transient (408, 409, 429, 5xx)."""
    return status in RETRYABLE_STATUSES or status >= 500


def implied_status(*codes: str | None) -> int:
    """The status implied by the first known error code/type (500 when none is known)."""
    for code in codes:
        if code and code in ERROR_TYPE_STATUS:
            return ERROR_TYPE_STATUS[code]
    return 500


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with each secret and anything shaped like an API key replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _KEY_LIKE.sub(r"\1***", text)


def retry_after_seconds(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date).

    Args:
        headers: Response headers (a case-insensitive mapping such as ``httpx.Headers``, or lower-case keys).
        now: The current UNIX time (for tests); defaults to ``time.time()``.

    Returns:
        A non-negative number of seconds, or ``None`` when absent or unparsable.
    """
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def api_message(body: object) -> str:
    """The human-readable message in an error body (``{"error": {"message": ...}}`` or ``{"message": ...}``)."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(body.get("message"), str):
            return str(body["message"])
    if isinstance(body, str):
        return body
    return ""


def error_code(body: object) -> str | None:
    """The ``code`` (or else ``type``) of an error body, at the top level or under ``error``."""
    if not isinstance(body, Mapping):
        return None
    inner = body.get("error")
    scopes: list[Mapping[str, Any]] = [inner, body] if isinstance(inner, Mapping) else [body]
    for key in ("code", "type"):
        for scope in scopes:
            value = scope.get(key)
            if isinstance(value, str) and value != "error":
                return value
    return None


def status_error(
    provider: str,
    status: int,
    *,
    body: object = None,
    headers: Mapping[str, str] | None = None,
    secrets: Iterable[str | None] = (),
) -> ProviderError:
    """A ``ProviderError`` for an HTTP error status (or an error event carrying an implied status).

    Args:
        provider: Provider name, used in the message.
        status: HTTP status (for an in-stream error, derived from its type with ``ERROR_TYPE_STATUS``).
        body: The decoded error body, for the API's message and code.
        headers: Response headers, for ``Retry-After``.
        secrets: Values to redact from the message (the API key).
    """
    code = error_code(body)
    detail = redact(api_message(body), secrets)[:_MAX_DETAIL]
    retryable = is_retryable_status(status)
    if code in CONTENT_POLICY_CODES:
        retryable = False
        what = "refused the request (content policy)"
    elif code == "insufficient_quota":
        retryable = False
        what = "rejected the request: quota exhausted (billing)"
    else:
        what = f"returned HTTP {status}"
    message = f"{provider} {what}" + (f": {detail}" if detail else "") + (f" [{code}]" if code else "")
    return ProviderError(
        message,
        provider=provider,
        retryable=retryable,
        status=status,
        retry_after_s=retry_after_seconds(headers) if retryable else None,
    )


def connection_error(provider: str, base_url: str, *, timed_out: bool) -> ProviderError:
    """A retryable ``ProviderError`` for a timeout or a failed connection to ``base_url``."""
    parts = urlsplit(base_url)
    where = f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    what = "timed out" if timed_out else "connection failed"
    return ProviderError(f"{provider} {what} ({where})", provider=provider, retryable=True)


def refusal_error(provider: str, detail: str) -> ProviderError:
    """A non-retryable ``ProviderError`` for a model's content refusal."""
    message = f"{provider} refused the request (content policy)" + (f": {detail[:_MAX_DETAIL]}" if detail else "")
    return ProviderError(message, provider=provider, retryable=False)


def malformed_error(provider: str, detail: str) -> ProviderError:
    """A non-retryable ``ProviderError`` for an answer that does not follow the protocol."""
    return ProviderError(f"{provider} sent a malformed answer: {detail}", provider=provider, retryable=False)


INVALID_JSON_KEY = "__invalid_json__"
"""Key of the ``arguments`` given to a tool call whose JSON arguments could not be parsed."""


def parse_tool_arguments(raw: str) -> dict[str, Any]:
    """Decode a tool call's JSON arguments without raising.

    Empty text decodes to ``{}``. Text that is not JSON, or JSON that is not an
    object, becomes ``{"__invalid_json__": raw}`` so the agent loop can send the
    error back to the model instead of failing the run.
    """
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {INVALID_JSON_KEY: raw}
    return value if isinstance(value, dict) else {INVALID_JSON_KEY: raw}
