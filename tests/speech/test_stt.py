"""Speech to text on speech made at test time by eSpeak NG: Whisper's word error rate, PocketSphinx with
a domain language model, silence, and the eSpeak output itself."""

from __future__ import annotations

import time

import pytest

from core.speech.audio import rms_dbfs
from core.speech.base import SAMPLE_RATE, Audio
from core.speech.espeak import EspeakTTS
from core.speech.pocketsphinx_stt import PocketsphinxSTT, domain_language_model, normalise_phrase
from core.speech.wer import edit_distance, word_error_rate, words
from core.speech.whisper import WhisperSTT
from tests.speech.conftest import concat, noise, silence

SENTENCES = (
    "The weather will be sunny tomorrow afternoon.",
    "Please turn off the lights in the kitchen.",
    "My flight to Boston leaves early on Monday morning.",
    "Can you remind me to call my mother tonight?",
    "The library closes at noon on Sundays.",
    "I would like to order a large pizza with mushrooms.",
    "How long does it take to drive to the airport?",
    "Send a message to Anna saying I will be late.",
    "The train was delayed because of heavy snow.",
    "What is the capital city of Australia?",
    "Add milk, eggs and bread to my shopping list.",
    "The meeting has been moved to Thursday.",
    "Play some relaxing music in the living room.",
    "How many kilometers are in a mile?",
    "Our team finished the project ahead of schedule.",
    "Please book a table for two at an Italian restaurant.",
    "The children are playing football in the park.",
    "Open the window, it is getting warm in here.",
    "Tell me a short story about a brave little dog.",
    "I forgot my password and cannot sign in.",
)
"""A fixed set of everyday requests, no digits (Whisper writes numbers as digits)."""


def test_word_error_rate_counts_substitutions_deletions_and_insertions() -> None:
    assert words("Hello, World! It's 3 o'clock.") == ["hello", "world", "it's", "3", "o'clock"]
    assert edit_distance(["a", "b", "c"], ["a", "x", "c", "d"]) == 2
    assert edit_distance([], ["a"]) == 1
    assert word_error_rate([("the cat sat", "the cat sat"), ("on the mat", "on mat")]) == pytest.approx(1 / 6)
    with pytest.raises(ValueError, match="no words"):
        word_error_rate([("", "x")])


def test_whisper_word_error_rate_on_twenty_spoken_sentences(espeak: EspeakTTS, whisper: WhisperSTT) -> None:
    pairs = []
    spoken = decoded = 0.0
    for sentence in SENTENCES:
        audio = espeak.synthesize(sentence)
        started = time.perf_counter()
        transcript = whisper.transcribe(audio)
        decoded += time.perf_counter() - started
        spoken += audio.duration_s
        assert transcript.engine == "whisper"
        pairs.append((sentence, transcript.text))
    wer = word_error_rate(pairs)
    print(
        f"\nwhisper tiny.en (int8, beam 5) on eSpeak NG speech: WER {wer:.1%} over {len(SENTENCES)} sentences,"
        f" {sum(len(words(s)) for s in SENTENCES)} words; {spoken:.1f} s of speech decoded in {decoded:.1f} s"
    )
    for reference, hypothesis in pairs:
        if words(reference) != words(hypothesis):
            print(f"  said {reference!r}\n  heard {hypothesis!r}")
    assert wer <= 0.25


def test_whisper_hears_nothing_in_silence_or_room_noise(whisper: WhisperSTT) -> None:
    assert whisper.transcribe(Audio(b"")).text == ""
    assert whisper.transcribe(silence(2.0)).text == ""
    assert whisper.transcribe(noise(2.0, dbfs=-70)).text == ""
    assert whisper.transcribe(Audio(b"\x10\x00" * 800)).text == ""  # 50 ms: too short to hold a word


def test_whisper_transcribes_speech_between_pauses(espeak: EspeakTTS, whisper: WhisperSTT) -> None:
    audio = concat(silence(1.0), espeak.synthesize("Please turn off the lights."), noise(1.0, dbfs=-60))
    assert words(whisper.transcribe(audio).text) == ["please", "turn", "off", "the", "lights"]


DOMAIN = (
    "what is the weather like today",
    "what is the weather like tomorrow",
    "turn on the lights",
    "turn off the lights",
    "turn on the lights in the kitchen",
    "turn off the lights in the bedroom",
    "set a timer for ten minutes",
    "set a timer for five minutes",
    "play some music",
    "stop the music",
    "call my mother",
    "call my office",
)


def test_pocketsphinx_with_a_domain_language_model(espeak: EspeakTTS) -> None:
    stt = PocketsphinxSTT(phrases=DOMAIN)
    said = (
        "Turn off the lights in the kitchen.",  # a recombination of the domain's phrases
        "What is the weather like tomorrow?",
        "Set a timer for five minutes.",
        "Call my office.",
    )
    pairs = [(sentence, stt.transcribe(espeak.synthesize(sentence)).text) for sentence in said]
    wer = word_error_rate(pairs)
    general = PocketsphinxSTT()
    general_wer = word_error_rate([(s, general.transcribe(espeak.synthesize(s)).text) for s in said])
    print(f"\npocketsphinx WER: {wer:.1%} with the domain language model, {general_wer:.1%} with the general one")
    for reference, hypothesis in pairs:
        print(f"  said {reference!r} heard {hypothesis!r}")
    assert wer <= 0.25
    assert wer < general_wer
    assert stt.transcribe(silence(1.0)).text == ""


def test_the_domain_language_model_is_built_from_normalised_phrases() -> None:
    assert normalise_phrase("Turn ON the lights, please!") == "turn on the lights please"
    model = domain_language_model(["turn on the lights", "turn off the lights"])
    assert "\\data\\" in model
    assert "\\3-grams:" in model
    assert " turn on " in model
    assert "<s>" in model
    with pytest.raises(ValueError, match="at least one phrase"):
        domain_language_model(["", ""])


def test_espeak_speaks_at_16k_for_as_long_as_the_text_needs(espeak: EspeakTTS) -> None:
    short = espeak.synthesize("Yes.")
    long = espeak.synthesize("The meeting has been moved to Thursday afternoon at the main office.")
    assert 0.2 < short.duration_s < 1.2
    assert 3.0 < long.duration_s < 6.0
    assert len(long.pcm) % 2 == 0
    assert len(long.pcm) // 2 == round(long.duration_s * SAMPLE_RATE)
    assert rms_dbfs(long) > -30
    assert espeak.synthesize("").pcm == b""
    assert espeak.synthesize("  \n ").pcm == b""
    assert espeak.synthesize("a\x00b").duration_s > 0  # a NUL would end the C string early


def test_espeak_speaks_slower_when_asked() -> None:
    text = "Our team finished the project ahead of schedule."
    assert EspeakTTS(words_per_minute=120).synthesize(text).duration_s > EspeakTTS().synthesize(text).duration_s * 1.2
