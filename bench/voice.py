"""Voice turns through the HTTP API vs. the same speech engines called directly, on one embedded stack.

N spoken requests of 3.0 s (eSpeak NG, padded with quiet room noise: ``bench.voice_engines``)
are sent one at a time as ``POST /v1/voice/sessions/{id}/turns`` with a WAV body to one session
of an agent on the offline ``local`` provider, with the default engines (Whisper tiny.en, eSpeak
NG, WebRTC VAD). Measured: the client's wall time of the ``POST`` (the body is on loopback, so
end of request → reply) and of ``POST`` + ``GET`` of the reply audio, and each turn's
``latency_ms`` (vad, stt, agent, tts, total). Baseline in the same invocation, with the stack
still up: the same engines built in this process, STT on the same audio and TTS on the replies
the turns spoke. The platform's overhead is what a turn costs beyond the engines and the agent:
(total − direct STT − direct TTS − agent) / (direct STT + direct TTS), on the p50s.

``--mode stream`` (``bench.voice_stream``) takes the same utterances over the WebSocket and
measures end of speech → first reply audio; ``--mode both`` (the default) runs the two on one
stack.

Usage: ``flock /tmp/bench.lock python -m bench.voice [--turns N] [--mode http|stream|both]``
(or ``make bench-voice``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.load import BENCH_ENV
from bench.memory import percentile
from bench.voice_engines import (
    HEADER,
    Figures,
    Utterance,
    speaker_seconds,
    spoken_utterances,
    stt_figures,
    transcriber,
    tts_figures,
)
from bench.voice_stream import StreamTurns, report_stream, stream_turns
from core.settings import Settings
from core.speech.audio import decode_wav, encode_wav
from core.speech.engines import build_stt, build_tts
from core.speech.espeak import EspeakTTS
from workers.embedded.stack import StackProcess

STAGES = ("vad", "stt", "agent", "tts", "total")
MAX_TURNS = 200
TARGET_OVERHEAD = 0.10


@dataclass
class Turns:
    """What the platform's turns measured."""

    post_s: list[float] = field(default_factory=list)
    """Client wall time of each ``POST …/turns``."""
    with_audio_s: list[float] = field(default_factory=list)
    """``POST`` + ``GET`` of the reply audio."""
    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    """Each turn's ``latency_ms`` per stage, in seconds."""
    replies: list[str] = field(default_factory=list)
    reply_audio_s: float = 0.0


def bounded_turns(value: str) -> int:
    """``--turns``: 1 to ``MAX_TURNS``."""
    turns = int(value)
    if not 1 <= turns <= MAX_TURNS:
        raise argparse.ArgumentTypeError(f"between 1 and {MAX_TURNS}")
    return turns


def _checked(response: httpx.Response, status: int) -> Any:
    """The JSON answer, which must have ``status``."""
    if response.status_code != status:
        request = response.request
        raise RuntimeError(f"{request.method} {request.url.path}: {response.status_code} {response.text[:500]}")
    return response.json() if response.content else None


async def bench_agent(http: httpx.AsyncClient) -> str:
    """The agent the turns talk to (the offline ``local`` provider, no tools: it repeats what it heard)."""
    agent = _checked(await http.post("/v1/agents", json={"name": "bench-voice", "model": {"provider": "local"}}), 201)
    agent_id: str = agent["id"]
    return agent_id


async def take_turns(http: httpx.AsyncClient, agent_id: str, utterances: list[Utterance]) -> Turns:
    """One session, a warm-up turn, then one turn per utterance, one at a time; each must complete."""
    session = _checked(await http.post("/v1/voice/sessions", json={"agent_id": agent_id}), 201)
    url = f"/v1/voice/sessions/{session['id']}/turns"
    headers = {"content-type": "audio/wav"}
    turns = Turns()
    for index, utterance in enumerate([utterances[0], *utterances]):
        body = encode_wav(utterance.audio)
        began = time.perf_counter()
        turn = _checked(await http.post(url, content=body, headers=headers), 201)
        posted = time.perf_counter()
        reply = await http.get(turn["reply_audio_url"] or "/missing")
        done = time.perf_counter()
        if turn["status"] != "completed" or not turn["transcript"] or reply.status_code != 200:
            raise RuntimeError(f"turn {index}: {turn['status']} {turn['error']} reply audio {reply.status_code}")
        if index == 0:
            continue  # warm-up
        turns.post_s.append(posted - began)
        turns.with_audio_s.append(done - began)
        for stage in STAGES:
            turns.stages[stage].append(turn["latency_ms"][stage] / 1000)
        turns.replies.append(turn["reply_text"])
        turns.reply_audio_s += decode_wav(reply.content).duration_s
    _checked(await http.post(f"/v1/voice/sessions/{session['id']}/end"), 202)
    return turns


