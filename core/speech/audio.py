"""Audio in and out of the platform's one shape (:class:`~core.speech.base.Audio`).

WAV bodies are decoded here: integer PCM of 8, 16, 24 or 32 bits, any rate and channel
count, mixed to mono and resampled to 16 kHz (polyphase, anti-aliased). Anything else is
refused with an :class:`AudioError` that names the problem: :class:`UnsupportedAudioError`
for what is not a PCM WAV at all (another container, float or compressed samples), and
:class:`InvalidAudioError` for a PCM WAV that cannot be used (no data chunk, no channels).
The RIFF chunks are read here rather than by :mod:`wave`, which in Python 3.11 refuses
``WAVE_FORMAT_EXTENSIBLE`` (what many tools write for 24-bit or multichannel PCM) and
tells float apart from compressed only by a number in a message.
"""

from __future__ import annotations

import functools
import io
import math
import struct
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.speech.base import SAMPLE_RATE, SAMPLE_WIDTH, Audio

FloatArray = np.ndarray[Any, np.dtype[np.float32]]

MIN_RATE = 4_000
MAX_RATE = 384_000
MAX_CHANNELS = 32

_PCM = 0x0001
_FLOAT = 0x0003
_EXTENSIBLE = 0xFFFE
_FORMAT_NAMES = {
    0x0002: "Microsoft ADPCM",
    0x0003: "IEEE float",
    0x0006: "A-law",
    0x0007: "µ-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0055: "MP3",
    0x00FF: "AAC",
    0x1610: "AAC",
    0xF1AC: "FLAC",
}
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
"""The last 14 bytes of every ``KSDATAFORMAT_SUBTYPE_*`` GUID; the first two hold the format code."""


class AudioError(ValueError):
    """Audio that cannot be used as given; the message names the problem."""


class UnsupportedAudioError(AudioError):
    """Not a PCM WAV: another container, or samples that are float or compressed."""


class InvalidAudioError(AudioError):
    """A PCM WAV that cannot be used: truncated headers, no data, no channels, an absurd rate."""


class AudioTooLongError(AudioError):
    """Audio longer than allowed."""

    def __init__(self, duration_s: float, max_s: float) -> None:
        super().__init__(f"audio lasts {duration_s:.1f} s, longer than the {max_s:g} s allowed")
        self.duration_s = duration_s
        self.max_s = max_s


