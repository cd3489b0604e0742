"""The HTTP/1.1 protocol ``aimpact api`` serves with: request-line and header limits, answered as problem+json.

uvicorn parses each request (httptools) before the app sees it and answers what it cannot
parse with a plain-text 400; it bounds neither the size of the headers nor the time they
take. This subclass of its httptools protocol, passed as ``uvicorn.run(http=...)``:

- answers every request the parser refuses with problem+json: 400 for a malformed request
  line (a space in the path) or header (NUL or another control character in a value);
- refuses a request target longer than ``max_url_bytes`` (414) and headers larger than
  ``max_header_bytes`` in total (431) as they arrive, so neither is ever buffered whole;
- gives the request line and headers ``header_timeout_s`` to arrive, counted from the
  connection (or from the first byte after a keep-alive pause): 408, or a silent close
  when nothing was sent.
"""

from __future__ import annotations

import asyncio
import json
import socket
from http import HTTPStatus
from typing import Any, ClassVar, NoReturn

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.problem_types import MEDIA_TYPE
from api.problems import problem_document
from core.settings import Settings


class _RefusedError(Exception):
    """Stops the parser; uvicorn then answers through ``send_400_response``."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with request-line and header limits (see the module docstring)."""

    max_url_bytes: ClassVar[int] = 32 * 1024
    max_header_bytes: ClassVar[int] = 32 * 1024
    header_timeout_s: ClassVar[float] = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_bytes = 0
        self._in_headers = False
        self._refusal: tuple[int, str] | None = None
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._in_headers = True
        self._refusal = None
        if self._header_timer is None:
            self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > self.max_url_bytes:
            self._refuse(414, f"the request target is longer than {self.max_url_bytes} bytes")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self.max_header_bytes:
            self._refuse(431, f"the request headers are larger than {self.max_header_bytes} bytes")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._cancel_header_timer()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        """Answer a request the parser refused, as problem+json."""
        status, detail = self._refusal or (400, "the request is not valid HTTP/1.1 (request line or headers)")
        self._answer_and_close(status, detail)

    def _refuse(self, status: int, detail: str) -> NoReturn:
        self._refusal = (status, detail)
        raise _RefusedError(detail)

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        responding = self.cycle is not None and not self.cycle.response_complete
        if not self._in_headers or responding:
            self.transport.close()  # an idle connection, or a pipelined request behind a response in flight
            return
        self._answer_and_close(408, f"the request headers did not arrive within {self.header_timeout_s:g} s")

    def _answer_and_close(self, status: int, detail: str) -> None:
        if self.transport.is_closing():
            return
        body = json.dumps(problem_document(status, detail), separators=(",", ":")).encode()
        head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode()]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head.append(f"content-type: {MEDIA_TYPE}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n".encode())
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def http_protocol(settings: Settings) -> type[LimitedHttpToolsProtocol]:
    """The protocol class for ``uvicorn.run(http=...)`` with the request limits of ``settings``."""

    class Configured(LimitedHttpToolsProtocol):
        max_url_bytes = settings.max_url_bytes
        max_header_bytes = settings.max_header_bytes
        header_timeout_s = settings.header_read_timeout_s

    return Configured


def listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """The API's socket, bound to ``host:port`` but not yet listening (uvicorn listens once the app has started).

    With ``reuse_port`` (``SO_REUSEPORT``) several ``aimpact api`` processes share the port and
    the kernel spreads new connections over them; without it a port already in use is an error.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
