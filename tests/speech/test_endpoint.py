"""The endpointer (pure: decisions in, events out) and segmentation of recordings and live streams."""

from __future__ import annotations

import pytest

from core.speech.base import SAMPLE_RATE, SAMPLE_WIDTH, Audio
from core.speech.endpoint import (
    EndpointConfig,
    Endpointer,
    EndpointEvent,
    Segment,
    SpeechEnded,
    SpeechSegmenter,
    SpeechStarted,
    clip,
    trim_to_speech,
)


def run(config: EndpointConfig, decisions: str) -> list[tuple[str, int]]:
    """Events for a string of decisions ('S' speech, '.' not), then the end of the stream."""
    endpointer = Endpointer(config)
    events = [endpointer.push(mark == "S") for mark in decisions]
    events.append(endpointer.flush())
    return [(e.kind, e.frame) for e in events if e is not None]


CONFIG = EndpointConfig(frame_ms=30, start_frames=3, end_silence_ms=90)


@pytest.mark.parametrize(
    ("decisions", "events"),
    [
        ("", []),
        ("..........", []),
        ("SS.SS.S..S", []),  # bursts shorter than three frames are noise
        ("..SSS.....", [("start", 2), ("end", 5)]),
        ("..SSSS.S..S...", [("start", 2), ("end", 11)]),  # gaps shorter than 90 ms do not end speech
        ("SSS...SSS...", [("start", 0), ("end", 3), ("start", 6), ("end", 9)]),
        ("...SSSSS", [("start", 3), ("end", 8)]),  # the stream ends during speech
        ("SSS..", [("start", 0), ("end", 3)]),  # flush ends it after the last speech frame
    ],
)
def test_speech_starts_after_n_frames_and_ends_after_m_ms_of_silence(
    decisions: str, events: list[tuple[str, int]]
) -> None:
    assert run(CONFIG, decisions) == events


def test_events_carry_their_time_and_the_end_needs_the_full_silence() -> None:
    config = EndpointConfig(frame_ms=20, start_frames=2, end_silence_ms=100)
    assert config.end_frames == 5
    endpointer = Endpointer(config)
    assert endpointer.push(True) is None
    start = endpointer.push(True)
    assert start == EndpointEvent("start", 0, 20)
    assert endpointer.in_speech
    assert [endpointer.push(False) for _ in range(4)] == [None] * 4
    end = endpointer.push(False)
    assert end is not None
    assert (end.kind, end.at_ms) == ("end", 40.0)
    assert not endpointer.in_speech
    assert endpointer.flush() is None
    with pytest.raises(RuntimeError):
        endpointer.end_now()


def test_a_partial_frame_of_silence_rounds_up() -> None:
    assert EndpointConfig(frame_ms=30, end_silence_ms=100).end_frames == 4
    assert EndpointConfig(frame_ms=32, end_silence_ms=64).end_frames == 2
    with pytest.raises(ValueError, match="start_frames"):
        EndpointConfig(frame_ms=30, start_frames=0)


def test_clip_and_trim_to_speech() -> None:
    audio = Audio(bytes(range(256)) * 125)  # 32,000 bytes: 1 s
    assert clip(audio, 250, 500).pcm == audio.pcm[8000:16000]
    assert clip(audio, -100, 5000) == audio
    assert clip(audio, 600, 500).pcm == b""
    segments = [Segment(300.0, 400.0), Segment(600.0, 700.0)]
    assert trim_to_speech(audio, segments, pad_ms=100).pcm == audio.pcm[6400:25600]
    assert trim_to_speech(audio, []).pcm == b""


class NonZeroVAD:
    """The simplest detector: speech wherever a frame holds a non-zero sample, so frame counts are exact here
    (the real detectors are run on spoken audio in test_vad.py)."""

    name = "non-zero"

    def __init__(self, frame_ms: int = 10) -> None:
        self.frame_bytes = SAMPLE_RATE * SAMPLE_WIDTH * frame_ms // 1000

    def is_speech(self, frame: bytes) -> bool:
        return any(frame)


def tone_and_gaps(pattern: str, frame_ms: int = 10) -> bytes:
    """'S' a frame of constant non-zero samples, '.' a frame of zeros."""
    size = SAMPLE_RATE * SAMPLE_WIDTH * frame_ms // 1000
    return b"".join((b"\x01\x01" if mark == "S" else b"\x00\x00") * (size // 2) for mark in pattern)


def test_the_segmenter_hands_back_each_utterance_with_its_preroll() -> None:
    vad = NonZeroVAD()
    config = EndpointConfig(frame_ms=10, start_frames=3, end_silence_ms=50)
    segmenter = SpeechSegmenter(vad, config, preroll_ms=40, max_utterance_ms=10_000)
    stream = tone_and_gaps("." * 10 + "S" * 20 + "." * 10 + "S" * 5 + "." * 3)
    events: list[SpeechStarted | SpeechEnded] = []
    for start in range(0, len(stream), 777):  # chunks that do not line up with frames
        events += segmenter.push(stream[start : start + 777])
        if segmenter.in_speech:
            assert segmenter.utterance_so_far().pcm  # partial audio for partial transcripts
    assert segmenter.in_speech  # three silent frames do not end it yet
    events += segmenter.flush()
    assert not segmenter.in_speech

    first_start, first_end, second_start, second_end = events
    assert first_start == SpeechStarted(100.0)
    assert isinstance(first_end, SpeechEnded)
    assert (first_end.start_ms, first_end.end_ms) == (100.0, 300.0)
    assert first_end.audio.pcm == stream[60 * 32 : 300 * 32]  # 40 ms before the start, to the last speech frame
    assert second_start == SpeechStarted(400.0)
    assert isinstance(second_end, SpeechEnded)
    assert (second_end.start_ms, second_end.end_ms) == (400.0, 450.0)
    assert second_end.audio.pcm == stream[360 * 32 : 450 * 32]
    assert segmenter.utterance_so_far().pcm == b""


def test_the_segmenter_ends_an_utterance_that_goes_on_too_long() -> None:
    vad = NonZeroVAD()
    config = EndpointConfig(frame_ms=10, start_frames=2, end_silence_ms=50)
    segmenter = SpeechSegmenter(vad, config, preroll_ms=0, max_utterance_ms=100)
    events = segmenter.push(tone_and_gaps("S" * 25))
    kinds = [(type(e).__name__, e.at_ms if isinstance(e, SpeechStarted) else e.end_ms) for e in events]
    assert kinds == [
        ("SpeechStarted", 0.0),
        ("SpeechEnded", 100.0),
        ("SpeechStarted", 100.0),
        ("SpeechEnded", 200.0),
        ("SpeechStarted", 200.0),
    ]
    assert [len(e.audio.pcm) for e in events if isinstance(e, SpeechEnded)] == [3200, 3200]


def test_the_segmenter_refuses_a_config_for_other_frames() -> None:
    with pytest.raises(ValueError, match="30 ms frames"):
        SpeechSegmenter(NonZeroVAD(10), EndpointConfig(frame_ms=30))
