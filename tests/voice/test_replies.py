"""The pure parts of a streamed reply: sentences cut as the words arrive, what of a reply was heard, and digital
silence dropped before speech to text."""

from __future__ import annotations

import pytest

from core.speech.audio import without_leading_zeros
from core.speech.base import Audio
from core.voice.replies import SentenceSplitter, Spoken, heard_text


def test_sentences_are_cut_as_soon_as_they_are_complete() -> None:
    splitter = SentenceSplitter()
    assert splitter.push("You") == []
    assert splitter.push(" said:") == []  # the colon may be a time (12:30): cut only when a space follows
    assert splitter.push(" it is 3.5") == ["You said:"]
    assert splitter.push(" degrees. And") == ["it is 3.5 degrees."]
    assert splitter.push(" then\nmore") == ["And then"]
    assert splitter.flush() == ["more"]
    assert splitter.flush() == []


def test_a_long_stretch_without_a_sentence_end_is_cut_at_a_comma_or_a_space() -> None:
    splitter = SentenceSplitter(max_chars=30)
    out = splitter.push("one two three four, five six seven eight nine ten eleven")
    assert out == ["one two three four,", "five six seven eight nine ten"]
    assert all(len(s) <= 30 for s in out)
    assert splitter.flush() == ["eleven"]
    with pytest.raises(ValueError, match="max_chars"):
        SentenceSplitter(max_chars=5)


def test_heard_text_is_the_sentences_sent_whole_and_the_share_of_the_next() -> None:
    spoken = [Spoken("You said:", 1000), Spoken("one two three four", 4000)]
    assert heard_text(spoken, 0) == ""
    assert heard_text(spoken, 499) == ""
    assert heard_text(spoken, 999) == "You"
    assert heard_text(spoken, 1000) == "You said:"
    assert heard_text(spoken, 1000 + 2000) == "You said: one two"
    assert heard_text(spoken, 5000) == "You said: one two three four"
    assert heard_text(spoken, 10_000) == "You said: one two three four"


def test_leading_digital_silence_is_dropped_and_quiet_noise_is_kept() -> None:
    zeros, noise = b"\x00\x00" * 100, b"\x01\x00\xff\xff" * 10
    assert without_leading_zeros(Audio(zeros + noise + zeros)).pcm == noise + zeros
    assert without_leading_zeros(Audio(noise)).pcm == noise
    assert without_leading_zeros(Audio(zeros)).pcm == b""
