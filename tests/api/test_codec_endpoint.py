"""The codec-server routes on a small app of their own (no stack, real AES-GCM)."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import DataConverter, PayloadCodec

from api.problems import ProblemError, install_problem_handlers
from api.routes.codec import codec_router
from core.codec import EncryptionCodec
from core.crypto import KEY_BYTES, Keyring

PROBLEM = "application/problem+json"
CANARY = "canary-5d0c2e9a"
TOKEN = "codec-test-token"
CODEC = EncryptionCodec(Keyring({"k1": os.urandom(KEY_BYTES)}, active="k1"))


def _app(calls: list[str]) -> FastAPI:
    def get_codec() -> PayloadCodec:
        return CODEC

    async def authorize(request: Request) -> None:
        calls.append(request.url.path)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            raise ProblemError(403, "codec access denied", slug="forbidden")

    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(codec_router(get_codec, authorize))
    return app


@pytest.fixture
def calls() -> list[str]:
    """Paths the authorize dependency saw."""
    return []


@pytest.fixture
async def http(calls: list[str]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the codec app, authorized."""
    transport = httpx.ASGITransport(app=_app(calls))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://codec.test", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        yield client


def _body(values: list[Any]) -> dict[str, Any]:
    payloads = DataConverter.default.payload_converter.to_payloads(values)
    return json_format.MessageToDict(Payloads(payloads=payloads))


def _payloads(body: dict[str, Any]) -> list[Payload]:
    return list(json_format.ParseDict(body, Payloads()).payloads)


def _fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"].startswith(PROBLEM), response.text
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == response.status_code
    return [e["field"] for e in body.get("errors", [])]


async def test_encode_then_decode_returns_the_original(http: httpx.AsyncClient, calls: list[str]) -> None:
    original = _body([{"prompt": CANARY}, f"text {CANARY}", CANARY.encode(), None])
    encoded = await http.post("/codec/encode", json=original)
    assert encoded.status_code == 200, encoded.text
    assert encoded.headers["content-type"] == "application/json"
    assert CANARY not in encoded.text
    assert base64.b64encode(CANARY.encode()).decode() not in encoded.text
    assert all(
        p["metadata"]["encoding"] == base64.b64encode(b"binary/encrypted").decode() for p in encoded.json()["payloads"]
    )

    decoded = await http.post("/codec/decode", json=encoded.json())
    assert decoded.status_code == 200, decoded.text
    assert _payloads(decoded.json()) == _payloads(original)
    assert calls == ["/codec/encode", "/codec/decode"]


async def test_decode_passes_unencrypted_payloads_through(http: httpx.AsyncClient) -> None:
    plain = _body(["already plain"])
    encrypted = (await http.post("/codec/encode", json=_body([CANARY]))).json()
    mixed = {"payloads": plain["payloads"] + encrypted["payloads"]}
    decoded = await http.post("/codec/decode", json=mixed)
    assert decoded.status_code == 200, decoded.text
    assert _payloads(decoded.json()) == _payloads(_body(["already plain", CANARY]))


async def test_same_answer_as_the_codec_in_process(http: httpx.AsyncClient) -> None:
    """What the UI decodes over HTTP is what a worker's codec produced."""
    encoded = await CODEC.encode(DataConverter.default.payload_converter.to_payloads([CANARY]))
    response = await http.post("/codec/decode", json=json_format.MessageToDict(Payloads(payloads=encoded)))
    assert DataConverter.default.payload_converter.from_payloads(_payloads(response.json()), [str]) == [CANARY]


@pytest.mark.parametrize("body", [{}, {"payloads": []}])
async def test_empty_payloads(http: httpx.AsyncClient, body: dict[str, Any]) -> None:
    for route in ("/codec/encode", "/codec/decode"):
        response = await http.post(route, json=body)
        assert response.status_code == 200
        assert response.json() == {"payloads": []}


async def test_bad_base64_names_the_field(http: httpx.AsyncClient) -> None:
    body = _body(["ok", "also ok"])
    body["payloads"][1]["data"] = "not*base64!"
    body["payloads"][0]["metadata"]["encoding"] = "@@@@"
    for route in ("/codec/encode", "/codec/decode"):
        response = await http.post(route, json=body)
        assert response.status_code == 422
        assert _fields(response) == ["payloads[0].metadata.encoding", "payloads[1].data"]
        problem = response.json()
        assert problem["type"].endswith("/validation-error")
        assert "payloads[1].data" in problem["detail"]
        assert "not valid base64" in problem["errors"][1]["message"]


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"{not json", "body"),
        (b"\xff\xfe", "body"),
        (b"[1, 2]", "body"),
        (b'{"payloads": {"data": "YQ=="}}', "payloads"),
        (b'{"payloads": ["YQ=="]}', "payloads[0]"),
        (b'{"payloads": [{"metadata": "YQ=="}]}', "payloads[0].metadata"),
        (b'{"payloads": [{"data": 5}]}', "payloads[0].data"),
        (b'{"payloads": [{"data": "YQ==", "externalPayloads": 3}]}', "payloads"),
    ],
)
async def test_malformed_bodies_are_422(http: httpx.AsyncClient, content: bytes, field: str) -> None:
    response = await http.post("/codec/decode", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert _fields(response) == [field]


async def test_undecryptable_payload_is_422(http: httpx.AsyncClient) -> None:
    encoded = (await http.post("/codec/encode", json=_body([CANARY]))).json()
    data = bytearray(base64.b64decode(encoded["payloads"][0]["data"]))
    data[-1] ^= 0x01
    encoded["payloads"][0]["data"] = base64.b64encode(bytes(data)).decode()
    response = await http.post("/codec/decode", json=encoded)
    assert response.status_code == 422
    assert _fields(response) == ["payloads"]
    assert response.json()["type"].endswith("/decryption-failed")
    assert "payload 0: authentication failed" in response.json()["detail"]


async def test_authorize_blocks_both_routes(http: httpx.AsyncClient, calls: list[str]) -> None:
    body = _body([CANARY])
    for route in ("/codec/encode", "/codec/decode"):
        denied = await http.post(route, json=body, headers={"Authorization": "Bearer wrong"})
        assert denied.status_code == 403
        _fields(denied)
        assert CANARY not in denied.text
        # Refused before the body is looked at: even a malformed body gets 403, not 422.
        assert (await http.post(route, content=b"{nope", headers={"Authorization": "Bearer wrong"})).status_code == 403
    assert calls == ["/codec/encode", "/codec/encode", "/codec/decode", "/codec/decode"]


async def test_routes_are_post_only(http: httpx.AsyncClient) -> None:
    assert (await http.get("/codec/decode")).status_code == 405
