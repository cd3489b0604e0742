"""The voice worker killed with SIGKILL mid-turn: the supervisor restarts it and the turn completes once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client

from core.ids import voice_session_workflow_id
from tests.conftest import TenantCtx
from tests.support.runs import create_agent, record_history
from tests.support.voice import say, spoken_wav, start_session
from workers.embedded.stack import StackProcess

pytestmark = pytest.mark.slow

LONG_QUESTION = (
    "I would like to ask you something about the weather in the mountains this weekend, "
    "because my friends and I are planning a long walk along the ridge and back again. "
    "Please tell me what you think."
)


async def _transcribing(client: Client, workflow_id: str, timeout_s: float = 60) -> None:
    """Until the session's ``voice.transcribe`` activity runs on a worker."""
    deadline = time.monotonic() + timeout_s
    handle = client.get_workflow_handle(workflow_id)
    while time.monotonic() < deadline:
        pending = (await handle.describe()).raw_description.pending_activities
        if any(
            a.activity_type.name == "voice.transcribe"
            and a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            for a in pending
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the turn was never transcribed")


async def test_sigkill_voice_worker_mid_turn_completes_the_turn_once(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    agent = await create_agent(tenant.http)
    session = await start_session(tenant.http, agent["id"], subject="crash-caller")
    workflow_id = voice_session_workflow_id(tenant.id, session["id"])
    turn = asyncio.create_task(say(tenant.http, session["id"], spoken_wav(LONG_QUESTION)))
    await _transcribing(temporal_client, workflow_id)
    victim = stack.pids()["worker-voice"]
    os.kill(victim, signal.SIGKILL)

    response = await turn
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "completed", body
    assert body["reply_text"], body
    assert body["reply_audio_url"], body
    assert stack.pids()["worker-voice"] != victim, "the supervisor restarted the worker"

    async with engine.connect() as conn:
        turns = (
            await conn.execute(text("select seq, run_id from voice_turn where session_id = :s"), {"s": session["id"]})
        ).all()
        runs = (
            (
                await conn.execute(
                    text("select id from run where tenant_id = :t and metadata->>'voice_session_id' = :s"),
                    {"t": tenant.id, "s": session["id"]},
                )
            )
            .scalars()
            .all()
        )
        replies = (
            await conn.execute(
                text(
                    "select count(*) from thread_message"
                    " where tenant_id = :t and thread_id = :th and role = 'assistant' and content <> ''"
                ),
                {"t": tenant.id, "th": session["thread_id"]},
            )
        ).scalar_one()
        recordings = (
            await conn.execute(
                text("select side, count(*) from voice_audio where session_id = :s group by side"), {"s": session["id"]}
            )
        ).all()
    assert [(seq, run_id) for seq, run_id in turns] == [(1, body["run_id"])]
    assert runs == [body["run_id"]], "one agent run for the turn"
    assert replies == 1, "one reply in the thread"
    assert sorted(recordings) == [("reply", 1), ("user", 1)]

    history = json.loads((await temporal_client.get_workflow_handle(workflow_id).fetch_history()).to_json())
    attempts = [
        e["activityTaskStartedEventAttributes"]["attempt"]
        for e in history["events"]
        if "activityTaskStartedEventAttributes" in e
    ]
    assert max(attempts) >= 2, "the interrupted transcription was retried"
    await tenant.http.post(f"/v1/voice/sessions/{session['id']}/end")
    await temporal_client.get_workflow_handle(workflow_id).result()
    await record_history(temporal_client, workflow_id, "voice/crash_recovery")
