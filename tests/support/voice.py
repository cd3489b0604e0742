"""Voice helpers shared by tests: speech made with the platform's TTS at test time, sessions, turns."""

from __future__ import annotations

import asyncio
import io
import time
import wave
from collections.abc import Callable
from functools import cache
from typing import Any

import httpx
import numpy as np

from core.settings import Settings
from core.speech.audio import resample, to_float, to_pcm16
from core.speech.base import SAMPLE_RATE, Audio
from core.speech.engines import build_tts

WAV = {"content-type": "audio/wav"}


@cache
def speech(text: str) -> Audio:
    """``text`` spoken by the default text-to-speech engine (eSpeak NG), 16 kHz mono PCM16."""
    return build_tts(Settings(_env_file=None)).synthesize(text)  # type: ignore[call-arg]


def wav_of(audio: Audio, *, rate: int = SAMPLE_RATE, channels: int = 1, pad_s: float = 0.0) -> bytes:
    """``audio`` as a 16-bit PCM WAV at ``rate`` with ``channels`` (the same samples on each), ``pad_s`` of
    silence before and after."""
    samples = to_float(audio)
    pad = np.zeros(int(pad_s * SAMPLE_RATE), dtype=np.float32)
    samples = resample(np.concatenate([pad, samples, pad]), SAMPLE_RATE, rate)
    pcm = np.frombuffer(to_pcm16(samples), dtype="<i2")
    interleaved = np.repeat(pcm, channels) if channels > 1 else pcm
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(interleaved.astype("<i2").tobytes())
    return out.getvalue()


def spoken_wav(text: str, **shape: Any) -> bytes:
    """``text`` spoken, as a WAV file (see :func:`wav_of` for ``rate``, ``channels``, ``pad_s``)."""
    return wav_of(speech(text), **shape)


def silence_wav(seconds: float) -> bytes:
    """``seconds`` of digital silence as a 16 kHz mono WAV."""
    return wav_of(Audio(b"\x00\x00" * int(seconds * SAMPLE_RATE)))


async def start_session(http: httpx.AsyncClient, agent_id: str, **fields: Any) -> dict[str, Any]:
    """``POST /v1/voice/sessions``; the session."""
    response = await http.post("/v1/voice/sessions", json={"agent_id": agent_id, **fields})
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    return session


async def say(http: httpx.AsyncClient, session_id: str, wav: bytes, **headers: str) -> httpx.Response:
    """``POST /v1/voice/sessions/{id}/turns`` with ``wav`` (``audio/wav`` unless ``headers`` say otherwise)."""
    return await http.post(f"/v1/voice/sessions/{session_id}/turns", content=wav, headers=WAV | headers, timeout=180)


async def wait_session(
    http: httpx.AsyncClient, session_id: str, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = 60
) -> dict[str, Any]:
    """Poll ``GET /v1/voice/sessions/{id}`` until ``predicate`` holds."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = await http.get(f"/v1/voice/sessions/{session_id}")
        assert response.status_code == 200, response.text
        session: dict[str, Any] = response.json()
        if predicate(session):
            return session
        if time.monotonic() > deadline:
            raise AssertionError(f"voice session {session_id}: condition not met: {session}")
        await asyncio.sleep(0.1)
