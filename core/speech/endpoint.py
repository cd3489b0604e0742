"""Endpointing: where speech starts and ends, from per-frame speech decisions.

:class:`Endpointer` is pure and deterministic (booleans in, events out): speech starts after
``start_frames`` speech frames in a row and ends after ``end_silence_ms`` without speech.
:func:`speech_segments` runs it over a whole recording (an HTTP turn: find or trim the
speech, tell silence apart); :class:`SpeechSegmenter` runs it over a live stream of PCM
chunks and hands back each utterance's audio, with some audio from before its start.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

from core.speech.audio import FrameBuffer, frames
from core.speech.base import SAMPLE_RATE, SAMPLE_WIDTH, Audio, VoiceActivityDetector

_BYTES_PER_MS = SAMPLE_RATE * SAMPLE_WIDTH / 1000


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """When speech counts as started and as ended."""

    frame_ms: float
    """Length of one frame the decisions are about."""
    start_frames: int = 3
    """Speech frames in a row that start speech (noise bursts shorter than this are ignored)."""
    end_silence_ms: float = 600.0
    """Time without speech that ends it."""

    def __post_init__(self) -> None:
        if self.frame_ms <= 0:
            raise ValueError("frame_ms must be positive")
        if self.start_frames < 1:
            raise ValueError("start_frames must be at least 1")
        if self.end_silence_ms <= 0:
            raise ValueError("end_silence_ms must be positive")

    @property
    def end_frames(self) -> int:
        """Non-speech frames in a row that end speech."""
        return max(1, math.ceil(self.end_silence_ms / self.frame_ms - 1e-9))


@dataclass(frozen=True, slots=True)
class EndpointEvent:
    """Speech started at, or ended at, frame ``frame`` (an end is the frame after the last speech frame)."""

    kind: Literal["start", "end"]
    frame: int
    frame_ms: float

    @property
    def at_ms(self) -> float:
        """The event's position in the stream, in milliseconds."""
        return self.frame * self.frame_ms


class Endpointer:
    """Turns a sequence of per-frame speech decisions into start and end events."""

    def __init__(self, config: EndpointConfig) -> None:
        self.config = config
        self.frames_seen = 0
        self.in_speech = False
        self._run = 0
        self._silence = 0
        self._last_speech = -1

    def push(self, speech: bool) -> EndpointEvent | None:
        """The decision for the next frame; an event when it starts or ends speech."""
        index = self.frames_seen
        self.frames_seen += 1
        if not self.in_speech:
            self._run = self._run + 1 if speech else 0
            if self._run < self.config.start_frames:
                return None
            self.in_speech = True
            self._silence = 0
            self._last_speech = index
            return EndpointEvent("start", index - self.config.start_frames + 1, self.config.frame_ms)
        if speech:
            self._silence = 0
            self._last_speech = index
            return None
        self._silence += 1
        if self._silence < self.config.end_frames:
            return None
        return self.end_now()

    def flush(self) -> EndpointEvent | None:
        """The stream is over: an end event if speech was going on."""
        return self.end_now() if self.in_speech else None

    def end_now(self) -> EndpointEvent:
        """End the speech going on now (after its last speech frame)."""
        if not self.in_speech:
            raise RuntimeError("no speech is going on")
        self.in_speech = False
        self._run = 0
        return EndpointEvent("end", self._last_speech + 1, self.config.frame_ms)


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of speech, in milliseconds from the start of the audio."""

    start_ms: float
    end_ms: float


def frame_ms_of(vad: VoiceActivityDetector) -> float:
    """The length of ``vad``'s frames in milliseconds."""
    return vad.frame_bytes / _BYTES_PER_MS


def _config_for(vad: VoiceActivityDetector, config: EndpointConfig | None) -> EndpointConfig:
    frame_ms = frame_ms_of(vad)
    config = config or EndpointConfig(frame_ms)
    if abs(config.frame_ms - frame_ms) > 1e-9:
        raise ValueError(f"the endpoint config is for {config.frame_ms} ms frames, the detector's last {frame_ms} ms")
    return config


def speech_segments(audio: Audio, vad: VoiceActivityDetector, config: EndpointConfig | None = None) -> list[Segment]:
    """The stretches of speech in ``audio`` (empty for silence), using a fresh ``vad``.

    ``config`` defaults to 3 speech frames to start and 600 ms of silence to end.
    """
    endpointer = Endpointer(_config_for(vad, config))
    events = [endpointer.push(vad.is_speech(frame)) for frame in frames(audio.pcm, vad.frame_bytes)]
    events.append(endpointer.flush())
    segments: list[Segment] = []
    start = 0.0
    for event in events:
        if event is None:
            continue
        if event.kind == "start":
            start = event.at_ms
        else:
            segments.append(Segment(start, event.at_ms))
    return segments


