"""The voice activity detectors on spoken audio, silence and room noise; endpointing with them."""

from __future__ import annotations

import pytest

from core.settings import Settings
from core.speech.audio import frames
from core.speech.base import Audio, VoiceActivityDetector
from core.speech.endpoint import SpeechEnded, SpeechSegmenter, SpeechStarted, speech_segments, trim_to_speech
from core.speech.engines import build_vad, endpoint_config
from core.speech.espeak import EspeakTTS
from core.speech.vad import SileroModel, SileroVAD, WebrtcVAD
from tests.speech.conftest import concat, noise, silence


def detectors() -> list[tuple[str, dict[str, object]]]:
    """The default (WebRTC, 30 ms frames), WebRTC on 10 ms frames and Silero.

    On 10 ms frames WebRTC needs aggressiveness 3: at 2 it takes the white noise after speech
    for more speech and never ends the utterance.
    """
    return [
        ("webrtc", {}),
        ("webrtc", {"voice_vad_frame_ms": 10, "voice_vad_aggressiveness": 3}),
        ("silero", {}),
    ]


def speech_fraction(vad: VoiceActivityDetector, audio: Audio) -> float:
    decisions = [vad.is_speech(f) for f in frames(audio.pcm, vad.frame_bytes)]
    return sum(decisions) / len(decisions)


@pytest.mark.parametrize(("kind", "options"), detectors())
def test_speech_is_speech_and_silence_or_room_noise_is_not(
    espeak: EspeakTTS, kind: str, options: dict[str, object]
) -> None:
    settings = Settings(voice_vad=kind, **options)  # type: ignore[arg-type]
    spoken = espeak.synthesize("The quick brown fox jumps over the lazy dog, and then it runs away.")
    speech_share = speech_fraction(build_vad(settings), spoken)
    silence_share = speech_fraction(build_vad(settings), silence(2.0))
    noise_share = speech_fraction(build_vad(settings), noise(2.0, dbfs=-55))
    print(
        f"{kind} {options}: speech frames {speech_share:.0%} of speech, {silence_share:.0%} of silence,"
        f" {noise_share:.0%} of noise"
    )
    assert speech_share > 0.6
    assert silence_share == 0.0
    assert noise_share < 0.1


@pytest.mark.parametrize(("kind", "options"), detectors())
def test_a_recording_yields_its_spoken_stretches(espeak: EspeakTTS, kind: str, options: dict[str, object]) -> None:
    settings = Settings(voice_vad=kind, **options)  # type: ignore[arg-type]
    first = espeak.synthesize("Turn on the lights in the kitchen.")
    second = espeak.synthesize("And close the door please.")
    room = [noise(seconds, dbfs=-60, seed=seed) for seed, seconds in enumerate((1.0, 1.5, 1.0))]
    audio = concat(room[0], first, room[1], second, room[2])
    vad = build_vad(settings)
    segments = speech_segments(audio, vad, endpoint_config(settings, vad))

    assert len(segments) == 2
    tolerance = 250  # ms: the detector's decision lag and the speech's own quiet edges
    assert segments[0].start_ms == pytest.approx(1000, abs=tolerance)
    assert segments[0].end_ms == pytest.approx(1000 + first.duration_s * 1000, abs=tolerance)
    second_at = 2500 + first.duration_s * 1000
    assert segments[1].start_ms == pytest.approx(second_at, abs=tolerance)
    assert segments[1].end_ms == pytest.approx(second_at + second.duration_s * 1000, abs=tolerance)
    trimmed = trim_to_speech(audio, segments, pad_ms=200)
    assert trimmed.duration_s < audio.duration_s - 1.5

    quiet = concat(silence(0.5), noise(1.5, dbfs=-60))
    assert speech_segments(quiet, build_vad(settings), endpoint_config(settings, build_vad(settings))) == []


def test_a_live_stream_is_cut_into_utterances_with_real_detection(espeak: EspeakTTS) -> None:
    settings = Settings(voice_vad="webrtc", voice_speech_end_ms=600)
    vad = build_vad(settings)
    segmenter = SpeechSegmenter(vad, endpoint_config(settings, vad), preroll_ms=300)
    question = espeak.synthesize("What is the weather like in Paris?")
    stream = concat(silence(0.8), question, silence(1.2), espeak.synthesize("Thanks."), silence(1.0)).pcm
    events: list[SpeechStarted | SpeechEnded] = []
    for start in range(0, len(stream), 640):  # 20 ms chunks, as a client sends them
        events += segmenter.push(stream[start : start + 640])
    events += segmenter.flush()

    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded, SpeechStarted, SpeechEnded]
    ended = events[1]
    assert isinstance(ended, SpeechEnded)
    assert ended.audio.duration_s == pytest.approx(question.duration_s + 0.3, abs=0.3)


def test_detectors_are_new_per_stream_and_share_silero_s_model() -> None:
    settings = Settings(voice_vad="silero")
    first, second = build_vad(settings), build_vad(settings)
    assert first is not second
    assert isinstance(first, SileroVAD)
    assert isinstance(second, SileroVAD)
    assert first._model is second._model
    assert build_vad(Settings(voice_vad="webrtc")) is not build_vad(Settings(voice_vad="webrtc"))


def test_frames_of_the_wrong_size_and_bad_options_are_refused() -> None:
    vad = WebrtcVAD(frame_ms=20)
    assert vad.frame_bytes == 640
    with pytest.raises(ValueError, match="640 bytes, not 960"):
        vad.is_speech(b"\x00" * 960)
    with pytest.raises(ValueError, match="10, 20 or 30"):
        WebrtcVAD(frame_ms=25)
    with pytest.raises(ValueError, match="0 to 3"):
        WebrtcVAD(aggressiveness=4)
    silero = SileroVAD(SileroModel(SileroModel.bundled_path()))
    with pytest.raises(ValueError, match="1024 bytes"):
        silero.is_speech(b"\x00" * 960)
