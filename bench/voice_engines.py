"""Speech engines called directly: per-call latency and real-time factor on 3-second utterances.

Utterances are everyday requests spoken by eSpeak NG and padded with quiet room noise to
3.0 s. Each STT engine transcribes every utterance (one warm-up call first); each TTS engine
speaks texts that last about 3 s; each VAD classifies every frame of the utterances. The
real-time factor (RTF) is processing time over audio time (below 1: faster than real time).

Baselines in the same run: the libraries without the platform's engine classes — faster-whisper's
``WhisperModel.transcribe`` on the same samples, and eSpeak NG's synthesis at its own 22,050 Hz
before resampling — so the classes' own cost (conversion, resampling, silence checks) shows.

``stt_figures``, ``tts_figures`` and ``spoken_utterances`` are what ``bench/voice.py`` reuses to put
the engines' time next to the platform's.

Usage: ``flock /tmp/bench.lock python -m bench.voice_engines [--rounds N] [--piper]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import numpy as np

from core.settings import Settings
from core.speech.audio import frames, to_float
from core.speech.base import SAMPLE_RATE, Audio, SpeechToText, TextToSpeech
from core.speech.engines import build_stt, build_tts, build_vad
from core.speech.espeak import EspeakTTS
from core.speech.pocketsphinx_stt import PocketsphinxSTT
from core.speech.wer import word_error_rate
from core.speech.whisper import WhisperSTT

T = TypeVar("T")
UTTERANCE_S = 3.0
REQUESTS = (
    "Please turn off the lights in the kitchen and the hall.",
    "What will the weather be like in London tomorrow?",
    "Remind me to call my sister after the meeting today.",
    "Play some quiet music in the living room please.",
    "How long does it take to drive to the airport now?",
    "Add milk and bread and eggs to my shopping list.",
    "Book a table for two at the Italian place tonight.",
    "Send a message to Anna saying that I will be late.",
)
"""Requests that eSpeak NG speaks in 2.2 to 3.0 s at 175 words per minute."""


@dataclass(frozen=True)
class Utterance:
    """A spoken request, 3.0 s long, and its words."""

    text: str
    audio: Audio
    speech_end_s: float = 0.0
    """Where the speech ends in ``audio`` (quiet noise follows)."""


@dataclass(frozen=True)
class Figures:
    """Per-call latency and real-time factor of one engine over a set of calls."""

    name: str
    calls: int
    p50_ms: float
    p95_ms: float
    rtf: float
    cpu_ms: float
    """Mean CPU time of a call, over every thread of the process (what a busy machine does not inflate)."""
    note: str = ""

    def row(self) -> str:
        """One line of the printed table."""
        return (
            f"{self.name:<34} {self.calls:>5} {self.p50_ms:>9.1f} {self.p95_ms:>9.1f} {self.rtf:>7.3f}"
            f" {self.cpu_ms:>8.1f}  {self.note}"
        )


HEADER = f"{'engine':<34} {'calls':>5} {'p50 ms':>9} {'p95 ms':>9} {'RTF':>7} {'CPU ms':>8}"


def spoken_utterances(tts: EspeakTTS, *, seconds: float = UTTERANCE_S) -> list[Utterance]:
    """The requests spoken by ``tts``, each centred in quiet noise (-60 dBFS) to ``seconds``."""
    rng = np.random.default_rng(3)
    out = []
    for text in REQUESTS:
        speech = tts.synthesize(text).pcm
        total = int(seconds * SAMPLE_RATE) * 2
        if len(speech) > total:
            raise ValueError(f"{text!r} lasts more than {seconds} s")
        room = np.clip(rng.normal(0, 32768 * 10 ** (-60 / 20), total // 2), -32768, 32767).astype("<i2").tobytes()
        lead = (total - len(speech)) // 4 * 2
        audio = Audio(room[:lead] + speech + room[lead + len(speech) :])
        out.append(Utterance(text, audio, speech_end_s=(lead + len(speech)) / (SAMPLE_RATE * 2)))
    return out


@dataclass
class _Timing:
    seconds: list[float]
    cpu_s: float


def _timed(calls: Sequence[Callable[[], T]]) -> tuple[_Timing, list[T]]:
    timing = _Timing([], 0.0)
    results: list[T] = []
    cpu = time.process_time()
    for call in calls:
        started = time.perf_counter()
        results.append(call())
        timing.seconds.append(time.perf_counter() - started)
    timing.cpu_s = time.process_time() - cpu
    return timing, results


def _figures(name: str, timing: _Timing, audio_s: float, note: str = "") -> Figures:
    seconds = timing.seconds
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    median = statistics.median(seconds)
    cpu_ms = timing.cpu_s / len(seconds) * 1000
    return Figures(name, len(seconds), median * 1000, p95 * 1000, sum(seconds) / audio_s, cpu_ms, note)


def stt_figures(
    name: str, transcribe: Callable[[Audio], str], utterances: Sequence[Utterance], *, rounds: int = 1
) -> Figures:
    """Latency and RTF of transcribing every utterance ``rounds`` times (after one warm-up call), with the WER."""
    transcribe(utterances[0].audio)
    timing, texts = _timed([partial(transcribe, u.audio) for _ in range(rounds) for u in utterances])
    references = [u.text for _ in range(rounds) for u in utterances]
    wer = word_error_rate(list(zip(references, texts, strict=True)))
    audio_s = sum(u.audio.duration_s for u in utterances) * rounds
    return _figures(name, timing, audio_s, f"WER {wer:.1%}")


def tts_figures(name: str, speak: Callable[[str], float], texts: Sequence[str], *, rounds: int = 1) -> Figures:
    """Latency and RTF of speaking every text ``rounds`` times (after one warm-up call); ``speak`` answers the
    seconds of audio it made."""
    speak(texts[0])
    timing, durations = _timed([partial(speak, t) for _ in range(rounds) for t in texts])
    audio_s = sum(durations)
    return _figures(name, timing, audio_s, f"{audio_s / len(durations):.2f} s of audio a call")


def vad_figures(name: str, settings: Settings, utterances: Sequence[Utterance]) -> Figures:
    """Time to classify every frame of each utterance with a fresh detector."""

    def classify(audio: Audio) -> None:
        vad = build_vad(settings)
        for frame in frames(audio.pcm, vad.frame_bytes):
            vad.is_speech(frame)

    timing, _ = _timed([partial(classify, u.audio) for u in utterances])
    return _figures(name, timing, sum(u.audio.duration_s for u in utterances))


def transcriber(stt: SpeechToText) -> Callable[[Audio], str]:
    """A call of ``stt`` that answers the words."""
    return lambda audio: stt.transcribe(audio).text


def speaker_seconds(tts: TextToSpeech) -> Callable[[str], float]:
    """A call of ``tts`` that answers the length of the audio it made."""
    return lambda text: tts.synthesize(text).duration_s


def _raw_espeak(tts: EspeakTTS) -> Callable[[str], float]:
    """eSpeak NG's synthesis at 22,050 Hz through the same library handle, without resampling."""
    library = tts._load()

    def speak(text: str) -> float:
        encoded = text.encode()
        library.chunks = []
        library.lib.espeak_Synth(encoded, len(encoded) + 1, 0, 1, 0, 1, None, None)
        return float(sum(len(c) for c in library.chunks) / 2 / library.rate)

    return speak


