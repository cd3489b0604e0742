"""Voice sessions over HTTP on the real stack: spoken turns answered by an agent, silence, bad audio, the end."""

from __future__ import annotations

import io
import struct
import wave
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from core.contracts.voice import SessionStatus
from core.db.models import VoiceSession
from core.ids import new_id, voice_session_workflow_id
from core.voice.store import VoiceStore
from tests.conftest import TenantCtx
from tests.support.runs import create_agent, record_history
from tests.support.voice import say, silence_wav, spoken_wav, start_session, wait_session

PROBLEM = "application/problem+json"


def _wav_shape(data: bytes) -> tuple[int, int, int, float]:
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes() / wav.getframerate()


def _problem(response: httpx.Response, status: int, field: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert [e["field"] for e in body.get("errors", [])] == [field], body
    detail: str = body["detail"]
    return detail


async def _messages(http: httpx.AsyncClient, thread_id: str) -> list[dict[str, Any]]:
    response = await http.get(f"/v1/threads/{thread_id}/messages")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_spoken_question_is_answered_by_the_pinned_agent_on_the_sessions_thread(
    tenant: TenantCtx, temporal_client: Client
) -> None:
    agent = await create_agent(tenant.http)
    session = await start_session(tenant.http, agent["id"], subject="caller-1")
    assert (session["status"], session["agent_version"], session["turn_count"], session["turns"]) == (
        "active",
        1,
        0,
        [],
    )
    # 22.05 kHz stereo with silence around the question: resampled, mixed down and trimmed to the speech
    question = spoken_wav("What is six times seven?", rate=22_050, channels=2, pad_s=0.6)
    response = await say(tenant.http, session["id"], question)
    assert response.status_code == 201, response.text
    turn = response.json()
    assert turn["status"] == "completed", turn
    assert "42" in turn["reply_text"], turn
    words = turn["transcript"].lower()
    assert "six" in words or "6" in words, words
    assert "seven" in words or "7" in words, words
    latency = turn["latency_ms"]
    assert all(latency[stage] > 0 for stage in ("vad", "stt", "agent", "tts", "total")), latency
    assert latency["total"] >= latency["stt"] + latency["tts"]

    reply = await tenant.http.get(turn["reply_audio_url"])
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "audio/wav"
    channels, width, rate, seconds = _wav_shape(reply.content)
    assert (channels, width, rate) == (1, 2, 16_000)
    assert seconds > 0.5
    said = await tenant.http.get(turn["user_audio_url"])
    assert said.status_code == 200
    assert said.headers["content-type"] == "audio/wav"
    assert _wav_shape(said.content)[:3] == (1, 2, 16_000)
    assert abs(_wav_shape(said.content)[3] - _wav_shape(question)[3]) < 0.05

    run = (await tenant.http.get(f"/v1/runs/{turn['run_id']}")).json()
    assert (run["status"], run["agent_version"], run["thread_id"], run["subject"]) == (
        "completed",
        1,
        session["thread_id"],
        "caller-1",
    )
    assert (run["input"], run["output"]) == (turn["transcript"], turn["reply_text"])
    assert run["metadata"] == {"voice_session_id": session["id"], "voice_turn": 1}

    # a new version of the agent: the session keeps the version it started with
    patched = await tenant.http.patch(f"/v1/agents/{agent['id']}", json={"instructions": "Answer briefly."})
    assert patched.json()["version"] == 2
    second = (await say(tenant.http, session["id"], spoken_wav("Two plus three."))).json()
    assert (second["seq"], second["status"]) == (2, "completed"), second
    assert (await tenant.http.get(f"/v1/runs/{second['run_id']}")).json()["agent_version"] == 1
    silent = (await say(tenant.http, session["id"], silence_wav(1.0))).json()
    assert silent["status"] == "silent"

    read = (await tenant.http.get(f"/v1/voice/sessions/{session['id']}")).json()
    assert read["turn_count"] == 3
    assert [t["turn_id"] for t in read["turns"]] == [turn["turn_id"], second["turn_id"], silent["turn_id"]]
    assert read["turns"][0]["latency_ms"] == latency
    assert read["turns"][0]["reply_text"] == turn["reply_text"]
    messages = await _messages(tenant.http, session["thread_id"])
    assert [m["content"] for m in messages if m["role"] == "user"] == [turn["transcript"], second["transcript"]]
    assert [m["content"] for m in messages if m["role"] == "assistant" and m["content"]] == [
        turn["reply_text"],
        second["reply_text"],
    ]

    ended = await tenant.http.post(f"/v1/voice/sessions/{session['id']}/end")
    assert ended.status_code == 202, ended.text
    final = await wait_session(tenant.http, session["id"], lambda s: s["status"] == "ended")
    assert (final["end_reason"], final["turn_count"]) == ("ended", 3)
    await record_history(temporal_client, voice_session_workflow_id(tenant.id, session["id"]), "voice/turns")


async def test_silent_and_empty_audio_are_turns_without_an_agent_call(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    session = await start_session(tenant.http, agent["id"])
    for audio in (silence_wav(2.0), silence_wav(0.0)):
        response = await say(tenant.http, session["id"], audio)
        assert response.status_code == 201, response.text
        turn = response.json()
        assert (turn["status"], turn["transcript"], turn["reply_text"], turn["run_id"]) == ("silent", "", "", None)
        assert turn["reply_audio_url"] is None
        assert turn["user_audio_url"] is not None
        assert (turn["latency_ms"]["stt"], turn["latency_ms"]["agent"], turn["latency_ms"]["tts"]) == (0, 0, 0)
    runs = (await tenant.http.get("/v1/runs", params={"agent_id": agent["id"]})).json()["items"]
    assert runs == []
    assert (await tenant.http.get(turn["user_audio_url"].replace("side=user", "side=reply"))).status_code == 404


def _float_wav() -> bytes:
    fmt = struct.pack("<HHIIHH", 3, 1, 16_000, 64_000, 4, 32)
    data = struct.pack("<4f", 0.0, 0.1, -0.1, 0.0)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


async def test_bad_audio_is_refused_naming_the_problem_and_records_nothing(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    session = await start_session(tenant.http, agent["id"])
    url = f"/v1/voice/sessions/{session['id']}/turns"
    wav = silence_wav(0.5)
    detail = _problem(
        await tenant.http.post(url, content=wav, headers={"content-type": "text/plain"}), 415, "content-type"
    )
    assert "audio/wav" in detail
    assert "not a WAV file" in _problem(await say(tenant.http, session["id"], b"hello, not audio"), 415, "body")
    assert "empty" in _problem(await say(tenant.http, session["id"], b""), 415, "body")
    assert "float" in _problem(await say(tenant.http, session["id"], _float_wav()), 415, "body")
    assert "data chunk" in _problem(
        await say(tenant.http, session["id"], wav[:44].replace(b"data", b"junk")), 422, "body"
    )
    assert "AIMPACT_VOICE_MAX_UTTERANCE_S" in _problem(
        await say(tenant.http, session["id"], silence_wav(31)), 413, "body"
    )
    too_big = await say(tenant.http, session["id"], b"\x00" * (3 * 1024 * 1024 + 1))  # under the body limit
    assert "AIMPACT_VOICE_MAX_UTTERANCE_BYTES" in _problem(too_big, 413, "body")
    read = (await tenant.http.get(f"/v1/voice/sessions/{session['id']}")).json()
    assert (read["turn_count"], read["turns"]) == (0, [])


async def test_session_start_refuses_what_it_cannot_start(tenant: TenantCtx, engine: AsyncEngine) -> None:
    agent = await create_agent(tenant.http)
    assert "no agent agt_nope" in _problem(
        await tenant.http.post("/v1/voice/sessions", json={"agent_id": "agt_nope"}), 422, "agent_id"
    )
    too_long = await tenant.http.post("/v1/voice/sessions", json={"agent_id": agent["id"], "idle_timeout_s": 86_400})
    assert "AIMPACT_VOICE_MAX_IDLE_TIMEOUT_S" in _problem(too_long, 422, "idle_timeout_s")
    bad = await tenant.http.post("/v1/voice/sessions", json={"agent_id": agent["id"], "subject": "x\u0000"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "subject"
    # a session recorded live whose workflow is gone from Temporal holds no slot: it is closed at the limit
    ghost = new_id("vs")
    await VoiceStore(engine).start(
        VoiceSession(
            id=ghost,
            tenant_id=tenant.id,
            agent_id=agent["id"],
            agent_version=1,
            thread_id=new_id("thr"),
            status=SessionStatus.ACTIVE.value,
            idle_timeout_s=60,
            workflow_id=voice_session_workflow_id(tenant.id, ghost),
        ),
        live_limit=20,
    )
    live = [await start_session(tenant.http, agent["id"], idle_timeout_s=60) for _ in range(20)]  # the limit: 20
    closed = (await tenant.http.get(f"/v1/voice/sessions/{ghost}")).json()
    assert (closed["status"], closed["end_reason"], closed["error"]["type"]) == ("failed", "failed", "WorkflowClosed")
    limited = await tenant.http.post("/v1/voice/sessions", json={"agent_id": agent["id"]})
    assert limited.status_code == 429, limited.text
    assert int(limited.headers["retry-after"]) > 0
    assert "AIMPACT_VOICE_SESSIONS_PER_TENANT" in limited.json()["detail"]
    for session in live:
        assert (await tenant.http.post(f"/v1/voice/sessions/{session['id']}/end")).status_code == 202
    assert (await tenant.http.delete(f"/v1/agents/{agent['id']}")).status_code == 204
    archived = await tenant.http.post("/v1/voice/sessions", json={"agent_id": agent["id"]})
    assert archived.status_code == 409, archived.text


async def test_an_ended_session_refuses_turns_and_the_end_again(tenant: TenantCtx, other_tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    session = await start_session(tenant.http, agent["id"])
    turn = (await say(tenant.http, session["id"], silence_wav(0.3))).json()
    for path in ("", "/turns", "/end", f"/turns/{turn['turn_id']}/audio?side=user"):
        method = "GET" if path in ("", f"/turns/{turn['turn_id']}/audio?side=user") else "POST"
        theirs = await other_tenant.http.request(method, f"/v1/voice/sessions/{session['id']}{path}")
        assert theirs.status_code == 404, (path, theirs.text)
    assert (await tenant.http.post(f"/v1/voice/sessions/{session['id']}/end")).status_code == 202
    await wait_session(tenant.http, session["id"], lambda s: s["status"] == "ended")
    late = await say(tenant.http, session["id"], silence_wav(0.3))
    assert late.status_code == 409, late.text
    assert late.headers["content-type"].startswith(PROBLEM)
    assert (await tenant.http.post(f"/v1/voice/sessions/{session['id']}/end")).status_code == 409
    # what was recorded stays readable
    assert (await tenant.http.get(turn["user_audio_url"])).status_code == 200


async def test_an_idle_session_ends_by_itself(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    session = await start_session(tenant.http, agent["id"], idle_timeout_s=2)
    assert session["idle_timeout_s"] == 2
    assert (await say(tenant.http, session["id"], silence_wav(0.3))).status_code == 201
    ended = await wait_session(tenant.http, session["id"], lambda s: s["status"] == "ended", timeout_s=30)
    assert (ended["end_reason"], ended["turn_count"]) == ("idle", 1)
    assert ended["ended_at"] is not None
    assert (await say(tenant.http, session["id"], silence_wav(0.3))).status_code == 409


async def test_sessions_list_newest_first_by_page(tenant: TenantCtx, other_tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    ids = [(await start_session(tenant.http, agent["id"], idle_timeout_s=5))["id"] for _ in range(3)]
    first = (await tenant.http.get("/v1/voice/sessions", params={"limit": 2})).json()
    assert [s["id"] for s in first["items"]] == ids[::-1][:2]
    assert first["items"][0]["turns"] is None
    rest = (await tenant.http.get("/v1/voice/sessions", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert ([s["id"] for s in rest["items"]], rest["next_cursor"]) == ([ids[0]], None)
    filtered = await tenant.http.get("/v1/voice/sessions", params={"status": "ended", "agent_id": agent["id"]})
    assert filtered.json()["items"] == []
    assert (await other_tenant.http.get("/v1/voice/sessions")).json()["items"] == []
    assert _problem(await tenant.http.get("/v1/voice/sessions", params={"cursor": "bad"}), 422, "cursor")


async def test_erasing_a_subject_erases_its_voice_turns_and_recordings(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    session = await start_session(tenant.http, agent["id"], subject="to-forget")
    kept = await start_session(tenant.http, agent["id"], subject="to-keep")
    turn = (await say(tenant.http, session["id"], spoken_wav("Two plus three."))).json()
    other = (await say(tenant.http, kept["id"], silence_wav(0.3))).json()
    assert turn["status"] == "completed", turn
    erased = await tenant.http.delete("/v1/memories", params={"subject": "to-forget"})
    assert erased.status_code == 200, erased.text
    deleted = erased.json()["deleted"]
    assert (deleted["voice_turns"], deleted["voice_recordings"], deleted["voice_sessions_redacted"]) == (1, 2, 1)
    read = (await tenant.http.get(f"/v1/voice/sessions/{session['id']}")).json()
    assert (read["turns"], read["subject"]) == ([], None)
    for url in (turn["user_audio_url"], turn["reply_audio_url"]):
        assert (await tenant.http.get(url)).status_code == 404
    assert (await tenant.http.get(f"/v1/threads/{session['thread_id']}/messages")).status_code == 404
    assert (await tenant.http.get(f"/v1/runs/{turn['run_id']}")).json()["input"] == ""
    assert (await tenant.http.get(other["user_audio_url"])).status_code == 200  # another subject's stays
