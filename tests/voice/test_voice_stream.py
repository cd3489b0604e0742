"""Voice sessions over the WebSocket on the real stack: partial and final transcripts, the reply spoken sentence by
sentence, barge-in, resuming with the last event id, bad frames, and refusals (credentials, permission, another
workspace's session, a second stream, an ended session)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from websockets.asyncio.client import connect

from aimpact_client.voice_stream import BYTES_PER_S, VoiceStream
from core.contracts.voice import SessionStatus
from core.ids import voice_session_workflow_id
from tests.conftest import TenantCtx
from tests.support.runs import create_agent, record_history
from tests.support.voice import speech, start_session, wait_session

QUESTION = "What will the weather be like in London tomorrow? Please tell me slowly and clearly."
LONG_REPLY_ASK = "Tell me about the weather in Paris in the spring, the summer, the autumn and the winter."


def _base(tenant: TenantCtx) -> str:
    return str(tenant.http.base_url)


async def _say(stream: VoiceStream, text: str, *, after_s: float = 0.8) -> None:
    await stream.send_silence(0.3)
    await stream.send_audio(speech(text).pcm)
    await stream.send_silence(after_s)


async def _thread(http: httpx.AsyncClient, thread_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await http.get(f"/v1/threads/{thread_id}/messages")).json()["items"]
    return items


async def test_a_streamed_turn_transcribes_while_speaking_speaks_the_reply_and_resumes_after_a_reconnect(
    tenant: TenantCtx, temporal_client: Client
) -> None:
    agent = await create_agent(tenant.http, tools=[])  # the local model answers "You said: <the transcript>"
    session = await start_session(tenant.http, agent["id"])
    async with VoiceStream.connect(_base(tenant), session["id"], tenant.key) as stream:
        await stream.wait_for("ready", timeout_s=120)  # the API process loads its speech engines once
        await _say(stream, QUESTION)
        final = await stream.wait_for("transcript", where=lambda e: e["final"])
        words = final["text"].lower()
        assert "weather" in words, final
        assert "london" in words, final
        metrics = await stream.wait_for("metrics", timeout_s=120)
        assert metrics["status"] == "completed", metrics
        types = [e["type"] for e in stream.events]
        assert types.index("speech_started") < types.index("reply") < types.index("reply_done"), types
        partials = [e for e in stream.events_of("transcript") if not e["final"]]
        assert partials, stream.events  # transcribed while the user spoke
        assert types.index("transcript") < types.index("reply"), types
        replies = [e["text"] for e in stream.events_of("reply")]
        assert replies[0] == "You said:", replies  # a sentence is spoken as soon as it is written
        assert " ".join(replies) == f"You said: {final['text']}", replies
        assert len(stream.audio) > BYTES_PER_S // 2  # more than half a second of reply audio
        latency = metrics["latency_ms"]
        assert all(latency[k] > 0 for k in ("endpoint", "stt", "agent", "agent_first_token", "tts", "first_audio"))
        assert latency["first_audio"] >= latency["endpoint"] + latency["stt"], latency

        # bad frames are answered with error events; the stream goes on
        await stream.send_raw("not a control message")
        await stream.send_raw(b"\x01\x02\x03")
        errors = [
            (await stream.wait_for("error", where=lambda e, c=code: e["code"] == c))["code"]
            for code in (
                "invalid_message",
                "odd_frame",
            )
        ]
        assert errors == ["invalid_message", "odd_frame"]
        # one stream per session
        async with connect(_ws(tenant, session["id"], tenant.key)) as second:
            await second.wait_closed()
            assert second.close_code == 4409
        seen = final["id"]

    recorded = await wait_session(tenant.http, session["id"], lambda s: s["turn_count"] == 1)
    turn = recorded["turns"][0]
    assert (turn["status"], turn["transcript"]) == ("completed", final["text"]), turn
    assert turn["reply_text"] == " ".join(replies), turn
    assert turn["latency_ms"]["first_audio"] == pytest.approx(latency["first_audio"], abs=0.1)
    reply_audio = await tenant.http.get(turn["reply_audio_url"])
    assert reply_audio.status_code == 200
    assert len(reply_audio.content) > len(stream.audio)  # a WAV header and every byte sent

    # the client reconnects with the last event id it saw: the events after it come first, then the next turn
    async with VoiceStream.connect(_base(tenant), session["id"], tenant.key, last_event_id=seen) as again:
        await again.wait_for("ready")
        replayed = [e["type"] for e in again.events[: again.events.index(again.events_of("ready")[-1])]]
        assert replayed[0] != "transcript", replayed  # only what came after the last event seen
        assert "reply" in replayed, replayed
        assert "metrics" in replayed, replayed
        await _say(again, "Two plus three.")
        second_turn = await again.wait_for("metrics", where=lambda e: e["turn_id"] != metrics["turn_id"])
        assert second_turn["status"] == "completed"
        await again.send_control("end")
        assert (await again.wait_closed())[0] == 1000
    ended = await wait_session(tenant.http, session["id"], lambda s: s["status"] == SessionStatus.ENDED)
    assert ended["turn_count"] == 2
    await record_history(temporal_client, voice_session_workflow_id(tenant.id, session["id"]), "voice/streamed")
    messages = [(m["role"], m["content"]) for m in await _thread(tenant.http, session["thread_id"])]
    said = [e for e in again.events_of("transcript") if e["final"]][-1]["text"]
    assert messages == [
        ("user", final["text"]),
        ("assistant", f"You said: {final['text']}"),
        ("user", said),
        ("assistant", f"You said: {said}"),
    ], messages


async def test_barge_in_stops_the_reply_and_the_thread_keeps_what_was_heard(
    tenant: TenantCtx, temporal_client: Client
) -> None:
    agent = await create_agent(tenant.http, tools=[])  # the local model echoes: a reply as long as the question
    session = await start_session(tenant.http, agent["id"])
    async with VoiceStream.connect(_base(tenant), session["id"], tenant.key) as stream:
        await stream.wait_for("ready", timeout_s=120)
        await _say(stream, LONG_REPLY_ASK)
        first = await stream.wait_for("reply")
        await asyncio.sleep(1.2)  # part of the reply plays
        await stream.send_audio(speech("Stop, stop.").pcm)
        interrupted = await stream.wait_for("interrupted")
        at_interrupt = stream.audio_of[first["turn_id"]]
        await stream.send_silence(0.8)  # "Stop, stop." is a turn of its own: its reply is counted apart
        await asyncio.sleep(0.5)
        assert stream.audio_of[first["turn_id"]] == at_interrupt, "reply audio went on after the barge-in"
        metrics = await stream.wait_for("metrics", where=lambda e: e["turn_id"] == first["turn_id"])
        assert metrics["status"] == "interrupted"
    heard = interrupted["heard_text"]
    full = await tenant.http.get(f"/v1/runs/{_run_of(await _turns(tenant, session['id']), first['turn_id'])}")
    assert full.status_code == 200
    reply = full.json()["output"]
    assert heard, interrupted
    assert len(heard) < len(reply), (heard, reply)
    assert reply.startswith(heard.split()[0]), (heard, reply)
    turns = await _turns(tenant, session["id"])
    stopped = next(t for t in turns if t["turn_id"] == first["turn_id"])
    assert (stopped["status"], stopped["reply_text"], stopped["interrupted"]) == ("interrupted", heard, True)
    assert stopped["reply_audio_url"]
    answers = [m for m in await _thread(tenant.http, session["thread_id"]) if m["role"] == "assistant"]
    assert heard in [m["content"] for m in answers], answers
    assert reply not in [m["content"] for m in answers], answers
    await record_history(temporal_client, voice_session_workflow_id(tenant.id, session["id"]), "voice/barge_in")


async def _turns(tenant: TenantCtx, session_id: str) -> list[dict[str, Any]]:
    session = await wait_session(tenant.http, session_id, lambda s: s["turn_count"] >= 1)
    turns: list[dict[str, Any]] = session["turns"]
    return turns


def _run_of(turns: list[dict[str, Any]], turn_id: str) -> str:
    run_id: str = next(t for t in turns if t["turn_id"] == turn_id)["run_id"]
    return run_id


def _ws(tenant: TenantCtx, session_id: str, token: str | None, query: str = "") -> str:
    base = _base(tenant).replace("http://", "ws://")
    auth = f"token={token}&" if token else ""
    return f"{base}/v1/voice/sessions/{session_id}/stream?{auth}{query}"


async def _close_code(url: str, first: str | None = None) -> int:
    async with connect(url) as ws:
        if first is not None:
            await ws.send(first)
        await ws.wait_closed()
        assert ws.close_code is not None
        return ws.close_code


@pytest.mark.parametrize("case", ["bad_token", "viewer", "other_tenant", "ended", "bad_last_event_id", "no_token"])
async def test_a_stream_is_refused_with_a_close_code_naming_why(
    case: str, tenant: TenantCtx, other_tenant: TenantCtx, engine: AsyncEngine
) -> None:
    agent = await create_agent(tenant.http)
    session = await start_session(tenant.http, agent["id"])
    sid = session["id"]
    if case == "ended":
        await tenant.http.post(f"/v1/voice/sessions/{sid}/end")
        await wait_session(tenant.http, sid, lambda s: s["status"] == SessionStatus.ENDED)
    url, first, expected = {
        "bad_token": (_ws(tenant, sid, "nope"), None, 4401),
        "viewer": (_ws(tenant, sid, await tenant.key_for(engine, "viewer")), None, 4403),
        "other_tenant": (_ws(tenant, sid, other_tenant.key), None, 4404),
        "ended": (_ws(tenant, sid, tenant.key), None, 4410),
        "bad_last_event_id": (_ws(tenant, sid, tenant.key, "last_event_id=x"), None, 4400),
        "no_token": (_ws(tenant, sid, None), '{"type": "hello"}', 4401),
    }[case]
    assert await _close_code(url, first) == expected