def _raw_whisper(stt: WhisperSTT) -> Callable[[Audio], str]:
    """faster-whisper's own call on the same float samples and options."""

    def transcribe(audio: Audio) -> str:
        segments, _ = stt._model.transcribe(
            to_float(audio), language="en", beam_size=5, condition_on_previous_text=False, without_timestamps=True
        )
        return " ".join(s.text.strip() for s in segments)

    return transcribe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the 8 utterances per engine")
    parser.add_argument("--piper", action="store_true", help="also Piper (needs the GPL extra: aimpact[piper])")
    args = parser.parse_args()

    espeak = build_tts(Settings())
    assert isinstance(espeak, EspeakTTS)
    utterances = spoken_utterances(espeak)
    loads: list[str] = []

    started = time.perf_counter()
    whisper = build_stt(Settings())
    assert isinstance(whisper, WhisperSTT)
    loads.append(f"whisper tiny.en int8 load: {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    greedy = WhisperSTT(beam_size=1)
    loads.append(f"whisper tiny.en greedy load: {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    sphinx = PocketsphinxSTT(phrases=REQUESTS)
    loads.append(f"pocketsphinx (domain LM of the 8 requests) load: {time.perf_counter() - started:.2f} s")

    stt_rows = [
        stt_figures("baseline: faster-whisper beam 5", _raw_whisper(whisper), utterances, rounds=args.rounds),
        stt_figures("whisper beam 5 (default)", transcriber(whisper), utterances, rounds=args.rounds),
        stt_figures("whisper greedy (beam 1)", transcriber(greedy), utterances, rounds=args.rounds),
        stt_figures("pocketsphinx, domain LM", transcriber(sphinx), utterances, rounds=args.rounds),
    ]
    tts_rows = [
        tts_figures("baseline: espeak-ng 22.05 kHz", _raw_espeak(espeak), REQUESTS, rounds=args.rounds),
        tts_figures("espeak (default, 16 kHz)", speaker_seconds(espeak), REQUESTS, rounds=args.rounds),
    ]
    if args.piper:
        started = time.perf_counter()
        piper = build_tts(Settings(voice_tts="piper"))
        loads.append(f"piper joe-medium load: {time.perf_counter() - started:.2f} s")
        tts_rows.append(tts_figures("piper joe-medium (16 kHz)", speaker_seconds(piper), REQUESTS, rounds=args.rounds))
    vad_rows = [
        vad_figures("webrtc, 30 ms frames (default)", Settings(voice_vad="webrtc"), utterances),
        vad_figures("silero v6, 32 ms frames", Settings(voice_vad="silero"), utterances),
    ]

    seconds = [u.audio.duration_s for u in utterances]
    print(
        f"\n{len(utterances)} utterances of {min(seconds):.1f}-{max(seconds):.1f} s, {args.rounds} rounds each;"
        f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print("\n".join(loads))
    for title, rows in (("speech to text", stt_rows), ("text to speech", tts_rows), ("voice activity", vad_rows)):
        print(f"\n{title}\n{HEADER}")
        print("\n".join(row.row() for row in rows))


if __name__ == "__main__":
    main()