@dataclass(frozen=True, slots=True)
class WavFormat:
    """What a WAV header says about its samples."""

    rate: int
    channels: int
    bits: int

    @property
    def frame_bytes(self) -> int:
        """Bytes of one sample of every channel."""
        return self.channels * (self.bits // 8)


def decode_wav(body: bytes, *, max_duration_s: float | None = None) -> Audio:
    """The 16 kHz mono PCM16 audio of a WAV file.

    Raises:
        UnsupportedAudioError: not a RIFF/WAVE file, or samples that are not integer PCM.
        InvalidAudioError: a WAV whose header or data cannot be used.
        AudioTooLongError: longer than ``max_duration_s`` (checked from the header, before decoding).
    """
    fmt, data = _parse_riff(body)
    frames = len(data) // fmt.frame_bytes
    if max_duration_s is not None:
        check_duration(frames / fmt.rate, max_duration_s)
    data = data[: frames * fmt.frame_bytes]
    if fmt.rate == SAMPLE_RATE and fmt.channels == 1 and fmt.bits == 16:
        return Audio(bytes(data))
    samples = _to_float(data, fmt)
    return Audio(to_pcm16(resample(samples, fmt.rate, SAMPLE_RATE)))


def check_duration(duration_s: float, max_s: float) -> None:
    """Raise :class:`AudioTooLongError` when ``duration_s`` exceeds ``max_s``."""
    if duration_s > max_s:
        raise AudioTooLongError(duration_s, max_s)


def _parse_riff(body: bytes) -> tuple[WavFormat, memoryview]:
    if len(body) < 12 or body[:4] not in (b"RIFF", b"RIFX", b"RF64") or body[8:12] != b"WAVE":
        raise UnsupportedAudioError(_not_wav_reason(body))
    if body[:4] != b"RIFF":
        raise UnsupportedAudioError(f"{body[:4].decode()} WAV files are not supported; send a RIFF WAV")
    view = memoryview(body)
    fmt: WavFormat | None = None
    offset = 12
    while offset + 8 <= len(body):
        chunk_id = bytes(view[offset : offset + 4])
        (size,) = struct.unpack_from("<I", body, offset + 4)
        start = offset + 8
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(bytes(view[start : start + size]))
        elif chunk_id == b"data":
            if fmt is None:
                raise InvalidAudioError("the WAV has its data chunk before its fmt chunk")
            return fmt, view[start : min(start + size, len(body))]
        offset = start + size + (size & 1)
    if fmt is None:
        raise InvalidAudioError("the WAV has no fmt chunk (sample rate, channels, sample size)")
    raise InvalidAudioError("the WAV has no data chunk")


def _not_wav_reason(body: bytes) -> str:
    if not body:
        return "the body is empty, not a WAV file"
    for magic, name in ((b"OggS", "Ogg"), (b"fLaC", "FLAC"), (b"ID3", "MP3"), (b"\x1aE\xdf\xa3", "WebM/Matroska")):
        if body.startswith(magic):
            return f"this is {name} audio, not a WAV file; send 16-bit PCM WAV"
    if body[4:8] == b"ftyp":
        return "this is MP4/M4A audio, not a WAV file; send 16-bit PCM WAV"
    return "not a WAV file (no RIFF/WAVE header); send 16-bit PCM WAV"


def _parse_fmt(chunk: bytes) -> WavFormat:
    if len(chunk) < 16:
        raise InvalidAudioError("the WAV fmt chunk is truncated")
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", chunk)
    if tag == _EXTENSIBLE and len(chunk) >= 40 and chunk[26:40] == _GUID_TAIL:
        (tag,) = struct.unpack_from("<H", chunk, 24)
    if tag != _PCM:
        name = _FORMAT_NAMES.get(tag, f"format 0x{tag:04x}")
        kind = "float" if tag == _FLOAT else "compressed"
        raise UnsupportedAudioError(f"the WAV holds {name} ({kind}) samples; send integer PCM (8, 16, 24 or 32-bit)")
    if bits not in (8, 16, 24, 32):
        raise UnsupportedAudioError(f"the WAV holds {bits}-bit samples; send 8, 16, 24 or 32-bit PCM")
    if not 1 <= channels <= MAX_CHANNELS:
        raise InvalidAudioError(f"the WAV declares {channels} channels; 1 to {MAX_CHANNELS} are accepted")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise InvalidAudioError(
            f"the WAV declares a sample rate of {rate} Hz; {MIN_RATE} to {MAX_RATE} Hz are accepted"
        )
    return WavFormat(rate=rate, channels=channels, bits=bits)


def _to_float(data: memoryview, fmt: WavFormat) -> FloatArray:
    """Mono samples in [-1, 1): the channels' mean."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if fmt.bits == 8:
        values = raw.astype(np.float32) - 128.0
    elif fmt.bits == 24:
        triples = raw.reshape(-1, 3).astype(np.int32)
        packed = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        values = ((packed ^ 0x800000) - 0x800000).astype(np.float32)
    else:
        values = np.frombuffer(data, dtype="<i2" if fmt.bits == 16 else "<i4").astype(np.float32)
    mono = values.reshape(-1, fmt.channels).mean(axis=1, dtype=np.float32)
    return np.asarray(mono / np.float32(2 ** (fmt.bits - 1)), dtype=np.float32)


def resample(samples: FloatArray, from_rate: int, to_rate: int) -> FloatArray:
    """``samples`` at ``to_rate``: polyphase filtering with a Kaiser-windowed sinc low-pass against aliasing.

    The filter and the alignment are SciPy's ``resample_poly`` defaults (cut-off at the lower
    rate's Nyquist frequency, ``10 * max(up, down)`` taps a side, Kaiser beta 5), computed here
    with NumPy one output phase at a time.
    """
    if from_rate == to_rate or samples.size == 0:
        return samples
    divisor = math.gcd(from_rate, to_rate)
    up, down = to_rate // divisor, from_rate // divisor
    bank, half = _polyphase_bank(up, down)
    taps = bank.shape[1]
    n_out = -(-samples.size * up // down)
    padded = np.concatenate([np.zeros(taps), samples.astype(np.float64), np.zeros(taps + 1)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, taps)
    out = np.empty(n_out, dtype=np.float64)
    for first in range(min(up, n_out)):
        base, phase = divmod(first * down + half, up)
        count = len(range(first, n_out, up))
        for block in range(0, count, _BLOCK):
            stop = min(count, block + _BLOCK)
            rows = windows[base + 1 + block * down : base + 1 + (stop - 1) * down + 1 : down]
            out[first + block * up : first + stop * up : up] = rows @ bank[phase]
    return out.astype(np.float32)


_BLOCK = 16_384
"""Output samples of one phase computed at once (bounds the temporary copy of strided windows)."""


@functools.lru_cache(maxsize=8)
def _polyphase_bank(up: int, down: int) -> tuple[np.ndarray[Any, np.dtype[np.float64]], int]:
    """The low-pass split into ``up`` phases, each reversed for a dot product with a window; and its half length."""
    max_rate = max(up, down)
    half = 10 * max_rate
    offsets = np.arange(2 * half + 1) - half
    cutoff = 1.0 / max_rate
    kernel = cutoff * np.sinc(cutoff * offsets) * np.kaiser(2 * half + 1, 5.0)
    kernel *= up / kernel.sum()
    taps = -(-kernel.size // up)
    bank = np.zeros(taps * up)
    bank[: kernel.size] = kernel
    return np.ascontiguousarray(bank.reshape(taps, up).T[:, ::-1]), half


def to_pcm16(samples: FloatArray) -> bytes:
    """Float samples in [-1, 1] as PCM16 little-endian (clipped, rounded)."""
    scaled = np.clip(np.rint(samples * 32768.0), -32768, 32767)
    return bytes(scaled.astype("<i2").tobytes())


def to_float(audio: Audio) -> FloatArray:
    """The samples of ``audio`` as float32 in [-1, 1)."""
    return np.frombuffer(audio.pcm, dtype="<i2").astype(np.float32) / np.float32(32768.0)


def from_pcm16(pcm: bytes, rate: int) -> Audio:
    """Mono PCM16 at ``rate`` as :class:`Audio` (resampled to 16 kHz when needed)."""
    if rate == SAMPLE_RATE:
        return Audio(pcm)
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / np.float32(32768.0)
    return Audio(to_pcm16(resample(samples, rate, SAMPLE_RATE)))


def encode_wav(audio: Audio) -> bytes:
    """``audio`` as a 16 kHz mono 16-bit PCM WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(SAMPLE_WIDTH)
        writer.setframerate(SAMPLE_RATE)
        writer.writeframes(audio.pcm)
    return out.getvalue()


def frame_bytes(frame_ms: int) -> int:
    """Bytes of a ``frame_ms`` frame of :class:`Audio`."""
    return SAMPLE_RATE * SAMPLE_WIDTH * frame_ms // 1000


def frames(pcm: bytes, size: int) -> Iterator[bytes]:
    """The whole ``size``-byte frames of ``pcm``, in order (a shorter tail is left out)."""
    for start in range(0, len(pcm) - size + 1, size):
        yield pcm[start : start + size]


class FrameBuffer:
    """Cuts a stream of PCM16 chunks of any length into frames of ``size`` bytes."""

    def __init__(self, size: int) -> None:
        if size <= 0 or size % SAMPLE_WIDTH:
            raise ValueError("a frame holds a positive, even number of bytes")
        self.size = size
        self._pending = bytearray()

    def push(self, chunk: bytes) -> list[bytes]:
        """The frames completed by ``chunk``; what is left waits for the next chunk."""
        self._pending += chunk
        whole = len(self._pending) - len(self._pending) % self.size
        out = [bytes(self._pending[i : i + self.size]) for i in range(0, whole, self.size)]
        del self._pending[:whole]
        return out

    @property
    def pending(self) -> int:
        """Bytes waiting for a frame to complete."""
        return len(self._pending)


def rms_dbfs(audio: Audio) -> float:
    """Root-mean-square level in dB relative to full scale (``-inf`` for empty or digital silence)."""
    if not audio.pcm:
        return -math.inf
    samples = to_float(audio).astype(np.float64)
    power = float(np.mean(samples * samples))
    return 10 * math.log10(power) if power > 0 else -math.inf


def is_silent(audio: Audio, *, threshold_dbfs: float = -60.0) -> bool:
    """Whether ``audio`` is empty or quieter than ``threshold_dbfs`` overall."""
    return rms_dbfs(audio) < threshold_dbfs


def without_leading_zeros(audio: Audio) -> Audio:
    """``audio`` from its first sample that is not exactly zero (digital silence before speech throws Whisper
    off its first words; a microphone's quiet noise does not)."""
    samples = np.frombuffer(audio.pcm, dtype="<i2")
    nonzero = np.flatnonzero(samples)
    return Audio(audio.pcm[int(nonzero[0]) * 2 :]) if nonzero.size else Audio(b"")
