"""The speech engines one voice worker process uses.

Engines are CPU-bound and synchronous (``core.speech.base``). Speech to text and text to
speech are built once per process (on first use, or by :meth:`SpeechEngines.warm` when the
worker starts) and called in a thread, one call at a time per engine, so two turns never fight
over the same cores; each utterance gets a fresh voice activity detector (detectors keep
per-stream state) that finds its speech (``core.speech.endpoint``) before any transcription.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from core.speech.base import Audio, SpeechToText, TextToSpeech, Transcript, VoiceActivityDetector
from core.speech.endpoint import EndpointConfig, speech_segments, trim_to_speech

E = TypeVar("E")


class _Lazy(Generic[E]):
    """One engine: built once (in a thread), then called by one caller at a time."""

    def __init__(self, build: Callable[[], E]):
        self._build = build
        self._engine: E | None = None
        self._building = asyncio.Lock()
        self.busy = asyncio.Lock()

    async def get(self) -> E:
        if self._engine is None:
            async with self._building:
                if self._engine is None:
                    self._engine = await asyncio.to_thread(self._build)
        return self._engine


@dataclass(frozen=True)
class Heard:
    """What a transcription found, and the milliseconds its stages took."""

    text: str
    speech: bool
    vad_ms: float
    stt_ms: float


def _speech(vad: VoiceActivityDetector, config: EndpointConfig, audio: Audio) -> Audio | None:
    """The speech of ``audio`` (from the first segment to the last, padded), or ``None`` without speech."""
    segments = speech_segments(audio, vad, config)
    return trim_to_speech(audio, segments) if segments else None


class SpeechEngines:
    """Speech to text, text to speech and voice activity detection of one process, built by the given factories."""

    def __init__(
        self,
        *,
        stt: Callable[[], SpeechToText],
        tts: Callable[[], TextToSpeech],
        vad: Callable[[], VoiceActivityDetector],
        endpoint: Callable[[VoiceActivityDetector], EndpointConfig],
    ):
        self._stt = _Lazy(stt)
        self._tts = _Lazy(tts)
        self._vad = vad
        self._endpoint = endpoint

    async def warm(self) -> None:
        """Build every engine now (model loads happen here, not on the first turn)."""
        await asyncio.to_thread(self._vad)
        await self._stt.get()
        await self._tts.get()

    async def transcribe(self, audio: Audio, clock: Callable[[], float]) -> Heard:
        """Find the speech in ``audio`` and transcribe it; no speech, no speech-to-text call."""
        started = clock()
        vad = self._vad()
        span = await asyncio.to_thread(_speech, vad, self._endpoint(vad), audio)
        vad_ms = (clock() - started) * 1000
        if span is None:
            return Heard("", speech=False, vad_ms=vad_ms, stt_ms=0.0)
        stt = await self._stt.get()
        async with self._stt.busy:
            started = clock()
            transcript: Transcript = await asyncio.to_thread(stt.transcribe, span)
            stt_ms = (clock() - started) * 1000
        return Heard(transcript.text, speech=True, vad_ms=vad_ms, stt_ms=stt_ms)

    async def synthesize(self, text: str, clock: Callable[[], float]) -> tuple[Audio, float]:
        """``text`` spoken, and the milliseconds it took."""
        tts = await self._tts.get()
        async with self._tts.busy:
            started = clock()
            audio = await asyncio.to_thread(tts.synthesize, text)
            return audio, (clock() - started) * 1000
