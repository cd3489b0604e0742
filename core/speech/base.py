"""The interfaces every speech engine implements, and the one audio shape they exchange.

Audio inside the platform is always 16 kHz mono PCM16 little-endian (:class:`Audio`);
engines that work at another rate convert at their edge. Engines are synchronous and
CPU-bound: callers run them in a thread (activities) and build each engine once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

SAMPLE_RATE = 16_000
"""Samples per second of every :class:`Audio`."""
SAMPLE_WIDTH = 2
"""Bytes per sample (PCM16)."""


class SpeechError(Exception):
    """An engine could not do its work (a bad model, a failed process): retriable by policy."""


class EngineUnavailableError(SpeechError):
    """An engine's package or model is missing: raised at startup, naming what to install."""


@dataclass(frozen=True, slots=True)
class Audio:
    """16 kHz mono PCM16 little-endian samples."""

    pcm: bytes

    def __post_init__(self) -> None:
        if len(self.pcm) % SAMPLE_WIDTH:
            raise ValueError("PCM16 audio has an even number of bytes")

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return len(self.pcm) / (SAMPLE_RATE * SAMPLE_WIDTH)


@dataclass(frozen=True, slots=True)
class Transcript:
    """What a speech-to-text engine heard."""

    text: str
    """The words, stripped; empty when nothing was said."""
    engine: str


class SpeechToText(Protocol):
    """Speech to text."""

    name: str

    def transcribe(self, audio: Audio) -> Transcript:
        """The words of ``audio`` (empty text for silence)."""
        ...


class TextToSpeech(Protocol):
    """Text to speech."""

    name: str

    def synthesize(self, text: str) -> Audio:
        """``text`` spoken, as 16 kHz mono PCM16."""
        ...


class VoiceActivityDetector(Protocol):
    """Speech or not, one frame at a time."""

    name: str
    frame_bytes: int
    """The size of the frames :meth:`is_speech` takes (PCM16 at 16 kHz)."""

    def is_speech(self, frame: bytes) -> bool:
        """Whether ``frame`` (exactly ``frame_bytes`` long) holds speech."""
        ...
