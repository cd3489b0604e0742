"""Voice activity detectors: WebRTC's (``webrtcvad-wheels``) and Silero's (ONNX, through onnxruntime).

Both keep state between frames (WebRTC smooths its decisions, Silero is a recurrent net),
so one detector serves one audio stream: :func:`core.speech.engines.build_vad` gives a new
one per call, sharing what is heavy (Silero's ONNX session) across the process.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from core.speech.audio import frame_bytes
from core.speech.base import SAMPLE_RATE, SAMPLE_WIDTH, EngineUnavailableError, SpeechError

WEBRTC_FRAME_MS = (10, 20, 30)
SILERO_FRAME_SAMPLES = 512
"""Silero's frame at 16 kHz: 32 ms."""
_SILERO_CONTEXT = 64


class WebrtcVAD:
    """WebRTC's GMM voice activity detector on 10, 20 or 30 ms frames.

    ``aggressiveness`` 0 (keeps the most speech) to 3 (drops the most noise).
    """

    name = "webrtc"

    def __init__(self, *, aggressiveness: int = 2, frame_ms: int = 30) -> None:
        if frame_ms not in WEBRTC_FRAME_MS:
            raise ValueError(f"WebRTC VAD frames last 10, 20 or 30 ms, not {frame_ms}")
        if not 0 <= aggressiveness <= 3:
            raise ValueError(f"WebRTC VAD aggressiveness is 0 to 3, not {aggressiveness}")
        try:
            import webrtcvad
        except ImportError as exc:
            raise EngineUnavailableError(
                "AIMPACT_VOICE_VAD=webrtc needs the package webrtcvad-wheels (pip install webrtcvad-wheels)"
            ) from exc
        self._vad = webrtcvad.Vad(aggressiveness)
        self.frame_ms = frame_ms
        self.frame_bytes = frame_bytes(frame_ms)

    def is_speech(self, frame: bytes) -> bool:
        """Whether ``frame`` holds speech."""
        _check_frame(frame, self.frame_bytes)
        return bool(self._vad.is_speech(frame, SAMPLE_RATE))


class SileroModel:
    """Silero VAD v6's ONNX session (the file faster-whisper ships), loaded once and shared."""

    def __init__(self, path: Path) -> None:
        try:
            import onnxruntime
        except ImportError as exc:
            raise EngineUnavailableError(
                "AIMPACT_VOICE_VAD=silero needs the package onnxruntime (pip install onnxruntime)"
            ) from exc
        if not path.is_file():
            raise EngineUnavailableError(
                f"AIMPACT_VOICE_VAD=silero needs Silero's ONNX file {path} (from the faster-whisper package)"
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._lock = threading.Lock()

    @staticmethod
    def bundled_path() -> Path:
        """``faster_whisper/assets/silero_vad_v6.onnx``."""
        try:
            import faster_whisper
        except ImportError as exc:
            raise EngineUnavailableError(
                "AIMPACT_VOICE_VAD=silero takes its model from the package faster-whisper"
                " (pip install faster-whisper==1.2.1)"
            ) from exc
        return Path(faster_whisper.__file__).parent / "assets" / "silero_vad_v6.onnx"

    def run(self, window: np.ndarray[Any, Any], h: np.ndarray[Any, Any], c: np.ndarray[Any, Any]) -> tuple[Any, ...]:
        """One step: speech probabilities and the next recurrent state."""
        with self._lock:
            try:
                return tuple(self._session.run(None, {"input": window, "h": h, "c": c}))
            except Exception as exc:
                raise SpeechError(f"silero vad: {exc}") from exc


class SileroVAD:
    """Silero VAD on 32 ms frames (512 samples): speech when its probability reaches ``threshold``."""

    name = "silero"
    frame_ms = SILERO_FRAME_SAMPLES * 1000 / SAMPLE_RATE

    def __init__(self, model: SileroModel, *, threshold: float = 0.5) -> None:
        if not 0 < threshold < 1:
            raise ValueError(f"Silero VAD threshold is between 0 and 1, not {threshold}")
        self._model = model
        self.threshold = threshold
        self.frame_bytes = SILERO_FRAME_SAMPLES * SAMPLE_WIDTH
        self.reset()

    def reset(self) -> None:
        """Forget the stream so far (a new stream starts)."""
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_SILERO_CONTEXT, dtype=np.float32)

    def probability(self, frame: bytes) -> float:
        """Silero's speech probability for ``frame``."""
        _check_frame(frame, self.frame_bytes)
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32) / np.float32(32768.0)
        window = np.concatenate([self._context, samples])[np.newaxis, :]
        probs, self._h, self._c = self._model.run(window, self._h, self._c)
        self._context = samples[-_SILERO_CONTEXT:]
        return float(np.asarray(probs).reshape(-1)[0])

    def is_speech(self, frame: bytes) -> bool:
        """Whether ``frame`` holds speech."""
        return self.probability(frame) >= self.threshold


def _check_frame(frame: bytes, size: int) -> None:
    if len(frame) != size:
        raise ValueError(f"a frame of this detector holds {size} bytes, not {len(frame)}")
