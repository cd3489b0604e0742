"""Voice turns over the WebSocket: end of speech → first reply audio, next to the engines called directly.

Each utterance (``bench.voice_engines``: 3.0 s, speech centred in quiet noise) is streamed in
real time in 20 ms frames, followed by 1 s of silence; the turn ends with its ``metrics`` event.
Measured by the client: from the moment the last speech sample was sent to the first reply
audio frame received (the user's wait), and the turn's ``latency_ms`` stages (``endpoint``: the
silence the endpointer waits; ``stt``: after it, until the final transcript; ``agent_first_token``;
``tts_first_audio``; ``first_audio`` as the server sees it). Baseline in the same invocation: the
engines called directly in this process, Whisper on the same audio and eSpeak NG on the replies'
first sentences. The engines' own path to a first reply audio is endpoint + STT + TTS of the
first sentence; the platform's overhead is the client's wait beyond it, as a share of STT + TTS.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import httpx

from aimpact_client.voice_stream import VoiceStream
from bench.memory import percentile
from bench.voice_engines import HEADER, Figures, Utterance

STREAM_STAGES = ("endpoint", "stt", "agent_first_token", "tts_first_audio", "first_audio", "total")
TARGET_FIRST_AUDIO_MS = 1000.0
TARGET_OVERHEAD = 0.10


@dataclass
class StreamTurns:
    """What the streamed turns measured (seconds)."""

    waits_s: list[float] = field(default_factory=list)
    """Client: last speech sample sent → first reply audio frame received."""
    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STREAM_STAGES})
    first_sentences: list[str] = field(default_factory=list)
    partials: int = 0


async def stream_turns(
    http: httpx.AsyncClient, base_url: str, key: str, agent_id: str, utterances: list[Utterance]
) -> StreamTurns:
    """One session over one stream: a warm-up turn, then one turn per utterance; each must complete."""
    response = await http.post("/v1/voice/sessions", json={"agent_id": agent_id})
    if response.status_code != 201:
        raise RuntimeError(f"POST /v1/voice/sessions: {response.status_code} {response.text[:300]}")
    session = response.json()
    turns, done = StreamTurns(), set[str]()
    async with VoiceStream.connect(base_url, session["id"], key) as stream:
        await stream.wait_for("ready", timeout_s=180)
        for index, utterance in enumerate([utterances[0], *utterances]):
            frames_before, events_before = len(stream.audio_at), len(stream.events)
            started = time.perf_counter()
            await stream.send_audio(utterance.audio.pcm)
            await stream.send_silence(1.0)
            metrics = await stream.wait_for("metrics", where=lambda e: e["turn_id"] not in done, timeout_s=180)
            done.add(metrics["turn_id"])
            if metrics["status"] != "completed" or len(stream.audio_at) == frames_before:
                raise RuntimeError(f"streamed turn {index}: {metrics}")
            if index == 0:
                continue  # warm-up
            turns.waits_s.append(stream.audio_at[frames_before][0] - (started + utterance.speech_end_s))
            for stage in STREAM_STAGES:
                turns.stages[stage].append(metrics["latency_ms"][stage] / 1000)
            new = stream.events[events_before:]
            turns.partials += sum(1 for e in new if e["type"] == "transcript" and not e["final"])
            turns.first_sentences.append(next(e["text"] for e in new if e["type"] == "reply"))
        await stream.send_control("end")
    return turns


def _row(name: str, seconds: list[float]) -> str:
    return f"{name:<52} {percentile(seconds, 0.5):>9.1f} {percentile(seconds, 0.95):>9.1f}"


def report_stream(turns: StreamTurns, stt: Figures, tts: Figures, endpoint_ms: float) -> None:
    """Print the streamed turns next to the engines called directly, with the targets."""
    count = len(turns.waits_s)
    print(
        f"\n{count} streamed turns (WebSocket, 20 ms frames in real time) of 3.0 s utterances after a warm-up,"
        f" on {os.cpu_count()} cores; {turns.partials} partial transcripts"
    )
    print(f"\n{'platform (WebSocket)':<52} {'p50 ms':>9} {'p95 ms':>9}")
    print(_row("client: end of speech -> first reply audio", turns.waits_s))
    for stage in STREAM_STAGES:
        print(_row(f"turn latency_ms.{stage}", turns.stages[stage]))
    print(f"\nengines called directly (same audio, the replies' first sentences)\n{HEADER}")
    print(stt.row())
    print(tts.row())
    wait_ms = percentile(turns.waits_s, 0.5) * 1000
    engines = stt.p50_ms + tts.p50_ms
    overhead = (wait_ms - endpoint_ms - engines) / engines
    first_verdict = "met" if wait_ms <= TARGET_FIRST_AUDIO_MS else "MISSED"
    print(
        f"end of speech -> first reply audio p50: {wait_ms:,.0f} ms"
        f" (target <= {TARGET_FIRST_AUDIO_MS:,.0f} ms: {first_verdict})"
    )
    verdict = "met" if overhead <= TARGET_OVERHEAD else "MISSED"
    print(
        f"platform overhead (p50s): ({wait_ms:.0f} - {endpoint_ms:.0f} endpointing - {stt.p50_ms:.0f} STT"
        f" - {tts.p50_ms:.0f} TTS) / {engines:.0f} ms = {overhead:.1%} of the engines' time"
        f" (target <= {TARGET_OVERHEAD:.0%}: {verdict})"
    )
