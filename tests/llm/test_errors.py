"""Error classification helpers shared by the HTTP providers."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from core.llm.errors import (
    connection_error,
    parse_tool_arguments,
    redact,
    retry_after_seconds,
    status_error,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_retry_after_seconds_and_http_date() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "0.5"}) == 0.5
    later = format_datetime(NOW.replace(second=30), usegmt=True)
    assert retry_after_seconds({"retry-after": later}, now=NOW.timestamp()) == 30.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "-4"}) == 0.0


def test_retry_after_ms_is_preferred() -> None:
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        *[(400, False), (401, False), (403, False), (404, False), (413, False), (422, False)],
        *[(408, True), (409, True), (429, True), (500, True), (502, True), (503, True), (529, True)],
    ],
)
def test_status_classification(status: int, retryable: bool) -> None:
    error = status_error("openai", status, body={"message": "x"}, headers={"retry-after": "2"})
    assert (error.retryable, error.status) == (retryable, status)
    assert error.retry_after_s == (2.0 if retryable else None)
    assert f"HTTP {status}" in str(error)


def test_content_policy_and_insufficient_quota_are_not_retryable() -> None:
    assert not status_error("openai", 400, body={"code": "content_policy_violation"}).retryable
    quota = status_error("openai", 429, body={"message": "You exceeded your quota", "code": "insufficient_quota"})
    assert not quota.retryable
    assert "quota" in str(quota)


def test_redacts_keys() -> None:
    assert redact("key my-secret-key here", ["my-secret-key"]) == "key *** here"
    assert "abcdef123456" not in redact("Incorrect API key provided: sk-proj-abcdef123456")
    assert "abcdef123456" not in redact("bad sk-ant-api03-abcdef123456")


def test_connection_error_names_host_but_not_credentials() -> None:
    error = connection_error("openai", "https://user:pw@example.com:8443/v1?key=k", timed_out=False)
    assert str(error) == "openai connection failed (https://example.com:8443)"
    assert error.retryable


def test_parse_tool_arguments() -> None:
    assert parse_tool_arguments('{"a": 1}') == {"a": 1}
    assert parse_tool_arguments("  ") == {}
    assert parse_tool_arguments("{bad") == {"__invalid_json__": "{bad"}
    assert parse_tool_arguments("[1, 2]") == {"__invalid_json__": "[1, 2]"}
