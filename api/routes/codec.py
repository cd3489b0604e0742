"""Temporal codec server: ``POST /codec/encode`` and ``POST /codec/decode``.

Implements the codec-server protocol the Temporal UI and CLI speak: the body is
a ``temporal.api.common.v1.Payloads`` message in protobuf JSON form,
``{"payloads": [{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}]}``,
and the answer has the same shape after the codec ran. Point the UI at
``<api url>/codec`` (``TEMPORAL_CODEC_ENDPOINT``) and the CLI at
``--codec-endpoint <api url>/codec``.

CORS: the Temporal UI calls these routes from the browser, on another origin
than the API, and with credentials (``TEMPORAL_CODEC_PASS_ACCESS_TOKEN`` sends
``Authorization: Bearer``; ``TEMPORAL_CODEC_INCLUDE_CREDENTIALS`` sends cookies).
This module adds no middleware. The app must add ``CORSMiddleware`` with
``allow_origins`` set to the UI's exact origin(s) (never ``"*"``, which browsers
refuse with credentials), ``allow_credentials=True``, ``allow_methods=["POST"]``
and ``allow_headers=["authorization", "content-type", "x-namespace"]``. The
middleware answers the ``OPTIONS`` preflight before routing, so ``authorize``
never sees it.

Errors are problem+json: malformed JSON, shape or base64 answer 422
``validation-error`` naming each field (``payloads[0].data``); a payload that
cannot be decrypted answers 422 ``decryption-failed``.
"""

# No ``from __future__ import annotations``: the route signatures refer to the
# factory's arguments, which FastAPI could not resolve from string annotations.

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from api.problem_types import ProblemType, problems
from api.problems import ProblemError
from core.crypto import DecryptionError, decode_base64

__all__ = ["codec_router"]

_MAX_ERRORS = 20

_PAYLOADS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "payloads": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "metadata": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}},
                    "data": {"type": "string", "format": "byte"},
                },
            },
        }
    },
    "example": {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "eyJhIjogMX0="}]},
}
_OPENAPI: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": _PAYLOADS_SCHEMA}}},
    "responses": {"200": {"content": {"application/json": {"schema": _PAYLOADS_SCHEMA}}}},
}


def codec_router(get_codec: Callable[..., PayloadCodec], authorize: Callable[..., Any]) -> APIRouter:
    """Build the codec-server routes.

    Args:
        get_codec: FastAPI dependency returning the codec to apply. It may
            declare its own parameters, e.g. the ``X-Namespace`` header the UI
            and CLI send, to choose a codec per namespace.
        authorize: FastAPI dependency run before the body is read on both
            routes; it raises (401/403) to refuse the caller.

    Returns:
        A router with prefix ``/codec``.
    """
    router = APIRouter(prefix="/codec", tags=["codec"], dependencies=[Depends(authorize)])

    @router.post("/encode", openapi_extra=_OPENAPI, response_class=JSONResponse, responses=problems(422))
    async def encode(request: Request, codec: Annotated[PayloadCodec, Depends(get_codec)]) -> JSONResponse:
        """Encode (encrypt) payloads."""
        payloads = _parse(await request.body())
        return _answer(await codec.encode(payloads) if payloads else [])

    @router.post("/decode", openapi_extra=_OPENAPI, response_class=JSONResponse, responses=problems(422))
    async def decode(request: Request, codec: Annotated[PayloadCodec, Depends(get_codec)]) -> JSONResponse:
        """Decode (decrypt) payloads; payloads the codec did not encode come back unchanged."""
        payloads = _parse(await request.body())
        try:
            return _answer(await codec.decode(payloads) if payloads else [])
        except DecryptionError as exc:
            raise ProblemError(
                422,
                f"a payload cannot be decrypted: {exc}",
                slug=ProblemType.DECRYPTION_FAILED,
                errors=[{"field": "payloads", "message": str(exc)}],
            ) from None

    return router


def _invalid(errors: list[dict[str, str]]) -> ProblemError:
    shown = errors[:_MAX_ERRORS]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in shown[:5])
    return ProblemError(422, f"invalid payloads — {detail}", slug=ProblemType.VALIDATION_ERROR, errors=shown)


def _check_base64(value: Any, field: str, errors: list[dict[str, str]]) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        errors.append({"field": field, "message": "must be a base64 string"})
        return
    try:
        decode_base64(value)
    except ValueError as exc:
        errors.append({"field": field, "message": str(exc)})


def _parse(body: bytes) -> list[Payload]:
    """Payloads from protobuf JSON, with every malformed field named."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _invalid([{"field": "body", "message": f"not valid JSON ({exc})"}]) from None
    if not isinstance(document, dict):
        raise _invalid([{"field": "body", "message": 'must be an object {"payloads": [...]}'}])
    items = document.get("payloads")
    if items is None:
        return []
    if not isinstance(items, list):
        raise _invalid([{"field": "payloads", "message": "must be an array"}])
    errors: list[dict[str, str]] = []
    for index, item in enumerate(items):
        where = f"payloads[{index}]"
        if not isinstance(item, dict):
            errors.append({"field": where, "message": "must be an object"})
            continue
        metadata = item.get("metadata")
        if isinstance(metadata, dict):
            for key, value in metadata.items():
                _check_base64(value, f"{where}.metadata.{key}", errors)
        elif metadata is not None:
            errors.append({"field": f"{where}.metadata", "message": "must be an object of base64 strings"})
        _check_base64(item.get("data"), f"{where}.data", errors)
    if errors:
        raise _invalid(errors)
    try:
        message = json_format.ParseDict(document, Payloads(), ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise _invalid([{"field": "payloads", "message": str(exc)}]) from None
    return list(message.payloads)


def _answer(payloads: list[Payload]) -> JSONResponse:
    body = json_format.MessageToDict(Payloads(payloads=payloads))
    body.setdefault("payloads", [])
    return JSONResponse(body)
