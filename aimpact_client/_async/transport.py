"""HTTP for the asynchronous client: credentials, token refresh, problems as errors, pages and event streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, TypeVar, cast

import httpx

from aimpact_client._common import STREAM_RECONNECTS, STREAM_TIMEOUT, TIMEOUT, USER_AGENT, bearer
from aimpact_client.config import Credentials
from aimpact_client.errors import ApiError
from aimpact_client.sse import RUN_CLOSED, Event, SSEDecoder
from aimpact_client.types import Page, TokenPair

T = TypeVar("T")


class AsyncTransport:
    """Sends requests with the credentials' bearer token; a sign-in's token is refreshed when it expires."""

    def __init__(self, credentials: Credentials, *, timeout: httpx.Timeout | float = TIMEOUT) -> None:
        self.credentials = credentials
        self._http = httpx.AsyncClient(base_url=credentials.url, timeout=timeout, headers={"User-Agent": USER_AGENT})
        self._refreshing = asyncio.Lock()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def call(self, kind: type[T], method: str, path: str, **kwargs: Any) -> T:
        """The decoded JSON answer of a request (``kind`` types it)."""
        response = await self.send(method, path, **kwargs)
        return cast(T, response.json())

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        http_timeout: httpx.Timeout | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """The response to a request; :class:`ApiError` unless it is 2xx. A ``stream`` response is not read."""
        if self.credentials.expiring():
            await self._refresh(self.credentials.token)
        token = self.credentials.token
        request = (method, path, params, json, headers, http_timeout or self._http.timeout, stream)
        response = await self._send_once(*request)
        if response.status_code == 401 and await self._refresh(token):
            await response.aclose()
            response = await self._send_once(*request)
        if not response.is_success:
            await response.aread()
            await response.aclose()
            raise ApiError.from_response(response)
        return response

    async def _send_once(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        json: Any,
        headers: dict[str, str] | None,
        http_timeout: httpx.Timeout,
        stream: bool,
    ) -> httpx.Response:
        request = self._http.build_request(
            method,
            path,
            params=params,
            json=json,
            headers=bearer(self.credentials.token, headers),
            timeout=http_timeout,
        )
        return await self._http.send(request, stream=stream)

    async def _refresh(self, used: str | None) -> bool:
        """Rotate a sign-in's tokens (once, however many requests saw ``used`` expire); whether it worked."""
        async with self._refreshing:
            creds = self.credentials
            if creds.refresh_token is None:
                return False
            if creds.token != used:
                return True  # another request refreshed it meanwhile
            response = await self._http.post("/v1/auth/refresh", json={"refresh_token": creds.refresh_token})
            if not response.is_success:
                return False
            pair = cast(TokenPair, response.json())
            creds.rotate(pair["access_token"], pair["refresh_token"])
            return True

    async def pages(self, kind: type[T], path: str, params: dict[str, Any], page_size: int) -> AsyncIterator[T]:
        """Every item of a paginated list, a page (of ``page_size``, at most 200) at a time."""
        cursor: str | None = None
        while True:
            page = await self.call(Page[Any], "GET", path, params=params | {"limit": page_size, "cursor": cursor})
            for item in page["items"]:
                yield cast(T, item)
            cursor = page["next_cursor"]
            if not cursor:
                return

    async def events(self, path: str, *, after: str | None = None) -> AsyncGenerator[Event, None]:
        """The events of an event stream from after ``after``, up to ``run.closed`` or the server's end of it.

        A connection that breaks is resumed with ``Last-Event-ID`` (the stream's ``retry:`` delay
        apart), up to ``STREAM_RECONNECTS`` times in a row; no event is repeated or lost.
        """
        resume, broken, opened = after, 0, False
        while True:
            decoder = SSEDecoder(last_id=resume)
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            if resume:
                headers["Last-Event-ID"] = resume
            try:
                response = await self.send("GET", path, headers=headers, http_timeout=STREAM_TIMEOUT, stream=True)
                opened = True
                try:
                    async for line in response.aiter_lines():
                        event = decoder.feed(line)
                        if event is None:
                            continue
                        resume, broken = event.id or resume, 0
                        yield event
                        if event.event == RUN_CLOSED:
                            return
                finally:
                    await response.aclose()
                return
            except httpx.TransportError:
                broken += 1
                if not opened or broken > STREAM_RECONNECTS:  # a server never reached is not retried
                    raise
                await asyncio.sleep(decoder.retry_s)
