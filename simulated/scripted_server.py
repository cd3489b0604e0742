"""A scripted HTTP server on 127.0.0.1 that replays queued replies, plus wire builders.

The server records every request (path, headers, JSON body) and answers each with
the next queued ``Reply``: a JSON body with a status, or a list of SSE frames that
it writes and flushes one by one, as the real APIs stream them. With no reply queued
it asks its ``respond`` function, when it has one (a simulated model).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    events: list[str] = field(default_factory=list)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Received:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # concurrent clients connect without resets


class ScriptedServer:
    """HTTP server in a background thread answering with queued ``Reply`` objects, else with ``respond``."""

    def __init__(self, respond: Callable[[Received], Reply] | None = None) -> None:
        self.respond = respond
        self.replies: deque[Reply] = deque()
        self.received: list[Received] = []
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def push(self, *replies: Reply) -> None:
        """Queue replies for the next requests."""
        self.replies.extend(replies)

    def next_reply(self, received: Received) -> Reply:
        """The next queued reply, else ``respond``'s answer, else a 500."""
        if self.replies:
            return self.replies.popleft()
        if self.respond is not None:
            return self.respond(received)
        return Reply(500, body={"error": "no scripted reply"})

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            headers = {k.lower(): v for k, v in self.headers.items()}
            received = Received(self.path, headers, json.loads(raw))
            server.received.append(received)
            reply = server.next_reply(received)
            if reply.delay_s and server._stopping.wait(reply.delay_s):
                return
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.events:
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.end_headers()
                for frame in reply.events:
                    self.wfile.write(frame.encode())
                    self.wfile.flush()
                return
            payload = json.dumps(reply.body if reply.body is not None else {}).encode()
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the access log."""

        def handle(self) -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up
                super().handle()

    return Handler


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- OpenAI Chat Completions wire -------------------------------------------------------------


def oa_chunk(
    delta: dict[str, Any] | None = None, *, finish: str | None = None, usage: dict[str, int] | None = None
) -> dict[str, Any]:
    """A ``chat.completion.chunk``; no choices when ``delta`` is None (the usage-only last chunk)."""
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": choices,
        "usage": usage,
    }


def oa_tool_delta(index: int, *, id: str | None = None, name: str | None = None, args: str = "") -> dict[str, Any]:
    """A ``delta`` carrying one tool-call fragment."""
    call: dict[str, Any] = {"index": index, "function": {"arguments": args}}
    if id is not None:
        call |= {"id": id, "type": "function"}
        call["function"]["name"] = name
    return {"tool_calls": [call]}


def oa_stream(*chunks: dict[str, Any]) -> Reply:
    """An SSE reply: ``data: {chunk}`` frames, then ``data: [DONE]``."""
    return Reply(events=[f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"])


def oa_completion(content: str, *, model: str, prompt: int, completion: int) -> Reply:
    """A whole (not streamed) ``chat.completion`` with one text answer."""
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }
    return Reply(body=body)


def oa_usage(prompt: int, completion: int) -> dict[str, Any]:
    """The final usage-only chunk."""
    return oa_chunk(
        usage={"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    )


def oa_error(status: int, message: str, *, code: str | None = None, headers: dict[str, str] | None = None) -> Reply:
    """An OpenAI error reply."""
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    return Reply(status, body=body, headers=headers or {})


# --- Anthropic Messages wire ------------------------------------------------------------------


def an_event(kind: str, data: dict[str, Any]) -> str:
    """One SSE frame ``event: kind`` with ``data`` (its ``type`` set to ``kind``)."""
    return f"event: {kind}\ndata: {json.dumps({'type': kind} | data)}\n\n"


def an_start(input_tokens: int = 10) -> list[str]:
    """``message_start`` (and a ``ping``, which clients ignore)."""
    message: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
    }
    return [an_event("message_start", {"message": message}), an_event("ping", {})]


def an_text(index: int, *pieces: str) -> list[str]:
    """A text content block streamed as ``text_delta`` pieces."""
    start = an_event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
    deltas = [
        an_event("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": p}}) for p in pieces
    ]
    return [start, *deltas, an_event("content_block_stop", {"index": index})]


def an_tool(index: int, id: str, name: str, *fragments: str) -> list[str]:
    """A ``tool_use`` block whose input streams as ``input_json_delta`` fragments."""
    block = {"type": "tool_use", "id": id, "name": name, "input": {}}
    start = an_event("content_block_start", {"index": index, "content_block": block})
    deltas = [
        an_event("content_block_delta", {"index": index, "delta": {"type": "input_json_delta", "partial_json": f}})
        for f in fragments
    ]
    return [start, *deltas, an_event("content_block_stop", {"index": index})]


def an_end(stop_reason: str, output_tokens: int, **delta: Any) -> list[str]:
    """``message_delta`` (stop reason, cumulative output tokens) and ``message_stop``."""
    body = {
        "delta": {"stop_reason": stop_reason, "stop_sequence": None} | delta,
        "usage": {"output_tokens": output_tokens},
    }
    return [an_event("message_delta", body), an_event("message_stop", {})]


def an_stream(*frames: list[str]) -> Reply:
    """An SSE reply made of frame groups."""
    return Reply(events=[f for group in frames for f in group])


def an_error(status: int, kind: str, message: str, *, headers: dict[str, str] | None = None) -> Reply:
    """An Anthropic error reply."""
    return Reply(status, body={"type": "error", "error": {"type": kind, "message": message}}, headers=headers or {})
