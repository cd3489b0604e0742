"""Speech to text with PocketSphinx 5 (CMU, BSD): light and fast, accurate only within a domain.

With a language model built from the phrases a deployment expects (``pocketsphinx.lm.ArpaBoLM``:
a trigram model with fixed back-off) it recognises those phrases and their recombinations
well; on open speech its general English model is poor. The acoustic model and the
dictionary ship inside the package.
"""

from __future__ import annotations

import io
import re
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from core.speech.audio import is_silent
from core.speech.base import SAMPLE_RATE, Audio, EngineUnavailableError, SpeechError, Transcript

_INSTALL = "pip install 'pocketsphinx==5.1.1'"
log = structlog.get_logger(__name__)
_DITHER_LSB = 4
"""Dither amplitude in PCM16 steps (about -80 dBFS): PocketSphinx's log-energy features break down on
stretches of exact digital silence (synthetic speech, muted microphones); on eSpeak NG speech, WER
falls from about 40% to under 10% with it."""
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def normalise_phrase(text: str) -> str:
    """Lower-case words of ``text`` without punctuation (as the language model and the dictionary spell them)."""
    return " ".join(_WORD.findall(text.lower()))


def domain_language_model(lines: Sequence[str]) -> str:
    """An ARPA trigram language model of ``lines`` (normalised phrases, each a sentence the users may say)."""
    from pocketsphinx.lm import ArpaBoLM

    if not any(lines):
        raise ValueError("a domain language model needs at least one phrase with words")
    model = ArpaBoLM(text="\n".join(line for line in lines if line), add_start=True)
    model.compute()
    out = io.StringIO()
    model.write(out)
    return out.getvalue()


def dictionary_entries(words: set[str], dictionary: Path) -> tuple[list[str], set[str]]:
    """The pronunciations of ``words`` in a CMU-format ``dictionary``, and the words it lacks."""
    entries: list[str] = []
    found: set[str] = set()
    with dictionary.open(encoding="utf-8") as lines:
        for line in lines:
            word = line.split(" ", 1)[0].split("(", 1)[0]
            if word in words:
                entries.append(line if line.endswith("\n") else line + "\n")
                found.add(word)
    return entries, words - found


def dither(pcm: bytes, *, lsb: int = _DITHER_LSB) -> bytes:
    """``pcm`` plus triangular noise of ``lsb`` steps, the same for the same input (a fixed seed)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    rng = np.random.default_rng(0)
    noisy = samples + (rng.random(samples.size) - rng.random(samples.size)) * lsb
    return bytes(np.clip(np.rint(noisy), -32768, 32767).astype("<i2").tobytes())


class PocketsphinxSTT:
    """PocketSphinx with its US English acoustic model and a domain (or the general) language model."""

    name = "pocketsphinx"

    def __init__(self, *, phrases: Sequence[str] = ()) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:
            raise EngineUnavailableError(
                f"AIMPACT_VOICE_STT=pocketsphinx needs the package pocketsphinx ({_INSTALL})"
            ) from exc
        options: dict[str, Any] = {"samprate": SAMPLE_RATE, "loglevel": "FATAL"}
        with tempfile.TemporaryDirectory(prefix="aimpact-lm-") as folder:
            if phrases:
                options.update(self._domain_files(phrases, Path(folder)))
            try:
                self._decoder: Any = Decoder(**options)
            except (RuntimeError, ValueError) as exc:
                raise EngineUnavailableError(f"pocketsphinx cannot start: {exc}") from exc
        self._lock = threading.Lock()
        """One decoder, one utterance at a time."""

    @staticmethod
    def _domain_files(phrases: Sequence[str], folder: Path) -> dict[str, str]:
        """A language model of ``phrases`` and a dictionary of their words only (loads in milliseconds,
        where the full 135,000-word dictionary takes seconds)."""
        from pocketsphinx import get_model_path

        lines = [normalise_phrase(p) for p in phrases]
        entries, unknown = dictionary_entries(
            {w for line in lines for w in line.split()}, Path(get_model_path("en-us/cmudict-en-us.dict"))
        )
        if unknown:
            log.warning("pocketsphinx_unknown_words", words=sorted(unknown)[:50], count=len(unknown))
            lines = [" ".join(w for w in line.split() if w not in unknown) for line in lines]
        (folder / "domain.lm").write_text(domain_language_model(lines), encoding="utf-8")
        (folder / "domain.dict").write_text("".join(entries), encoding="utf-8")
        return {"lm": str(folder / "domain.lm"), "dict": str(folder / "domain.dict")}

    def transcribe(self, audio: Audio) -> Transcript:
        """The words of ``audio``; empty for silence."""
        if not audio.pcm or is_silent(audio):
            return Transcript(text="", engine=self.name)
        with self._lock:
            try:
                self._decoder.start_utt()
                self._decoder.process_raw(dither(audio.pcm), full_utt=True)
                self._decoder.end_utt()
                hypothesis = self._decoder.hyp()
            except RuntimeError as exc:
                raise SpeechError(f"pocketsphinx: {exc}") from exc
        text = hypothesis.hypstr if hypothesis is not None else ""
        return Transcript(text=" ".join(text.split()), engine=self.name)
