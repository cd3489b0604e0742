"""The speech engines the settings choose, built once per process.

``build_stt`` and ``build_tts`` load their engine on the first call and hand the same object
to every later call with the same settings (loading Whisper takes seconds); ``build_vad``
gives a new detector per call (detectors keep per-stream state) over a shared model. Each
raises :class:`~core.speech.base.EngineUnavailableError` naming what to install when a
package or a model is missing, so a worker fails at startup, never on its first turn.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, TypeVar

from core.speech.base import SpeechToText, TextToSpeech, VoiceActivityDetector
from core.speech.endpoint import EndpointConfig, frame_ms_of

if TYPE_CHECKING:
    from pydantic import SecretStr

    from core.settings import Settings

T = TypeVar("T")
_cache: dict[Hashable, object] = {}
_lock = threading.Lock()


def _cached(key: Hashable, build: Callable[[], T]) -> T:
    with _lock:
        if key not in _cache:
            _cache[key] = build()
        return _cache[key]  # type: ignore[return-value]


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def build_stt(settings: Settings) -> SpeechToText:
    """The process's speech-to-text engine (``AIMPACT_VOICE_STT``)."""
    if settings.voice_stt == "pocketsphinx":
        phrases_file = settings.voice_pocketsphinx_phrases_file
        return _cached(("stt", "pocketsphinx", str(phrases_file)), lambda: _pocketsphinx(settings))
    if settings.voice_stt == "openai":
        from core.speech.cloud import OpenAISTT

        url = settings.voice_stt_url or ""
        return _cached(
            ("stt", "openai", url, settings.voice_stt_model, _secret(settings.voice_stt_api_key)),
            lambda: OpenAISTT(
                base_url=url,
                api_key=_secret(settings.voice_stt_api_key),
                model=settings.voice_stt_model,
                timeout_s=settings.voice_cloud_timeout_s,
            ),
        )
    from core.speech.whisper import WhisperSTT

    key = (
        "stt",
        "whisper",
        str(settings.voice_whisper_model_dir),
        settings.voice_stt_threads,
        settings.voice_whisper_compute_type,
        settings.voice_whisper_beam_size,
    )
    return _cached(
        key,
        lambda: WhisperSTT(
            model_dir=settings.voice_whisper_model_dir,
            threads=settings.voice_stt_threads,
            compute_type=settings.voice_whisper_compute_type,
            beam_size=settings.voice_whisper_beam_size,
        ),
    )


def _pocketsphinx(settings: Settings) -> SpeechToText:
    from core.speech.base import EngineUnavailableError
    from core.speech.pocketsphinx_stt import PocketsphinxSTT

    phrases: list[str] = []
    path = settings.voice_pocketsphinx_phrases_file
    if path is not None:
        try:
            phrases = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise EngineUnavailableError(f"AIMPACT_VOICE_POCKETSPHINX_PHRASES_FILE cannot be read: {exc}") from exc
    return PocketsphinxSTT(phrases=phrases)


def build_tts(settings: Settings) -> TextToSpeech:
    """The process's text-to-speech engine (``AIMPACT_VOICE_TTS``)."""
    if settings.voice_tts == "piper":
        from core.speech.piper_tts import PiperTTS

        model = settings.voice_piper_model
        return _cached(("tts", "piper", str(model)), lambda: PiperTTS(model_path=model))
    if settings.voice_tts == "openai":
        from core.speech.cloud import OpenAITTS

        url = settings.voice_tts_url or ""
        key = ("tts", "openai", url, settings.voice_tts_model, settings.voice_tts_voice)
        return _cached(
            (*key, _secret(settings.voice_tts_api_key)),
            lambda: OpenAITTS(
                base_url=url,
                api_key=_secret(settings.voice_tts_api_key),
                model=settings.voice_tts_model,
                voice=settings.voice_tts_voice,
                timeout_s=settings.voice_cloud_timeout_s,
            ),
        )
    from core.speech.espeak import EspeakTTS

    voice, wpm = settings.voice_espeak_voice, settings.voice_espeak_wpm
    return _cached(("tts", "espeak", voice, wpm), lambda: EspeakTTS(voice=voice, words_per_minute=wpm))


def build_vad(settings: Settings) -> VoiceActivityDetector:
    """A new detector for one audio stream (``AIMPACT_VOICE_VAD``); its model is shared by the process."""
    if settings.voice_vad == "silero":
        from core.speech.vad import SileroModel, SileroVAD

        model = _cached(("vad", "silero"), lambda: SileroModel(SileroModel.bundled_path()))
        return SileroVAD(model, threshold=settings.voice_silero_threshold)
    from core.speech.vad import WebrtcVAD

    return WebrtcVAD(aggressiveness=settings.voice_vad_aggressiveness, frame_ms=settings.voice_vad_frame_ms)


def endpoint_config(settings: Settings, vad: VoiceActivityDetector) -> EndpointConfig:
    """When speech starts and ends for ``vad``'s frames, from ``AIMPACT_VOICE_SPEECH_START_MS``/``_END_MS``."""
    frame_ms = frame_ms_of(vad)
    return EndpointConfig(
        frame_ms=frame_ms,
        start_frames=max(1, math.ceil(settings.voice_speech_start_ms / frame_ms - 1e-9)),
        end_silence_ms=float(settings.voice_speech_end_ms),
    )


def check_engines(settings: Settings) -> None:
    """Build the chosen STT, TTS and VAD now: raises ``EngineUnavailableError`` naming what is missing."""
    build_stt(settings)
    build_tts(settings)
    build_vad(settings)
