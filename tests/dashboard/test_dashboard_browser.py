"""The dashboard in real Chromium against the real stack: sign-in, live runs, approvals, versions, pipelines, roles.

Each test drives one scenario of ``dashboard/e2e/scenarios`` (playwright-core on Debian's
chromium, no browser download) and then checks through the API that what the browser did
happened. Screenshots of every main page are kept in ``dashboard/test-results/screenshots``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from bench.recommend_history import failing_tool_run
from core.speech.base import SAMPLE_RATE, Audio
from tests.conftest import TenantCtx, new_tenant
from tests.dashboard.conftest import DASHBOARD, NODE
from tests.recommend import support as recommend
from tests.support.experiments import candidate_version, start_experiment
from tests.support.pipelines import wait_pipeline_run
from tests.support.runs import create_agent, wait_for, wait_run
from tests.support.users import PASSWORD, make_user
from tests.support.voice import say, speech, spoken_wav, start_session, wait_session, wav_of
from workers.embedded.stack import StackProcess

SCREENSHOTS = DASHBOARD / "test-results" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian package chromium; .ci/run installs it)"
)
PIPELINE = {
    "inputs": {"type": "object", "properties": {"question": {"type": "string"}}},
    "steps": [
        {"id": "gate", "type": "approval", "prompt": "Ship it?"},
        {"id": "compute", "type": "tool", "tool": "calculator", "args": {"expression": "6 * 7"}, "needs": ["gate"]},
    ],
    "output": "steps.compute.output",
}
RECOMMENDED = {"applyRec": "flaky lookup", "openRec": "lookup kept"}
"""Agents given a failing tool: the first one's recommendation is applied in the browser, the other's stays open."""


@dataclass
class World:
    """A tenant with users of three roles and the objects the scenarios open."""

    tenant: TenantCtx
    config: dict[str, Any] = field(default_factory=dict)


async def _post(http: httpx.AsyncClient, url: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = await http.post(url, json=body)
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _waiting_run(tenant: TenantCtx, agent_id: str) -> str:
    run = await _post(tenant.http, f"/v1/agents/{agent_id}/runs", {"input": "What is 6 * 7?"}, 202)
    await wait_for(tenant, run["id"], lambda r: r["status"] == "waiting_approval")
    run_id: str = run["id"]
    return run_id


async def _recommendations(tenant: TenantCtx, engine: AsyncEngine, temporal: Client) -> dict[str, str]:
    """Two agents whose tool fails 40% of 300 written runs, mined into one open recommendation each."""
    await recommend.tools(tenant.http, "lookup")
    agents = {key: await recommend.agent(tenant.http, ["lookup"], name=name) for key, name in RECOMMENDED.items()}
    failing = partial(failing_tool_run, rate=0.4)
    await recommend.history(engine, tenant.id, [(a["id"], 1, failing, 300) for a in agents.values()])
    await recommend.refreshed(tenant, temporal)
    found = {r["target"]["agent_id"]: r for r in await recommend.listed(tenant, status="open", kind="tool")}
    ids = {key: found[a["id"]]["id"] for key, a in agents.items()}
    return ids | {f"{key}Agent": a["id"] for key, a in agents.items()}


async def _voice_session(tenant: TenantCtx, agent_id: str) -> str:
    """An active voice session with one spoken turn answered (both recordings kept)."""
    session = await start_session(tenant.http, agent_id, subject="e2e-caller", idle_timeout_s=3600)
    turn = await say(tenant.http, session["id"], spoken_wav("What is six times seven?", pad_s=0.3))
    assert (turn.status_code, turn.json()["status"]) == (201, "completed"), turn.text
    session_id: str = session["id"]
    return session_id


@pytest.fixture(scope="module")
async def world(
    stack: StackProcess, engine: AsyncEngine, temporal_client: Client, dashboard_built: Path
) -> AsyncIterator[World]:
    """The objects the scenarios open, in a tenant of their own."""
    built = await build_world(stack, engine, temporal_client)
    yield built
    await built.tenant.http.aclose()


async def build_world(stack: StackProcess, engine: AsyncEngine, temporal: Client) -> World:
    """Users, agents, runs, a pipeline, an optimizer run, an experiment, a memory, recommendations and a voice
    session for the scenarios."""
    tenant = await new_tenant(stack, engine)
    http = tenant.http
    users = {role: await make_user(engine, tenant.id, role) for role in ("owner", "operator", "viewer")}
    slow = await create_agent(http, name="slow calculator", model={"provider": "local", "params": {"latency_ms": 900}})
    calc = await create_agent(http, name="e2e calculator", instructions="You are a careful calculator.")
    editable = await create_agent(http, name="editable agent", instructions="You are a careful calculator.")
    approver = await create_agent(
        http, name="needs approval", tools=[{"name": "calculator", "requires_approval": True}]
    )
    completed = await _post(http, f"/v1/agents/{calc['id']}/runs", {"input": "What is 12 * (3 + 4)?"}, 202)
    await wait_run(http, completed["id"])
    await _post(http, f"/v1/runs/{completed['id']}/feedback", {"score": 1, "label": "right"})
    pipeline = await _post(http, "/v1/pipelines", {"name": "approval pipeline", "definition": PIPELINE})
    pipeline_run = await _post(http, f"/v1/pipelines/{pipeline['id']}/runs", {"input": {"question": "x"}}, 202)
    await wait_pipeline_run(http, pipeline_run["id"], lambda r: r["status"] == "waiting_approval")
    examples = [{"input": f"What is {n} + {n}?", "expected": str(2 * n)} for n in range(1, 7)]
    await _post(http, f"/v1/agents/{calc['id']}/datasets", {"name": "sums", "examples": examples})
    optimizer_run = await _post(
        http,
        f"/v1/agents/{calc['id']}/optimizer/runs",
        {"metric": {"type": "contains"}, "budget": {"max_evals": 24}, "auto_promote": False},
        202,
    )
    version = await candidate_version(http, calc["id"], instructions="Be brief.")
    experiment = await start_experiment(http, calc["id"], candidate_version=version, traffic=0.5)
    memory = await http.post("/v1/memories", json={"subject": "e2e-subject", "text": "Ana lives in Lisbon"})
    assert memory.status_code in (201, 202), memory.text  # 202 while its embedding is pending
    config = {
        "password": PASSWORD,
        **{role: {"email": email} for role, email in users.items()},
        "slowAgent": slow["id"],
        "editAgent": editable["id"],
        "editAgentName": editable["name"],
        "completedRun": completed["id"],
        "waitingRun": await _waiting_run(tenant, approver["id"]),
        "waitingRun2": await _waiting_run(tenant, approver["id"]),
        "pipeline": pipeline["id"],
        "pipelineRun": pipeline_run["id"],
        "optimizerRun": optimizer_run["id"],
        "experiment": experiment["id"],
        "voiceSession": await _voice_session(tenant, calc["id"]),
        **await _recommendations(tenant, engine, temporal),
        "recommendedAgentNames": RECOMMENDED,
    }
    return World(tenant=tenant, config=config)


def _scenario(stack: StackProcess, world: World, name: str, **extra: Any) -> list[dict[str, Any]]:
    """Run one browser scenario (with ``extra`` added to the world's configuration); the JSON lines it prints are
    its findings."""
    assert NODE is not None
    result = subprocess.run(
        [NODE, "e2e/run.mjs", name],
        cwd=DASHBOARD,
        env={
            **os.environ,
            "DASHBOARD_URL": stack.api_url,
            "SCREENSHOT_DIR": str(SCREENSHOTS),
            "CHROMIUM": str(CHROMIUM),
            "E2E": json.dumps(world.config | extra),
        },
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}\nscreenshots: {SCREENSHOTS}"
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


async def test_sign_in_start_a_run_and_watch_it_complete_live(stack: StackProcess, world: World) -> None:
    [found] = _scenario(stack, world, "run_live")
    run = (await world.tenant.http.get(f"/v1/runs/{found['run_id']}")).json()
    assert (run["agent_id"], run["input"], run["status"]) == (world.config["slowAgent"], "What is 6 * 7?", "completed")


async def test_an_operator_approves_a_waiting_step(stack: StackProcess, world: World) -> None:
    _scenario(stack, world, "approve_run")
    run = await wait_run(world.tenant.http, world.config["waitingRun"])
    approval = next(s for s in run["steps"] if s["kind"] == "approval")
    assert (run["status"], approval["output"]["decision"], approval["output"]["comment"]) == (
        "completed",
        "approve",
        "looks right",
    )


async def test_edit_an_agent_compare_versions_and_roll_back(stack: StackProcess, world: World) -> None:
    _scenario(stack, world, "agent_rollback")
    agent_id = world.config["editAgent"]
    versions = (await world.tenant.http.get(f"/v1/agents/{agent_id}/versions")).json()["items"]
    assert [(v["version"], v["current"]) for v in versions] == [(2, False), (1, True)]
    assert versions[0]["instructions"] == "Answer in one short sentence.\nAlways show your arithmetic."
    assert (await world.tenant.http.get(f"/v1/agents/{agent_id}")).json()["version"] == 1


async def test_run_a_pipeline_and_approve_it(stack: StackProcess, world: World) -> None:
    [found] = _scenario(stack, world, "pipeline_approve")
    run = await wait_pipeline_run(world.tenant.http, found["pipeline_run_id"])
    assert (run["pipeline_id"], run["status"], run["input"]) == (
        world.config["pipeline"],
        "completed",
        {"question": "6 * 7"},
    )
    assert run["output"] == {"expression": "6 * 7", "value": 42}


async def test_apply_a_recommendation_mined_from_run_history(stack: StackProcess, world: World) -> None:
    _scenario(stack, world, "recommendation_apply")
    http, config = world.tenant.http, world.config
    applied = (await http.get(f"/v1/recommendations/{config['applyRec']}")).json()
    assert (applied["status"], applied["result"]) == ("applied", {"agent_version": 2})
    version = (await http.get(f"/v1/agents/{config['applyRecAgent']}/versions/2")).json()
    assert (version["created_by"], version["current"]) == ({"kind": "recommendation", "id": applied["id"]}, True)
    assert [(t["name"], t["requires_approval"]) for t in version["tools"]] == [("lookup", True)]
    assert (await http.get(f"/v1/recommendations/{config['openRec']}")).json()["status"] == "open"


async def test_a_voice_session_plays_its_recordings_and_a_new_one_is_started_and_ended(
    stack: StackProcess, world: World
) -> None:
    [found] = _scenario(stack, world, "voice_session")
    session = await wait_session(world.tenant.http, found["session_id"], lambda s: s["status"] != "active")
    assert (session["status"], session["end_reason"], session["agent_id"]) == (
        "ended",
        "ended",
        world.config["editAgent"],
    )


async def test_talk_to_an_agent_from_the_microphone(stack: StackProcess, world: World, tmp_path: Path) -> None:
    question = speech("What is six times seven?")
    wav = tmp_path / "question.wav"  # the fake microphone loops it: the question, then 6 s of silence
    wav.write_bytes(wav_of(Audio(question.pcm + b"\x00\x00" * SAMPLE_RATE * 6), pad_s=0.5))
    session = await start_session(world.tenant.http, world.config["editAgent"], idle_timeout_s=600)
    _scenario(stack, world, "voice_talk", talkSession=session["id"], talkWav=str(wav))
    turn = (await wait_session(world.tenant.http, session["id"], lambda s: bool(s["turns"])))["turns"][0]
    words = turn["transcript"].lower()
    assert "six" in words or "6" in words, turn
    assert "seven" in words or "7" in words, turn
    assert "42" in turn["reply_text"], turn
    assert turn["latency_ms"]["total"] > 0, turn


async def test_a_viewer_sees_no_write_controls(stack: StackProcess, world: World) -> None:
    _scenario(stack, world, "viewer_read_only")


async def test_main_pages_are_accessible_in_both_themes_and_at_phone_width(stack: StackProcess, world: World) -> None:
    _scenario(stack, world, "pages_a11y")
    shots = {path.stem for path in SCREENSHOTS.glob("*.png")}
    assert {"light-runs", "light-run-detail", "dark-runs", "phone-run-detail", "sign-in"} <= shots
    assert {"dark-voice-session", "dark-recommendations", "phone-voice-session", "phone-recommendations"} <= shots
