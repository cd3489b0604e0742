"""WAV in (any PCM rate, width and channel count), the one audio shape out, and the refusals."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from core.speech.audio import (
    AudioTooLongError,
    FrameBuffer,
    InvalidAudioError,
    UnsupportedAudioError,
    check_duration,
    decode_wav,
    encode_wav,
    frame_bytes,
    frames,
    is_silent,
    resample,
    rms_dbfs,
    to_float,
)
from core.speech.base import SAMPLE_RATE, Audio
from tests.speech.conftest import encode_samples, fmt_chunk, noise, pcm_wav, riff, silence, sine


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    """The frequency of the strongest bin of a Hann-windowed spectrum."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


@pytest.mark.parametrize(
    ("rate", "bits", "channels"),
    [(8000, 16, 1), (44_100, 16, 1), (44_100, 16, 2), (48_000, 24, 1), (22_050, 8, 1), (32_000, 32, 2)],
)
def test_pcm_wavs_become_16k_mono_with_their_tone_and_length(rate: int, bits: int, channels: int) -> None:
    tone = sine(440.0, 1.5, rate, amplitude=0.4)
    samples = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    audio = decode_wav(pcm_wav(samples, rate=rate, bits=bits, channels=channels))

    assert audio.duration_s == pytest.approx(1.5, abs=1 / rate + 1 / SAMPLE_RATE)
    decoded = to_float(audio)
    assert dominant_hz(decoded, SAMPLE_RATE) == pytest.approx(440.0, abs=1.0)
    middle = decoded[SAMPLE_RATE // 4 : -SAMPLE_RATE // 4]  # away from the filter's edges
    assert np.max(np.abs(middle)) == pytest.approx(0.4, abs=0.02 if bits == 8 else 0.005)


def test_stereo_is_the_mean_of_its_channels() -> None:
    left = sine(300.0, 1.0, 16_000, amplitude=0.6)
    right = np.zeros_like(left)
    decoded = to_float(decode_wav(pcm_wav(np.stack([left, right], axis=1), rate=16_000, channels=2)))
    assert np.max(np.abs(decoded)) == pytest.approx(0.3, abs=0.001)


def test_16k_mono_16bit_passes_through_unchanged() -> None:
    pcm = encode_samples(sine(1000.0, 0.5, SAMPLE_RATE), 16)
    assert decode_wav(pcm_wav(sine(1000.0, 0.5, SAMPLE_RATE), rate=SAMPLE_RATE)).pcm == pcm


def test_24bit_extensible_with_more_chunks_decodes() -> None:
    tone = sine(1000.0, 0.5, 48_000, amplitude=0.25)
    fmt = fmt_chunk(tag=0xFFFE, channels=1, rate=48_000, bits=24, subformat=1)
    body = riff(fmt, encode_samples(tone, 24), extra_chunks=b"LIST" + struct.pack("<I", 3) + b"abc\x00")
    decoded = to_float(decode_wav(body))
    assert dominant_hz(decoded, SAMPLE_RATE) == pytest.approx(1000.0, abs=1.0)
    assert np.max(np.abs(decoded[2000:-2000])) == pytest.approx(0.25, abs=0.005)


def test_a_streamed_wav_with_unknown_data_length_decodes_what_arrived() -> None:
    data = encode_samples(sine(500.0, 0.25, SAMPLE_RATE), 16)
    body = bytearray(riff(fmt_chunk(tag=1, channels=1, rate=SAMPLE_RATE, bits=16), data))
    data_size_at = body.index(b"data") + 4
    body[data_size_at : data_size_at + 4] = b"\xff\xff\xff\xff"
    body[4:8] = b"\xff\xff\xff\xff"
    assert decode_wav(bytes(body)).pcm == data


def test_resampling_keeps_frequency_and_filters_what_16k_cannot_hold() -> None:
    rate = 44_100
    kept = resample(sine(3000.0, 1.0, rate).astype(np.float32), rate, SAMPLE_RATE)
    assert dominant_hz(kept, SAMPLE_RATE) == pytest.approx(3000.0, abs=1.0)
    assert len(kept) == SAMPLE_RATE
    # 10 kHz is above 16 kHz's Nyquist frequency: it must not fold back to 6 kHz
    folded = resample(sine(10_000.0, 1.0, rate).astype(np.float32), rate, SAMPLE_RATE)
    assert np.sqrt(np.mean(folded**2)) < 0.01 * np.sqrt(np.mean(kept**2))
    up = resample(sine(440.0, 1.0, 8000).astype(np.float32), 8000, SAMPLE_RATE)
    assert dominant_hz(up, SAMPLE_RATE) == pytest.approx(440.0, abs=1.0)


@pytest.mark.parametrize("rate", [8000, 11_025, 22_050, 24_000, 44_100, 48_000, 96_000, 44_101])
def test_resampling_equals_scipy_resample_poly(rate: int) -> None:
    signal = pytest.importorskip("scipy.signal")
    samples = np.random.default_rng(rate).normal(0, 0.2, rate + 17).astype(np.float32)
    divisor = math.gcd(rate, SAMPLE_RATE)
    expected = signal.resample_poly(samples.astype(np.float64), SAMPLE_RATE // divisor, rate // divisor)
    ours = resample(samples, rate, SAMPLE_RATE)
    assert ours.shape == expected.shape
    assert np.max(np.abs(ours - expected)) < 1e-5


def test_an_empty_wav_is_empty_audio() -> None:
    audio = decode_wav(pcm_wav(np.zeros(0), rate=44_100))
    assert audio.pcm == b""
    assert is_silent(audio)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "empty"),
        (b"hello, this is plain text and not audio at all", "not a WAV"),
        (b"OggS\x00\x02" + b"\x00" * 40, "Ogg"),
        (b"ID3\x04" + b"\x00" * 40, "MP3"),
        (b"\x00\x00\x00\x20ftypM4A " + b"\x00" * 40, "MP4"),
        (riff(fmt_chunk(tag=3, channels=1, rate=16_000, bits=32), b"\x00" * 64), "IEEE float"),
        (riff(fmt_chunk(tag=0xFFFE, channels=1, rate=16_000, bits=32, subformat=3), b"\x00" * 64), "IEEE float"),
        (riff(fmt_chunk(tag=7, channels=1, rate=8000, bits=8), b"\x00" * 64), "µ-law"),
        (riff(fmt_chunk(tag=0x55, channels=2, rate=44_100, bits=0), b"\x00" * 64), "MP3"),
        (riff(fmt_chunk(tag=1, channels=1, rate=16_000, bits=12), b"\x00" * 64), "12-bit"),
    ],
)
def test_what_is_not_integer_pcm_wav_is_unsupported_and_named(body: bytes, words: str) -> None:
    with pytest.raises(UnsupportedAudioError, match=words):
        decode_wav(body)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (riff(fmt_chunk(tag=1, channels=0, rate=16_000, bits=16), b""), "0 channels"),
        (riff(fmt_chunk(tag=1, channels=1, rate=100, bits=16), b"\x00" * 8), "100 Hz"),
        (b"RIFF\x04\x00\x00\x00WAVE", "no fmt chunk"),
        (b"RIFF\x04\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00", "truncated"),
        (b"RIFF\x14\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + fmt_chunk(tag=1, channels=1, rate=8000, bits=16), "no data"),
    ],
)
def test_a_pcm_wav_that_cannot_be_used_is_invalid_and_named(body: bytes, words: str) -> None:
    with pytest.raises(InvalidAudioError, match=words):
        decode_wav(body)


