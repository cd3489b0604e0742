"""Speech engines behind OpenAI-compatible audio endpoints (OpenAI, a self-hosted Whisper or TTS server).

``POST {base_url}/audio/transcriptions`` (multipart: the WAV as ``file``, ``model``) answers
``{"text": ...}``; ``POST {base_url}/audio/speech`` (JSON: ``model``, ``voice``, ``input``,
``response_format: "wav"``) answers a WAV, decoded and resampled to 16 kHz. Failures raise
:class:`~core.speech.base.SpeechError` (retried by the caller's policy), or
:class:`CloudRejectedError` when the server refuses the request itself (retrying cannot help).
"""

from __future__ import annotations

import httpx

from core.speech.audio import AudioError, decode_wav, encode_wav, is_silent
from core.speech.base import Audio, SpeechError, Transcript


class CloudRejectedError(SpeechError):
    """The server refused the request (bad credentials, unknown model, invalid input): do not retry."""


class _Endpoint:
    def __init__(self, *, name: str, base_url: str, api_key: str | None, timeout_s: float) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.name = name
        self._client = httpx.Client(base_url=base_url.rstrip("/") + "/", headers=headers, timeout=timeout_s)

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        try:
            response = self._client.post(path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise SpeechError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise SpeechError(f"{self.name}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise CloudRejectedError(f"{self.name}: HTTP {response.status_code}: {response.text[:300]}")
        return response

    def close(self) -> None:
        self._client.close()


class OpenAISTT:
    """Speech to text through ``/audio/transcriptions``."""

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str = "whisper-1",
        language: str | None = "en",
        timeout_s: float = 30.0,
    ) -> None:
        self._endpoint = _Endpoint(name="openai stt", base_url=base_url, api_key=api_key, timeout_s=timeout_s)
        self._model = model
        self._language = language

    def transcribe(self, audio: Audio) -> Transcript:
        """The words of ``audio``; empty for silence, without a request."""
        if is_silent(audio):
            return Transcript(text="", engine=self.name)
        data = {"model": self._model, "response_format": "json"}
        if self._language:
            data["language"] = self._language
        response = self._endpoint.post(
            "audio/transcriptions", data=data, files={"file": ("audio.wav", encode_wav(audio), "audio/wav")}
        )
        try:
            text = response.json()["text"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SpeechError(f"openai stt: the answer holds no text: {response.text[:200]!r}") from exc
        if not isinstance(text, str):
            raise SpeechError("openai stt: the answer's text is not a string")
        return Transcript(text=" ".join(text.split()), engine=self.name)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._endpoint.close()


class OpenAITTS:
    """Text to speech through ``/audio/speech``, asking for WAV."""

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str = "tts-1",
        voice: str = "alloy",
        timeout_s: float = 30.0,
    ) -> None:
        self._endpoint = _Endpoint(name="openai tts", base_url=base_url, api_key=api_key, timeout_s=timeout_s)
        self._model = model
        self._voice = voice

    def synthesize(self, text: str) -> Audio:
        """``text`` spoken, at 16 kHz; empty audio for empty text, without a request."""
        if not text.strip():
            return Audio(b"")
        response = self._endpoint.post(
            "audio/speech",
            json={"model": self._model, "voice": self._voice, "input": text, "response_format": "wav"},
        )
        try:
            return decode_wav(response.content)
        except AudioError as exc:
            raise SpeechError(f"openai tts: the answer is not usable audio: {exc}") from exc

    def close(self) -> None:
        """Close the HTTP connections."""
        self._endpoint.close()
