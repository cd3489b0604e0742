"""Reading an SSE event stream in tests: frames as ``{"id", "event", "data"}``."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import httpx


async def read_sse(
    http: httpx.AsyncClient,
    url: str,
    *,
    last_id: str | None = None,
    after: str | None = None,
    stop_after: int | None = None,
    until: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """The stream's frames up to ``stop_after`` of them or the first event of a type in ``until``.

    ``until=None`` reads until the server ends the stream.
    """
    headers = {"Last-Event-ID": last_id} if last_id else {}
    params = {"after": after} if after else {}
    events: list[dict[str, Any]] = []
    async with http.stream("GET", url, headers=headers, params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        frame: dict[str, Any] = {}
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                frame["id"] = line[4:]
            elif line.startswith("event: "):
                frame["event"] = line[7:]
            elif line.startswith("data: "):
                frame["data"] = json.loads(line[6:])
            elif line == "" and "id" in frame:
                events.append(frame)
                frame = {}
                if len(events) == stop_after or events[-1]["event"] in (until or ()):
                    break
    return events