def _row(name: str, seconds: list[float]) -> str:
    return f"{name:<44} {percentile(seconds, 0.5):>9.1f} {percentile(seconds, 0.95):>9.1f}"


def report(turns: Turns, utterances: list[Utterance], stt: Figures, tts: Figures) -> None:
    """Print the platform's turns next to the engines called directly, with the targets."""
    audio_s = sum(u.audio.duration_s for u in utterances)
    print(
        f"\n{len(utterances)} HTTP turns of 3.0 s utterances, one at a time after a warm-up turn,"
        f" on {os.cpu_count()} cores"
    )
    print(f"\n{'platform (HTTP turns)':<44} {'p50 ms':>9} {'p95 ms':>9}")
    print(_row("end of request -> reply (POST answered)", turns.post_s))
    print(_row("end of request -> reply audio (+ GET wav)", turns.with_audio_s))
    for stage in STAGES:
        print(_row(f"turn latency_ms.{stage}", turns.stages[stage]))
    print(f"\nengines called directly (same audio, same reply texts)\n{HEADER}")
    print(stt.row())
    print(tts.row())
    stt_rtf = sum(turns.stages["stt"]) / audio_s
    tts_rtf = sum(turns.stages["tts"]) / turns.reply_audio_s
    print(f"\nreal-time factors: STT {stt_rtf:.3f} in the turns, {stt.rtf:.3f} direct;")
    print(f"                   TTS {tts_rtf:.3f} in the turns, {tts.rtf:.3f} direct")
    p50 = {stage: percentile(turns.stages[stage], 0.5) for stage in STAGES}
    engines = stt.p50_ms + tts.p50_ms
    overhead = (p50["total"] - stt.p50_ms - tts.p50_ms - p50["agent"]) / engines
    verdict = "met" if overhead <= TARGET_OVERHEAD else "MISSED"
    print(
        f"platform overhead (p50s): ({p50['total']:.0f} - {stt.p50_ms:.0f} - {tts.p50_ms:.0f} - {p50['agent']:.0f})"
        f" / {engines:.0f} ms = {overhead:.1%} of the engines' time (target <= {TARGET_OVERHEAD:.0%}: {verdict})"
    )


async def run(turn_count: int, mode: str) -> None:
    """Generate the utterances, take the turns on an embedded stack, call the engines directly, print."""
    loads_start = os.getloadavg()[0]
    settings = Settings()
    espeak = build_tts(settings)
    assert isinstance(espeak, EspeakTTS)
    spoken = spoken_utterances(espeak)
    utterances = [spoken[i % len(spoken)] for i in range(turn_count)]
    turns: Turns | None = None
    streamed: StreamTurns | None = None
    with tempfile.TemporaryDirectory(prefix="aimpact-bench-") as home:
        stack = StackProcess(home=Path(home), extra_env=BENCH_ENV)
        stack.start()
        try:
            headers = {"Authorization": f"Bearer {stack.api_key}"}
            async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=180) as http:
                agent_id = await bench_agent(http)
                if mode in ("http", "both"):
                    turns = await take_turns(http, agent_id, utterances)
                if mode in ("stream", "both"):
                    streamed = await stream_turns(http, stack.api_url, stack.api_key, agent_id, utterances)
            whisper = build_stt(settings)
            stt = stt_figures("direct whisper (same audio)", transcriber(whisper), utterances)
        finally:
            stack.stop()
    print(f"load average (1 min): {loads_start:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    if turns is not None:
        tts = tts_figures("direct espeak (same replies)", speaker_seconds(espeak), turns.replies)
        report(turns, utterances, stt, tts)
    if streamed is not None:
        first = tts_figures("direct espeak (first sentences)", speaker_seconds(espeak), streamed.first_sentences)
        report_stream(streamed, stt, first, endpoint_ms=settings.voice_stream_speech_end_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=bounded_turns, default=20, help=f"timed turns (1 to {MAX_TURNS})")
    parser.add_argument("--mode", choices=("http", "stream", "both"), default="both", help="which turns to time")
    args = parser.parse_args()
    asyncio.run(run(args.turns, args.mode))


if __name__ == "__main__":
    main()
