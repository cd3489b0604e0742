"""Text to speech with eSpeak NG, from the ``espeakng-loader`` wheel (the library and its voice data).

The library is called in-process through ctypes rather than running an ``espeak-ng`` binary:
the wheel pins one eSpeak NG release with its data, installs with pip on any Linux, macOS
or Windows machine without apt or network, and a call costs no process start (a sentence
takes milliseconds). eSpeak NG keeps global state, so one synthesis runs at a time per
process. Its 22,050 Hz output is resampled to 16 kHz.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any, ClassVar

from core.speech.audio import from_pcm16
from core.speech.base import Audio, EngineUnavailableError, SpeechError

_SYNCHRONOUS = 2
"""``AUDIO_OUTPUT_SYNCHRONOUS``: ``espeak_Synth`` returns once the callback has had every sample."""
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH = 1, 2, 3
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_INSTALL = "pip install 'espeakng-loader==0.2.4'"


class _Library:
    """The loaded library, initialised once per process."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise EngineUnavailableError(
                f"AIMPACT_VOICE_TTS=espeak needs the package espeakng-loader ({_INSTALL})"
            ) from exc
        try:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data = espeakng_loader.get_data_path()
        except (OSError, RuntimeError) as exc:
            raise EngineUnavailableError(f"the eSpeak NG library of espeakng-loader cannot be loaded: {exc}") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        self.rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, data.encode(), 0)
        if self.rate <= 0:
            raise EngineUnavailableError(f"eSpeak NG did not start with its data in {data}")
        self.lib: Any = lib
        self.chunks: list[bytes] = []
        self._callback = _CALLBACK(self._collect)
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: Any, count: int, _events: Any) -> int:
        if count > 0:
            self.chunks.append(ctypes.string_at(wav, count * 2))
        return 0


class EspeakTTS:
    """eSpeak NG: fast, robotic, many languages (``voice`` is an eSpeak voice name such as ``en-us``)."""

    name = "espeak"
    _library: ClassVar[_Library | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, *, voice: str = "en-us", words_per_minute: int = 175, pitch: int = 50) -> None:
        self.voice = voice
        self.words_per_minute = words_per_minute
        self.pitch = pitch
        with self._lock:
            library = self._load()
            if library.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise EngineUnavailableError(f"eSpeak NG has no voice {voice!r} (AIMPACT_VOICE_ESPEAK_VOICE)")

    @classmethod
    def _load(cls) -> _Library:
        if cls._library is None:
            cls._library = _Library()
        return cls._library

    def synthesize(self, text: str) -> Audio:
        """``text`` spoken, at 16 kHz; empty audio for a text without anything to say."""
        encoded = text.replace("\x00", " ").strip().encode()
        if not encoded:
            return Audio(b"")
        with self._lock:
            library = self._load()
            lib = library.lib
            library.chunks = []
            lib.espeak_SetVoiceByName(self.voice.encode())
            lib.espeak_SetParameter(_RATE, self.words_per_minute, 0)
            lib.espeak_SetParameter(_PITCH, self.pitch, 0)
            status = lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            pcm = b"".join(library.chunks)
            library.chunks = []
        if status != 0:
            raise SpeechError(f"espeak: synthesis failed with status {status}")
        return from_pcm16(pcm, library.rate)
