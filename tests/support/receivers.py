"""``Receiver``: a tiny HTTP/1.1 server on 127.0.0.1 that records what it gets (tools, webhooks, egress tests)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus


@dataclass
class Seen:
    """One request the receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    """What the receiver answers."""

    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


Handler = Callable[[Seen], Reply | Awaitable[Reply]]


class Receiver:
    """An HTTP/1.1 server on 127.0.0.1 that records requests and answers from a script or a handler."""

    def __init__(
        self,
        replies: list[Reply] | None = None,
        handler: Handler | None = None,
        tls: ssl.SSLContext | None = None,
    ):
        self.replies = list(replies or [])
        self.handler = handler
        self.tls = tls
        self.seen: list[Seen] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        """URL of ``path`` on this receiver."""
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    async def _reply_for(self, seen: Seen) -> Reply:
        if self.handler is not None:
            reply = self.handler(seen)
            return await reply if not isinstance(reply, Reply) else reply
        if self.replies:
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return Reply()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            seen = Seen(method, path, headers, body)
            self.seen.append(seen)
            reply = await self._reply_for(seen)
            if reply.delay_s:
                await asyncio.sleep(reply.delay_s)
            extra = "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
            phrase = HTTPStatus(reply.status).phrase
            writer.write(
                f"HTTP/1.1 {reply.status} {phrase}\r\nContent-Length: {len(reply.body)}\r\n"
                f"Connection: close\r\n{extra}\r\n".encode("latin-1")
                + reply.body
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()
