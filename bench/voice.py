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

WebSocket streaming is not built yet: end of speech → first reply audio (the issue's streaming
target) cannot be measured over HTTP turns, whose reply audio arrives whole.

Usage: ``flock /tmp/bench.lock python -m bench.voice [--turns N]`` (or ``make bench-voice``).
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
from bench.voice_engines import HEADER, Figures, Utterance, _seconds, _text, spoken_utterances, stt_figures, tts_figures
from core.settings import Settings
from core.speech.audio import decode_wav, encode_wav
from core.speech.engines import build_stt, build_tts
from core.speech.espeak import EspeakTTS
from workers.embedded.stack import StackProcess

STAGES = ("vad", "stt", "agent", "tts", "total")
MAX_TURNS = 200
TARGET_OVERHEAD = 0.10
TARGET_FIRST_AUDIO_MS = 1000.0


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


async def take_turns(http: httpx.AsyncClient, utterances: list[Utterance]) -> Turns:
    """One session, a warm-up turn, then one turn per utterance, one at a time; each must complete."""
    agent = _checked(await http.post("/v1/agents", json={"name": "bench-voice", "model": {"provider": "local"}}), 201)
    session = _checked(await http.post("/v1/voice/sessions", json={"agent_id": agent["id"]}), 201)
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


def report(turns: Turns, utterances: list[Utterance], stt: Figures, tts: Figures, loads: tuple[float, float]) -> None:
    """Print the platform's turns next to the engines called directly, with the targets."""
    audio_s = sum(u.audio.duration_s for u in utterances)
    print(
        f"\n{len(utterances)} HTTP turns of 3.0 s utterances, one at a time after a warm-up turn,"
        f" on {os.cpu_count()} cores"
    )
    print(f"load average (1 min): {loads[0]:.1f} at start, {loads[1]:.1f} at end")
    print("WebSocket streaming is not built yet: every turn is POST /v1/voice/sessions/{id}/turns with a whole WAV")
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
    print(
        f"end of speech -> first reply audio p50 (target <= {TARGET_FIRST_AUDIO_MS:,.0f} ms, streaming):"
        " not measurable over HTTP turns: the reply audio arrives whole"
    )


async def run(turn_count: int) -> None:
    """Generate the utterances, take the turns on an embedded stack, call the engines directly, print."""
    loads_start = os.getloadavg()[0]
    espeak = build_tts(Settings())
    assert isinstance(espeak, EspeakTTS)
    spoken = spoken_utterances(espeak)
    utterances = [spoken[i % len(spoken)] for i in range(turn_count)]
    with tempfile.TemporaryDirectory(prefix="aimpact-bench-") as home:
        stack = StackProcess(home=Path(home), extra_env=BENCH_ENV)
        stack.start()
        try:
            headers = {"Authorization": f"Bearer {stack.api_key}"}
            async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=180) as http:
                turns = await take_turns(http, utterances)
            whisper = build_stt(Settings())
            stt = stt_figures("direct whisper (same audio)", _text(whisper), utterances)
            tts = tts_figures("direct espeak (same replies)", _seconds(espeak), turns.replies)
        finally:
            stack.stop()
    report(turns, utterances, stt, tts, (loads_start, os.getloadavg()[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=bounded_turns, default=20, help=f"timed turns (1 to {MAX_TURNS})")
    asyncio.run(run(parser.parse_args().turns))


if __name__ == "__main__":
    main()
