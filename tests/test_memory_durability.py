"""An embedder that is down: the write is stored, answered 202, and embedded once the embedder is back.

A second stack runs with the ``openai`` embedder pointed at a port where nothing
listens; later a local server speaking the OpenAI ``/v1/embeddings`` protocol
comes up on that port (its vectors come from the hash embedder).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.memory.embedders import HashEmbedder
from workers.embedded.ports import free_port
from workers.embedded.stack import StackProcess

EMBEDDER_PORT = free_port()


class EmbeddingsServer:
    """``POST /v1/embeddings`` in the OpenAI wire format; records the request bodies."""

    def __init__(self, port: int):
        self.requests: list[dict[str, Any]] = []
        embedder = HashEmbedder()
        requests = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                requests.append(body)
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                data = [
                    {"object": "embedding", "index": i, "embedding": embedder.vector(t)} for i, t in enumerate(inputs)
                ]
                payload = json.dumps(
                    {
                        "object": "list",
                        "data": data,
                        "model": body["model"],
                        "usage": {"prompt_tokens": 1, "total_tokens": 1},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                """Silence the access log."""

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture(scope="module")
def openai_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    """A stack whose embedder is an OpenAI-compatible endpoint that is not up yet."""
    process = StackProcess(
        home=Path(tmp_path_factory.mktemp("openai-embedder")),
        extra_env={
            "AIMPACT_EMBEDDER": "openai",
            "AIMPACT_EMBEDDER_URL": f"http://127.0.0.1:{EMBEDDER_PORT}/v1",
            "AIMPACT_EMBEDDER_MODEL": "local-embed",
            "AIMPACT_MEMORY_WRITE_WAIT_S": "1",
        },
    )
    process.start()
    yield process
    process.stop()


async def test_write_is_queued_while_the_embedder_is_down_then_embedded(openai_stack: StackProcess) -> None:
    headers = {"Authorization": f"Bearer {openai_stack.api_key}"}
    async with httpx.AsyncClient(base_url=openai_stack.api_url, headers=headers, timeout=30) as http:
        written = await http.post("/v1/memories", json={"subject": "ana", "text": "My home is in Lisbon"})
        assert written.status_code == 202, written.text
        memory = written.json()
        assert memory["status"] == "pending"
        down = await http.get("/v1/memories/search", params={"q": "home", "subject": "ana"})
        assert down.status_code == 503
        assert down.headers["content-type"].startswith("application/problem+json")
        await asyncio.sleep(2)
        assert (await http.get(f"/v1/memories/{memory['id']}")).json()["status"] == "pending"

        server = EmbeddingsServer(EMBEDDER_PORT)
        server.start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if (await http.get(f"/v1/memories/{memory['id']}")).json()["status"] == "ready":
                    break
                await asyncio.sleep(0.3)
            else:
                raise AssertionError("the queued memory was never embedded")
            found = (await http.get("/v1/memories/search", params={"q": "home in Lisbon", "subject": "ana"})).json()
            assert [i["id"] for i in found["items"]] == [memory["id"]]
            assert all(r["model"] == "local-embed" and r["dimensions"] == 384 for r in server.requests)
            assert ["My home is in Lisbon"] in [r["input"] for r in server.requests]
        finally:
            server.stop()
