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
from dataclasses import dataclass, replace
from functools import partial
from typing import Generic, TypeVar

from core.settings import Settings
from core.speech.audio import without_leading_zeros
from core.speech.base import Audio, SpeechToText, TextToSpeech, Transcript, VoiceActivityDetector
from core.speech.endpoint import EndpointConfig, SpeechSegmenter, speech_segments, trim_to_speech
from core.speech.engines import build_stt, build_tts, build_vad, endpoint_config

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
        text, stt_ms = await self.transcribe_speech(span, clock)
        return Heard(text, speech=True, vad_ms=vad_ms, stt_ms=stt_ms)

    async def transcribe_speech(self, speech: Audio, clock: Callable[[], float]) -> tuple[str, float]:
        """The words of audio already known to hold speech (a stream's utterance), and the milliseconds it took."""
        speech = without_leading_zeros(speech)
        if not speech.pcm:
            return "", 0.0
        stt = await self._stt.get()
        async with self._stt.busy:
            started = clock()
            transcript: Transcript = await asyncio.to_thread(stt.transcribe, speech)
            return transcript.text, (clock() - started) * 1000

    def segmenter(self, *, end_silence_ms: float, max_utterance_ms: float) -> SpeechSegmenter:
        """Endpointing for one live stream (a fresh detector), ending utterances after ``end_silence_ms``."""
        vad = self._vad()
        config = replace(self._endpoint(vad), end_silence_ms=end_silence_ms)
        return SpeechSegmenter(vad, config, max_utterance_ms=max_utterance_ms)

    async def synthesize(self, text: str, clock: Callable[[], float]) -> tuple[Audio, float]:
        """``text`` spoken, and the milliseconds it took."""
        tts = await self._tts.get()
        async with self._tts.busy:
            started = clock()
            audio = await asyncio.to_thread(tts.synthesize, text)
            return audio, (clock() - started) * 1000


def engines_for(settings: Settings) -> SpeechEngines:
    """The engines ``settings`` choose (built on first use)."""
    return SpeechEngines(
        stt=partial(build_stt, settings),
        tts=partial(build_tts, settings),
        vad=partial(build_vad, settings),
        endpoint=partial(endpoint_config, settings),
    )
