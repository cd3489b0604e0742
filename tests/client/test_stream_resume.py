"""An event stream whose connection breaks is resumed with ``Last-Event-ID``: no event lost, none repeated."""

from __future__ import annotations

import asyncio
import contextlib

from aimpact_client import AsyncClient
from tests.conftest import TenantCtx
from tests.support.runs import CALC_AGENT
from workers.embedded.stack import StackProcess


class CuttingProxy:
    """A TCP proxy to the API that drops the first connection whose answer contains ``cut_after``, right after it."""

    def __init__(self, target_port: int, cut_after: bytes) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.cut = False
        self.requests: list[bytearray] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def url(self) -> str:
        """The proxy's base URL."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        sent = bytearray()
        self.requests.append(sent)

        async def upstream() -> None:
            while data := await reader.read(65536):
                sent.extend(data)
                up_writer.write(data)
                await up_writer.drain()

        async def downstream() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()
                if not self.cut and self.cut_after in data:
                    self.cut = True
                    return

        pumps = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        for stream in (writer, up_writer):
            with contextlib.suppress(ConnectionError):
                stream.close()


async def test_a_broken_stream_resumes_after_its_last_event(stack: StackProcess, tenant: TenantCtx) -> None:
    async with (
        CuttingProxy(stack.ports["API"], cut_after=b"event: run.started") as proxy,
        AsyncClient(proxy.url, api_key=tenant.key) as client,
    ):
        agent = await client.agents.create(**CALC_AGENT)
        run = await client.runs.start(agent["id"], "What is 12 * (3 + 4)?")
        followed = [event async for event in client.runs.follow(run["id"])]
    assert proxy.cut, "the stream was never cut"
    resumed = [bytes(r).lower() for r in proxy.requests if b"last-event-id:" in r.lower()]
    assert len(resumed) == 1
    assert any(f"last-event-id: {event.id}\r\n".encode() in resumed[0] for event in followed[:2])

    async with AsyncClient(stack.api_url, api_key=tenant.key) as direct:
        expected = [event.id async for event in direct.runs.follow(run["id"])]
    assert [event.id for event in followed] == expected
    assert followed[-1].data["output"] == "Result — calculator: 84"
