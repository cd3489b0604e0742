"""Speech engines loaded once per test session, and audio made at test time."""

from __future__ import annotations

import io
import math
import struct
import wave

import numpy as np
import pytest

from core.settings import Settings
from core.speech.base import SAMPLE_RATE, Audio
from core.speech.engines import build_stt
from core.speech.espeak import EspeakTTS
from core.speech.whisper import WhisperSTT


@pytest.fixture(scope="session")
def espeak() -> EspeakTTS:
    """eSpeak NG, the default text to speech (and the source of the spoken test audio)."""
    return EspeakTTS()


@pytest.fixture(scope="session")
def whisper() -> WhisperSTT:
    """Whisper tiny.en as the default settings build it: loaded once per process (a few seconds)."""
    stt = build_stt(Settings())
    assert isinstance(stt, WhisperSTT)
    return stt


def silence(seconds: float) -> Audio:
    """Digital silence at 16 kHz."""
    return Audio(b"\x00\x00" * int(SAMPLE_RATE * seconds))


def noise(seconds: float, *, dbfs: float = -70.0, seed: int = 7) -> Audio:
    """Quiet white noise (a room without speech)."""
    rng = np.random.default_rng(seed)
    amplitude = 10 ** (dbfs / 20) * 32768
    samples = np.clip(rng.normal(0, amplitude, int(SAMPLE_RATE * seconds)), -32768, 32767)
    return Audio(samples.astype("<i2").tobytes())


def concat(*parts: Audio) -> Audio:
    """``parts`` one after the other."""
    return Audio(b"".join(p.pcm for p in parts))


def sine(freq: float, seconds: float, rate: int, *, amplitude: float = 0.5) -> np.ndarray:
    """A sine wave as float samples."""
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * np.sin(2 * math.pi * freq * t)


def pcm_wav(samples: np.ndarray, *, rate: int, bits: int = 16, channels: int = 1) -> bytes:
    """A PCM WAV (``wave`` writes the plain ``WAVE_FORMAT_PCM`` header); ``samples`` shape (n,) or (n, channels)."""
    data = samples.reshape(len(samples), channels)
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(bits // 8)
        writer.setframerate(rate)
        writer.writeframes(encode_samples(data.reshape(-1), bits))
    return out.getvalue()


def encode_samples(samples: np.ndarray, bits: int) -> bytes:
    """Float samples in [-1, 1) as little-endian integer PCM of ``bits`` bits (8-bit is unsigned)."""
    scale = 2 ** (bits - 1)
    ints = np.clip(np.rint(samples * scale), -scale, scale - 1).astype(np.int64)
    if bits == 8:
        return (ints + 128).astype(np.uint8).tobytes()
    if bits == 24:
        raw = (ints & 0xFFFFFF).astype("<u4").view(np.uint8).reshape(-1, 4)[:, :3]
        return raw.tobytes()
    return ints.astype("<i2" if bits == 16 else "<i4").tobytes()


def riff(fmt_chunk: bytes, data: bytes, *, extra_chunks: bytes = b"") -> bytes:
    """A RIFF/WAVE file from a raw ``fmt `` chunk body and data."""
    body = b"WAVE" + _chunk(b"fmt ", fmt_chunk) + extra_chunks + _chunk(b"data", data)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _chunk(name: bytes, payload: bytes) -> bytes:
    return name + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) % 2 else b"")


def fmt_chunk(*, tag: int, channels: int, rate: int, bits: int, subformat: int | None = None) -> bytes:
    """A ``fmt `` chunk; ``subformat`` makes it ``WAVE_FORMAT_EXTENSIBLE`` with that sub-format."""
    block = channels * bits // 8
    head = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    if subformat is None:
        return head
    guid = struct.pack("<H", subformat) + bytes.fromhex("000000001000800000aa00389b71")
    return head + struct.pack("<HHI", 22, bits, 0) + guid
