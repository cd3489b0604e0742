"""Talk to a voice session over ``WS /v1/voice/sessions/{id}/stream`` (asyncio; needs the ``websockets`` package).

    async with VoiceStream.connect("http://127.0.0.1:8000", session_id, api_key) as stream:
        await stream.send_audio(pcm16_16khz_mono)           # paced in real time
        await stream.send_silence(0.8)                      # the end of speech
        reply = await stream.wait_for("reply_done")
        print(stream.events_of("transcript"), len(stream.audio), "bytes of reply audio")

Events are JSON objects with ``id`` (send it back as ``last_event_id`` to resume) and ``type``:
``ready``, ``speech_started``, ``transcript`` (``final`` false while the user speaks), ``reply``
(a sentence, then its audio as binary PCM16 16 kHz frames), ``reply_done``, ``interrupted``,
``metrics``, ``error``, ``ended``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

SAMPLE_RATE = 16_000
BYTES_PER_S = SAMPLE_RATE * 2


class VoiceStream:
    """One open stream: what it received (events, reply audio) and how to send speech and control messages."""

    def __init__(self, connection: Any) -> None:
        self._ws = connection
        self.events: list[dict[str, Any]] = []
        self.audio = bytearray()
        """Reply audio received (PCM16 16 kHz mono)."""
        self.audio_at: list[tuple[float, int]] = []
        """``(time.perf_counter(), bytes)`` of each audio frame received."""
        self.audio_of: dict[str, int] = {}
        """Bytes of reply audio received per turn (audio belongs to the turn of the last ``reply`` event)."""
        self._speaking: str | None = None
        self.closed: tuple[int, str] | None = None
        """The close code and reason once the server closed the stream."""
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, base_url: str, session_id: str, token: str, *, last_event_id: str | None = None
    ) -> AsyncIterator[VoiceStream]:
        """Open the session's stream (``base_url`` as for the HTTP client: ``http://`` becomes ``ws://``)."""
        try:
            from websockets.asyncio.client import connect
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ImportError("voice streams need the websockets package: pip install websockets") from exc
        url = base_url.rstrip("/").replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        url += f"/v1/voice/sessions/{quote(session_id, safe='')}/stream?token={quote(token, safe='')}"
        if last_event_id is not None:
            url += f"&last_event_id={quote(last_event_id, safe='')}"
        async with connect(url, max_size=2**22) as connection:
            stream = cls(connection)
            try:
                yield stream
            finally:
                stream._reader.cancel()

    async def _read(self) -> None:
        try:
            async for message in self._ws:
                async with self._changed:
                    if isinstance(message, bytes):
                        self.audio += message
                        self.audio_at.append((time.perf_counter(), len(message)))
                        if self._speaking is not None:
                            self.audio_of[self._speaking] = self.audio_of.get(self._speaking, 0) + len(message)
                    else:
                        event = json.loads(message)
                        self.events.append(event)
                        if event.get("type") == "reply":
                            self._speaking = event.get("turn_id")
                    self._changed.notify_all()
        except Exception:  # noqa: S110 - the connection closed: record how, below
            pass
        async with self._changed:
            self.closed = (self._ws.close_code or 1006, self._ws.close_reason or "")
            self._changed.notify_all()

    async def send_audio(self, pcm: bytes, *, frame_ms: int = 20, realtime: bool = True) -> None:
        """Send PCM16 16 kHz mono audio in frames of ``frame_ms``, at the pace it is spoken unless not ``realtime``."""
        frame = SAMPLE_RATE * 2 * frame_ms // 1000
        started = time.perf_counter()
        for offset in range(0, len(pcm), frame):
            await self._ws.send(pcm[offset : offset + frame])
            if realtime:
                due = started + (offset + frame) / BYTES_PER_S
                await asyncio.sleep(max(0.0, due - time.perf_counter()))

    async def send_silence(self, seconds: float, **pace: Any) -> None:
        """Send ``seconds`` of silence (the end of an utterance)."""
        await self.send_audio(b"\x00\x00" * int(seconds * SAMPLE_RATE), **pace)

    async def send_control(self, type_: str, **fields: Any) -> None:
        """Send a JSON control message: ``end`` or ``interrupt``."""
        await self._ws.send(json.dumps({"type": type_, **fields}))

    async def send_raw(self, message: str | bytes) -> None:
        """Send a frame as it is."""
        await self._ws.send(message)

    def events_of(self, type_: str) -> list[dict[str, Any]]:
        """The events of one type received so far, in order."""
        return [e for e in self.events if e.get("type") == type_]

    async def wait_for(
        self, type_: str, *, where: Callable[[dict[str, Any]], bool] = lambda _: True, timeout_s: float = 60.0
    ) -> dict[str, Any]:
        """The first event of ``type_`` (received before or after the call) that ``where`` accepts."""

        def found() -> dict[str, Any] | None:
            return next((e for e in self.events if e.get("type") == type_ and where(e)), None)

        async with asyncio.timeout(timeout_s), self._changed:
            while (event := found()) is None:
                if self.closed is not None:
                    raise ConnectionError(f"the stream closed ({self.closed[0]} {self.closed[1]}) before {type_}")
                await self._changed.wait()
            return event

    async def wait_closed(self, *, timeout_s: float = 30.0) -> tuple[int, str]:
        """The close code and reason, once the server closes the stream."""
        async with asyncio.timeout(timeout_s), self._changed:
            while self.closed is None:
                await self._changed.wait()
            return self.closed

    async def close(self) -> None:
        """Close the stream from this side."""
        await self._ws.close()
