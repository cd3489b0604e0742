"""Hostile HTTP: oversized or slow bodies, huge or malformed request lines and headers, redirects.

Raw sockets on loopback against the shared stack (its default limits), so nothing a client
library would normalise gets in the way. Every refusal is problem+json, including the ones the
HTTP layer gives before the app runs (api/server.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from core.settings import Settings
from tests.conftest import TenantCtx
from tests.support.users import login
from workers.embedded.stack import StackProcess

PROBLEM = "application/problem+json"


def _default(name: str) -> Any:
    return Settings.model_fields[name].default


MAX_BODY: int = _default("max_body_bytes")
BODY_TIMEOUT_S: float = _default("body_read_timeout_s")
HEADER_TIMEOUT_S: float = _default("header_read_timeout_s")
MAX_URL: int = _default("max_url_bytes")
MAX_HEADERS: int = _default("max_header_bytes")


@dataclass
class Answer:
    """A raw HTTP response and how long it took to come."""

    status: int
    headers: dict[str, str]
    body: bytes
    elapsed_s: float

    def problem(self) -> dict[str, Any]:
        """The problem document (asserting its media type and shape)."""
        assert self.headers.get("content-type", "").startswith(PROBLEM), (self.status, self.headers, self.body[:200])
        document: dict[str, Any] = json.loads(self.body)
        assert document["status"] == self.status
        assert {"type", "title", "detail"} <= document.keys()
        return document


async def exchange(stack: StackProcess, *parts: bytes, wait_s: float = 10) -> Answer:
    """Send ``parts`` on a fresh connection (stopping if the server hangs up), then read until it closes."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.ports["API"])
    try:
        for part in parts:
            writer.write(part)
            await writer.drain()
    except ConnectionError:
        pass  # refused mid-body: the answer is already on its way
    raw = b""
    try:
        async with asyncio.timeout(wait_s):
            while chunk := await reader.read(65536):
                raw += chunk
    except ConnectionError:
        pass  # reset after the answer: keep what arrived
    except TimeoutError:
        raise AssertionError(f"no answer within {wait_s} s; got {raw[:200]!r}") from None
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), raw[:200]
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return Answer(int(lines[0].split()[1]), headers, body, time.monotonic() - started)


def _post_head(bearer: str, path: str, framing: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {bearer}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    ).encode()


async def test_declared_body_over_the_limit_is_413_before_it_is_read(stack: StackProcess, tenant: TenantCtx) -> None:
    head = _post_head(tenant.key, "/v1/agents", f"Content-Length: {MAX_BODY + 1}")
    answer = await exchange(stack, head, b'{"name": "' + b"x" * 1000)
    assert answer.status == 413
    assert "larger than" in answer.problem()["detail"]
    assert answer.headers["connection"] == "close"

    under = {"input": "x" * (MAX_BODY - 1000)}  # under the body limit: reaches validation (input is too long)
    response = await tenant.http.post("/v1/agents/agt_nope/runs", json=under)
    assert response.status_code == 422, response.text[:300]


async def test_chunked_body_over_the_limit_is_413_while_it_streams(stack: StackProcess, tenant: TenantCtx) -> None:
    chunk = b"x" * 65536
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    chunks = [framed] * (MAX_BODY // len(chunk) + 2)  # never terminated: only counting can stop it
    answer = await exchange(stack, _post_head(tenant.key, "/v1/agents", "Transfer-Encoding: chunked"), *chunks)
    assert answer.status == 413
    answer.problem()

    admin = (await login(stack, "admin@aimpact.local", stack.admin_password)).json()["access_token"]
    codec = await exchange(stack, _post_head(admin, "/codec/decode", "Transfer-Encoding: chunked"), *chunks)
    assert codec.status == 413, codec.body[:200]
    codec.problem()


async def test_slow_bodies_and_headers_are_cut_off_with_408(stack: StackProcess, tenant: TenantCtx) -> None:
    short_body = exchange(
        stack,
        _post_head(tenant.key, "/v1/agents", "Content-Length: 100"),
        b'{"name": "ab"',  # 13 of the 100 bytes, then nothing
        wait_s=BODY_TIMEOUT_S + 5,
    )
    slow_headers = exchange(
        stack, b"GET /v1/agents HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n", wait_s=HEADER_TIMEOUT_S + 5
    )
    body_answer, header_answer = await asyncio.gather(short_body, slow_headers)
    for answer, timeout_s in ((body_answer, BODY_TIMEOUT_S), (header_answer, HEADER_TIMEOUT_S)):
        assert answer.status == 408, answer
        answer.problem()
        assert timeout_s - 1 <= answer.elapsed_s <= timeout_s + 5
    assert "body" in body_answer.problem()["detail"]
    assert "headers" in header_answer.problem()["detail"]


async def test_malformed_and_oversized_request_heads_answer_problem_json(stack: StackProcess) -> None:
    host = b"Host: 127.0.0.1\r\n"
    many = b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS // 8))
    cases = {
        "space in the path": (b"GET /v1/agents/a b HTTP/1.1\r\n" + host + b"\r\n", 400),
        "NUL in a header": (b"GET /healthz HTTP/1.1\r\n" + host + b"X-Evil: a\x00b\r\n\r\n", 400),
        "control character in the path": (b"GET /v1/a\x01b HTTP/1.1\r\n" + host + b"\r\n", 400),
        "long URL": (b"GET /v1/agents?q=" + b"a" * MAX_URL + b" HTTP/1.1\r\n" + host + b"\r\n", 414),
        "URL over 64 KiB": (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n" + host + b"\r\n", 414),
        "huge header": (b"GET /healthz HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * MAX_HEADERS + b"\r\n\r\n", 431),
        "many headers": (b"GET /healthz HTTP/1.1\r\n" + host + many + b"\r\n", 431),
    }
    for name, (request, status) in cases.items():
        answer = await exchange(stack, request)
        assert answer.status == status, (name, answer)
        answer.problem()
    fine = await exchange(stack, b"GET /healthz?q=" + b"a" * (MAX_URL // 2) + b" HTTP/1.1\r\n" + host + b"\r\n")
    assert fine.status == 200


async def test_no_redirect_is_built_from_the_host_header(stack: StackProcess, tenant: TenantCtx) -> None:
    evil = {"Host": "evil.example"}
    for path in ("/v1/runs/run_x%2F", "/v1/agents/", "/v1/agents/agt_x/", "/v1/secrets/a%2F"):
        response = await tenant.http.get(path, headers=evil)
        assert response.status_code == 404, (path, response.status_code, response.headers)
        assert "location" not in response.headers
        assert response.headers["content-type"].startswith(PROBLEM)
    assert (await tenant.http.get("/v1/agents")).status_code == 200
    async with httpx.AsyncClient(base_url=stack.api_url) as anonymous:
        assert (await anonymous.get("/healthz/")).status_code == 404
