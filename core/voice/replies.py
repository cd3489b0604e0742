"""A streamed reply, sentence by sentence: where to cut the agent's words, and what of them was heard.

Pure and deterministic. :class:`SentenceSplitter` cuts the reply into sentences as its words
arrive, so the first sentence can be spoken while the agent writes the rest; a long stretch
without a sentence end is cut at a comma or a space so that the first audio does not wait
for it. :func:`heard_text` is the part of a reply the user heard when it was interrupted:
every sentence whose audio was sent in full, and the share of the next one's words that its
sent audio covers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SENTENCE_END = re.compile(r"[.!?;:…](?=\s)|\n")


class SentenceSplitter:
    """Reply text in (any chunks), whole sentences out."""

    def __init__(self, *, max_chars: int = 160) -> None:
        if max_chars < 20:
            raise ValueError("max_chars must be at least 20")
        self._max_chars = max_chars
        self._pending = ""

    def push(self, text: str) -> list[str]:
        """Take the next chunk; the sentences it completes (stripped, none empty)."""
        self._pending += text
        out: list[str] = []
        while True:
            cut = self._cut()
            if cut is None:
                return out
            sentence, self._pending = self._pending[:cut].strip(), self._pending[cut:]
            if sentence:
                out.append(sentence)

    def flush(self) -> list[str]:
        """The reply is complete: what is left, as the last sentence."""
        rest, self._pending = self._pending.strip(), ""
        return [rest] if rest else []

    def _cut(self) -> int | None:
        end = _SENTENCE_END.search(self._pending)
        if end is not None:
            return end.end()
        if len(self._pending) <= self._max_chars:
            return None
        head = self._pending[: self._max_chars]
        for mark in (", ", " "):  # the last comma, else the last space, else the limit
            at = head.rfind(mark)
            if at > 0:
                return at + len(mark)
        return self._max_chars


@dataclass(frozen=True, slots=True)
class Spoken:
    """One sentence of a reply and the bytes of audio it became."""

    text: str
    audio_bytes: int


def heard_text(spoken: list[Spoken], sent_bytes: int) -> str:
    """The reply as far as ``sent_bytes`` of its audio went: whole sentences, then the share of the next one's words."""
    heard: list[str] = []
    for sentence in spoken:
        if sent_bytes >= sentence.audio_bytes:
            heard.append(sentence.text)
            sent_bytes -= sentence.audio_bytes
            continue
        words = sentence.text.split()
        share = int(len(words) * sent_bytes / sentence.audio_bytes) if sentence.audio_bytes else 0
        if share:
            heard.append(" ".join(words[:share]))
        break
    return " ".join(heard)
