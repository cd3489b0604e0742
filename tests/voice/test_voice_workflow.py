"""The voice workflows on the stack's voice worker: a long session continued as new, barge-in, a retention pass."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowExecutionStatus

from core.contracts.voice import (
    EndSession,
    Interrupt,
    RetentionInput,
    SessionStatus,
    TranscriptQuery,
    Utterance,
    VoiceSessionInput,
)
from core.db.models import VoiceSession
from core.ids import new_id, voice_session_workflow_id
from core.speech.audio import encode_wav
from core.speech.base import Audio
from core.voice.audio_store import PgAudioStore, Recording
from core.voice.store import VoiceStore
from tests.conftest import TenantCtx
from tests.support.runs import create_agent, record_history, wait_run
from tests.support.voice import say, spoken_wav, start_session
from workflows.voice import VoiceRetentionWorkflow, VoiceSessionWorkflow


async def _silent_utterance(engine: AsyncEngine, tenant_id: str, session_id: str) -> Utterance:
    audio_id = new_id("aud")
    silence = Audio(b"\x00\x00" * 4_000)
    await PgAudioStore(engine).put(
        Recording(
            id=audio_id,
            tenant_id=tenant_id,
            session_id=session_id,
            side="user",
            wav=encode_wav(silence),
            duration_s=silence.duration_s,
        )
    )
    return Utterance(turn_id=new_id("vt"), audio_id=audio_id)


async def test_a_long_session_continues_as_new_and_keeps_counting(
    tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    agent = await create_agent(tenant.http)
    session_id = new_id("vs")
    workflow_id = voice_session_workflow_id(tenant.id, session_id)
    await VoiceStore(engine).start(
        VoiceSession(
            id=session_id,
            tenant_id=tenant.id,
            agent_id=agent["id"],
            agent_version=1,
            thread_id=new_id("thr"),
            status=SessionStatus.ACTIVE.value,
            idle_timeout_s=60,
            workflow_id=workflow_id,
        ),
        live_limit=100,
    )
    handle = await temporal_client.start_workflow(
        VoiceSessionWorkflow.run,
        VoiceSessionInput(
            tenant_id=tenant.id,
            session_id=session_id,
            agent_id=agent["id"],
            agent_version=1,
            thread_id=new_id("thr"),
            idle_timeout_s=60,
            max_turns_per_execution=2,
        ),
        id=workflow_id,
        task_queue="voice",
    )
    first_run = handle.result_run_id
    results = []
    for _ in range(3):
        utterance = await _silent_utterance(engine, tenant.id, session_id)
        results.append(await handle.execute_update(VoiceSessionWorkflow.submit_utterance, utterance))
    assert [(r.seq, r.status) for r in results] == [(1, "silent"), (2, "silent"), (3, "silent")]
    first = await temporal_client.get_workflow_handle(workflow_id, run_id=first_run).describe()
    assert first.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    view = await handle.query(VoiceSessionWorkflow.transcript, TranscriptQuery(last=5))
    assert (view.turns, [line.seq for line in view.lines]) == (3, [1, 2, 3])
    await handle.signal(VoiceSessionWorkflow.end, EndSession())
    result = await handle.result()
    assert (result.turns, result.reason) == (3, "ended")
    async with engine.connect() as conn:
        seqs = (
            await conn.execute(text("select seq from voice_turn where session_id = :s order by seq"), {"s": session_id})
        ).scalars()
        row = (
            await conn.execute(
                text("select status, end_reason, turns from voice_session where id = :s"), {"s": session_id}
            )
        ).one()
    assert list(seqs) == [1, 2, 3]
    assert tuple(row) == ("ended", "ended", 3)
    await record_history(temporal_client, workflow_id, "voice/continue_as_new", run_id=first_run)
    await record_history(temporal_client, workflow_id, "voice/continued")


async def _wait_running_run(tenant: TenantCtx, agent_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        runs = (await tenant.http.get("/v1/runs", params={"agent_id": agent_id})).json()["items"]
        if runs and runs[0]["status"] == "running":
            return runs[0]  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError("the turn's run never ran")


async def test_an_interrupt_stops_the_turn_in_flight_and_the_thread_gets_no_reply(
    tenant: TenantCtx, temporal_client: Client
) -> None:
    agent = await create_agent(tenant.http, model={"provider": "local", "params": {"latency_ms": 4000}})
    session = await start_session(tenant.http, agent["id"])
    workflow_id = voice_session_workflow_id(tenant.id, session["id"])
    turn = asyncio.create_task(say(tenant.http, session["id"], spoken_wav("Hello there.")))
    run = await _wait_running_run(tenant, agent["id"])
    await temporal_client.get_workflow_handle(workflow_id).signal(VoiceSessionWorkflow.interrupt, Interrupt())
    response = await turn
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["status"], body["interrupted"], body["reply_text"], body["reply_audio_url"]) == (
        "interrupted",
        True,
        "",
        None,
    )
    assert body["run_id"] == run["id"]
    assert body["transcript"]
    assert (await wait_run(tenant.http, run["id"]))["status"] == "cancelled"
    messages = (await tenant.http.get(f"/v1/threads/{session['thread_id']}/messages")).json()["items"]
    assert [m["role"] for m in messages] == ["user"]
    # the session goes on
    after = (await say(tenant.http, session["id"], spoken_wav("Hello again."))).json()
    assert (after["seq"], after["status"]) == (2, "completed"), after
    read = (await tenant.http.get(f"/v1/voice/sessions/{session['id']}")).json()
    assert [(t["status"], t["interrupted"]) for t in read["turns"]] == [("interrupted", True), ("completed", False)]
    await tenant.http.post(f"/v1/voice/sessions/{session['id']}/end")
    await temporal_client.get_workflow_handle(workflow_id).result()
    await record_history(temporal_client, workflow_id, "voice/interrupt")


async def test_the_retention_pass_deletes_only_recordings_past_retention(
    tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    store = PgAudioStore(engine)
    session_id = new_id("vs")
    old, fresh = new_id("aud"), new_id("aud")
    for audio_id in (old, fresh):
        wav = encode_wav(Audio(b"\x00\x00" * 160))
        await store.put(
            Recording(id=audio_id, tenant_id=tenant.id, session_id=session_id, side="user", wav=wav, duration_s=0.01)
        )
    async with engine.begin() as conn:
        await conn.execute(
            text("update voice_audio set created_at = now() - interval '2 hours' where id = :a"), {"a": old}
        )
    assert await store.get(tenant.id, old, retention_s=0) is not None  # 0 keeps everything
    workflow_id = f"test-voice-retention-{new_id('x')}"
    result = await temporal_client.execute_workflow(
        VoiceRetentionWorkflow.run,
        RetentionInput(retention_s=3600, batch=1),
        id=workflow_id,
        task_queue="voice",
        execution_timeout=timedelta(seconds=60),
    )
    assert result.deleted >= 1
    assert await store.get(tenant.id, old, retention_s=0) is None
    assert await store.get(tenant.id, fresh, retention_s=3600) is not None
    # on read, a recording past retention is not served, and is deleted
    assert await store.get(tenant.id, fresh, retention_s=0.001) is None
    assert await store.get(tenant.id, fresh, retention_s=0) is None
    history = json.loads((await temporal_client.get_workflow_handle(workflow_id).fetch_history()).to_json())
    assert history["events"][-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    await record_history(temporal_client, workflow_id, "voice/retention")
