"""The OpenAI-compatible cloud engines against a local HTTP server speaking the audio endpoints' protocol."""

from __future__ import annotations

import json
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from core.settings import Settings
from core.speech.audio import decode_wav, to_float
from core.speech.base import SAMPLE_RATE, Audio, SpeechError
from core.speech.cloud import CloudRejectedError, OpenAISTT, OpenAITTS
from core.speech.engines import build_stt, build_tts
from tests.speech.conftest import encode_samples, silence, sine

TTS_RATE = 24_000
"""OpenAI's speech endpoint answers 24 kHz mono PCM16 WAV."""


@dataclass
class AudioServer:
    """``/v1/audio/transcriptions`` answers what it received ("heard 1.50 seconds at 16000 Hz");
    ``/v1/audio/speech`` answers a 440 Hz tone lasting 0.25 s per word, in a streamed 24 kHz WAV.
    Queued statuses are answered first."""

    key: str = "sk-test-0123456789"
    statuses: list[int] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    broken_body: bytes | None = None
    port: int = 0

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        if headers.get("authorization") != f"Bearer {self.key}":
            return 401, "application/json", b'{"error": {"message": "Incorrect API key provided"}}'
        if self.statuses:
            return self.statuses.pop(0), "application/json", b'{"error": {"message": "scripted"}}'
        if self.broken_body is not None:
            return 200, "application/octet-stream", self.broken_body
        if path == "/v1/audio/transcriptions":
            message = BytesParser(policy=HTTP).parsebytes(
                f"Content-Type: {headers['content-type']}\r\n\r\n".encode() + body
            )
            parts = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
            fields = {name: part.get_content() for name, part in parts.items() if name != "file"}
            wav = parts["file"].get_payload(decode=True)
            self.requests.append({"path": path, "fields": fields, "filename": parts["file"].get_filename()})
            audio = decode_wav(wav)
            text = f"Heard {audio.duration_s:.2f} seconds at {SAMPLE_RATE} Hz."
            return 200, "application/json", json.dumps({"text": text}).encode()
        if path == "/v1/audio/speech":
            request = json.loads(body)
            self.requests.append({"path": path, "json": request})
            seconds = 0.25 * len(request["input"].split())
            return 200, "audio/wav", streamed_wav(sine(440.0, seconds, TTS_RATE, amplitude=0.3))
        return 404, "application/json", b"{}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def streamed_wav(samples: np.ndarray) -> bytes:
    """A WAV as a streaming server writes it: RIFF and data sizes unknown (0xFFFFFFFF)."""
    fmt = struct.pack("<HHIIHH", 1, 1, TTS_RATE, TTS_RATE * 2, 2, 16)
    header = b"RIFF\xff\xff\xff\xffWAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data\xff\xff\xff\xff"
    return header + encode_samples(samples, 16)


@pytest.fixture
def server() -> Iterator[AudioServer]:
    state = AudioServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, kind, payload = state.handle(self.path, headers, body)
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def test_cloud_stt_sends_the_audio_as_a_wav_and_reads_the_text(server: AudioServer) -> None:
    stt = OpenAISTT(base_url=server.url, api_key=server.key, model="whisper-large-v3", timeout_s=5)
    audio = Audio(encode_samples(sine(300.0, 1.5, SAMPLE_RATE, amplitude=0.3), 16))
    transcript = stt.transcribe(audio)
    assert transcript.text == "Heard 1.50 seconds at 16000 Hz."
    assert transcript.engine == "openai"
    (request,) = server.requests
    assert request["fields"] == {"model": "whisper-large-v3", "response_format": "json", "language": "en"}
    assert request["filename"] == "audio.wav"
    assert stt.transcribe(silence(1.0)).text == ""  # silence costs no request
    assert len(server.requests) == 1
    stt.close()


def test_cloud_tts_reads_a_streamed_24k_wav_as_16k_audio(server: AudioServer) -> None:
    tts = OpenAITTS(base_url=server.url + "/", api_key=server.key, model="tts-1-hd", voice="nova", timeout_s=5)
    audio = tts.synthesize("One two three four")
    assert audio.duration_s == pytest.approx(1.0, abs=1 / SAMPLE_RATE)
    spectrum = np.abs(np.fft.rfft(to_float(audio)))
    assert np.fft.rfftfreq(len(audio.pcm) // 2, 1 / SAMPLE_RATE)[int(np.argmax(spectrum))] == pytest.approx(440, abs=1)
    (request,) = server.requests
    assert request["json"] == {
        "model": "tts-1-hd",
        "voice": "nova",
        "input": "One two three four",
        "response_format": "wav",
    }
    assert tts.synthesize("   ").pcm == b""
    tts.close()


@pytest.mark.parametrize(
    ("status", "error"), [(500, SpeechError), (503, SpeechError), (429, SpeechError), (400, CloudRejectedError)]
)
def test_server_failures_are_retriable_and_refusals_are_not(
    server: AudioServer, status: int, error: type[Exception]
) -> None:
    server.statuses.append(status)
    tts = OpenAITTS(base_url=server.url, api_key=server.key, timeout_s=5)
    with pytest.raises(error, match=f"HTTP {status}") as caught:
        tts.synthesize("hello")
    assert isinstance(caught.value, CloudRejectedError) == (status == 400)


def test_a_wrong_key_is_a_refusal_and_an_unreachable_server_a_retriable_failure(server: AudioServer) -> None:
    with pytest.raises(CloudRejectedError, match=r"401.*Incorrect API key"):
        OpenAISTT(base_url=server.url, api_key="sk-wrong-key-000000", timeout_s=5).transcribe(
            Audio(encode_samples(sine(300.0, 0.5, SAMPLE_RATE), 16))
        )
    with pytest.raises(SpeechError, match="ConnectError") as caught:
        OpenAITTS(base_url="http://127.0.0.1:9/v1", api_key=None, timeout_s=2).synthesize("hello")
    assert not isinstance(caught.value, CloudRejectedError)


def test_answers_that_are_not_what_the_protocol_promises_fail_clearly(server: AudioServer) -> None:
    server.broken_body = b"<html>gateway</html>"
    with pytest.raises(SpeechError, match="not usable audio: not a WAV"):
        OpenAITTS(base_url=server.url, api_key=server.key, timeout_s=5).synthesize("hello")
    with pytest.raises(SpeechError, match="holds no text"):
        OpenAISTT(base_url=server.url, api_key=server.key, timeout_s=5).transcribe(
            Audio(encode_samples(sine(300.0, 0.5, SAMPLE_RATE), 16))
        )


def test_settings_choose_the_cloud_engines(server: AudioServer) -> None:
    settings = Settings(
        voice_stt="openai",
        voice_stt_url=server.url,
        voice_stt_api_key=server.key,
        voice_tts="openai",
        voice_tts_url=server.url,
        voice_tts_api_key=server.key,
        voice_tts_voice="echo",
    )
    stt, tts = build_stt(settings), build_tts(settings)
    assert isinstance(stt, OpenAISTT)
    assert isinstance(tts, OpenAITTS)
    spoken = tts.synthesize("turn on the lights")
    assert spoken.duration_s == pytest.approx(1.0, abs=0.001)
    assert stt.transcribe(spoken).text == "Heard 1.00 seconds at 16000 Hz."
    assert server.requests[0]["json"]["voice"] == "echo"
    assert build_stt(settings) is stt