def clip(audio: Audio, start_ms: float, end_ms: float) -> Audio:
    """The part of ``audio`` between two times (clamped to the audio)."""
    start = max(0, int(start_ms * _BYTES_PER_MS) // SAMPLE_WIDTH * SAMPLE_WIDTH)
    end = min(len(audio.pcm), int(end_ms * _BYTES_PER_MS) // SAMPLE_WIDTH * SAMPLE_WIDTH)
    return Audio(audio.pcm[start:end] if end > start else b"")


def trim_to_speech(audio: Audio, segments: list[Segment], *, pad_ms: float = 200.0) -> Audio:
    """``audio`` from the first segment's start to the last one's end, ``pad_ms`` wider on each side
    (empty when there is no segment)."""
    if not segments:
        return Audio(b"")
    return clip(audio, segments[0].start_ms - pad_ms, segments[-1].end_ms + pad_ms)


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The user started speaking at ``at_ms`` (from the start of the stream)."""

    at_ms: float


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """The user stopped speaking: speech from ``start_ms`` to ``end_ms``, and its audio, which
    begins up to the segmenter's ``preroll_ms`` earlier."""

    start_ms: float
    end_ms: float
    audio: Audio


class SpeechSegmenter:
    """Endpointing over a live PCM16 16 kHz stream: chunks of any length in, utterances out.

    Keeps ``preroll_ms`` of audio before each start (a word's onset is often quieter than what
    the detector calls speech), and the utterance's audio until its end. ``max_utterance_ms``
    ends an utterance that goes on too long; the next speech frames start a new one.
    """

    def __init__(
        self,
        vad: VoiceActivityDetector,
        config: EndpointConfig | None = None,
        *,
        preroll_ms: float = 300.0,
        max_utterance_ms: float = 60_000.0,
    ) -> None:
        self._vad = vad
        config = _config_for(vad, config)
        frame_ms, start_frames = config.frame_ms, config.start_frames
        self._endpointer = Endpointer(config)
        self._buffer = FrameBuffer(vad.frame_bytes)
        self._preroll: deque[bytes] = deque(maxlen=start_frames - 1 + math.ceil(preroll_ms / frame_ms - 1e-9))
        self._utterance = bytearray()
        self._first_frame = 0
        """Index of the first frame in ``_utterance``."""
        self._start_ms = 0.0
        self._start_frame = 0
        self._max_frames = max(start_frames, math.floor(max_utterance_ms / frame_ms))

    @property
    def in_speech(self) -> bool:
        """Whether an utterance is going on."""
        return self._endpointer.in_speech

    def utterance_so_far(self) -> Audio:
        """The audio of the utterance going on (empty between utterances): for partial transcripts."""
        return Audio(bytes(self._utterance))

    def push(self, chunk: bytes) -> list[SpeechStarted | SpeechEnded]:
        """Feed PCM16 16 kHz mono bytes; the starts and ends they complete."""
        out: list[SpeechStarted | SpeechEnded] = []
        for frame in self._buffer.push(chunk):
            speaking = self._endpointer.in_speech
            event = self._endpointer.push(self._vad.is_speech(frame))
            if not speaking and event is None:
                self._preroll.append(frame)
            elif not speaking and event is not None:
                self._first_frame = event.frame + self._endpointer.config.start_frames - 1 - len(self._preroll)
                self._utterance = bytearray(b"".join(self._preroll)) + frame
                self._preroll.clear()
                self._start_ms = event.at_ms
                self._start_frame = event.frame
                out.append(SpeechStarted(event.at_ms))
            else:
                self._utterance += frame
                if event is None and self._endpointer.frames_seen - self._start_frame >= self._max_frames:
                    event = self._endpointer.end_now()
                if event is not None:
                    out.append(self._finish(event))
        return out

    def flush(self) -> list[SpeechStarted | SpeechEnded]:
        """The stream ended: the utterance going on, if any, ends here."""
        event = self._endpointer.flush()
        return [self._finish(event)] if event is not None else []

    def _finish(self, event: EndpointEvent) -> SpeechEnded:
        kept = (event.frame - self._first_frame) * self._vad.frame_bytes
        audio = Audio(bytes(self._utterance[:kept]))
        self._utterance = bytearray()
        return SpeechEnded(self._start_ms, event.at_ms, audio)
