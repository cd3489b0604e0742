"""Pieces the sync and async clients share: request details that involve no I/O."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

USER_AGENT = "aimpact-client/0.1"
TIMEOUT = httpx.Timeout(30.0)
STREAM_TIMEOUT = httpx.Timeout(30.0, read=90.0)
"""An event stream gets a keep-alive every 15 s by default: a read that waits longer means a dead connection."""
MAX_WAIT_S = 60.0
"""The longest ``wait_s`` the API takes in one long-poll."""
STREAM_RECONNECTS = 5
"""How many times in a row an event stream reconnects (with ``Last-Event-ID``) after the connection broke."""
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


def poll_intervals() -> Iterator[float]:
    """Pauses between reads of a resource that has no long-poll: short at first, then a second each."""
    return itertools.chain((0.1, 0.2, 0.5), itertools.repeat(1.0))


def seg(value: str) -> str:
    """``value`` as one path segment (an id with a ``/`` or ``?`` stays one segment)."""
    return quote(value, safe="")


def params(**values: Any) -> dict[str, Any]:
    """Query parameters without the ones that are ``None``."""
    return {key: value for key, value in values.items() if value is not None}


def body(**values: Any) -> dict[str, Any]:
    """A JSON body without the fields that are ``None`` (the API's defaults apply)."""
    return {key: value for key, value in values.items() if value is not None}


def bearer(token: str | None, headers: dict[str, str] | None = None) -> dict[str, str]:
    """``headers`` with the ``Authorization`` header of ``token``."""
    merged = dict(headers or {})
    if token:
        merged["Authorization"] = f"Bearer {token}"
    return merged