def test_the_length_limit_is_checked_from_the_header() -> None:
    body = pcm_wav(sine(200.0, 3.0, 8000), rate=8000)
    with pytest.raises(AudioTooLongError, match=r"3\.0 s, longer than the 2 s") as caught:
        decode_wav(body, max_duration_s=2.0)
    assert caught.value.duration_s == pytest.approx(3.0)
    assert decode_wav(body, max_duration_s=3.0).duration_s == pytest.approx(3.0)
    check_duration(1.0, 1.0)
    with pytest.raises(AudioTooLongError):
        check_duration(1.01, 1.0)


def test_encoding_round_trips() -> None:
    audio = decode_wav(pcm_wav(sine(700.0, 0.3, 22_050), rate=22_050))
    assert decode_wav(encode_wav(audio)) == audio


def test_frames_and_the_frame_buffer_cut_whole_frames() -> None:
    size = frame_bytes(30)
    assert size == 960
    pcm = bytes(range(256)) * 10  # 2560 bytes: two frames and a tail
    assert list(frames(pcm, size)) == [pcm[:960], pcm[960:1920]]

    buffer = FrameBuffer(size)
    out: list[bytes] = []
    for start in range(0, len(pcm), 333):  # chunks that do not line up with frames
        out += buffer.push(pcm[start : start + 333])
    assert out == [pcm[:960], pcm[960:1920]]
    assert buffer.pending == 640
    with pytest.raises(ValueError, match="even"):
        FrameBuffer(3)


def test_levels_tell_silence_from_sound() -> None:
    assert rms_dbfs(silence(0.5)) == float("-inf")
    assert is_silent(silence(0.5))
    assert is_silent(noise(0.5, dbfs=-70))
    assert not is_silent(noise(0.5, dbfs=-40))
    full_scale_sine = Audio(encode_samples(sine(1000.0, 1.0, SAMPLE_RATE, amplitude=0.999), 16))
    assert rms_dbfs(full_scale_sine) == pytest.approx(-3.0, abs=0.1)
