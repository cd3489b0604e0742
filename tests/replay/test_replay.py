"""Recorded histories replay against today's workflow code without non-determinism."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.agent_run import LOCAL_BEGIN, LOCAL_FINISH, PARALLEL_TOOLS, AgentRunWorkflow
from workflows.memory import MemoryConsolidationWorkflow, MemoryExtractWorkflow, MemoryIngestWorkflow

ROOT = Path(__file__).parent / "histories"
HISTORIES = sorted(ROOT.rglob("*.json"))
"""Today's recordings, plus runs of earlier workflow code that may still be in flight: under
``before_local_steps/`` from before ``begin`` became a local activity, under ``begin_local_only/``
from before ``finish`` became one and tool calls ran concurrently."""


def test_histories_exist() -> None:
    assert {p.stem for p in ROOT.glob("*.json")} >= {
        "tool_loop",
        "step_limit",
        "missing_run",
        "http_run",
        "crash_recovery",
        "continue_as_new",
        "two_turns",
        "approval",
        "retry_after_failure",
        "interrupt",
        "run_agent",
        "memory_ingest",
        "memory_consolidation",
        "parallel_tools",
        "parallel_retry",
        "cancel_in_tool",
    }


def test_earlier_histories_kept() -> None:
    assert len(list((ROOT / "before_local_steps").glob("*.json"))) >= 11
    assert len(list((ROOT / "begin_local_only").glob("*.json"))) >= 10
    assert _patches(ROOT / "begin_local_only" / "tool_loop.json") == {LOCAL_BEGIN}


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: str(p.relative_to(ROOT).with_suffix("")))
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    result = await Replayer(
        workflows=[AgentRunWorkflow, MemoryIngestWorkflow, MemoryExtractWorkflow, MemoryConsolidationWorkflow]
    ).replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


def _patches(path: Path) -> set[str]:
    """Patch ids recorded in a history's markers."""
    patches = set()
    for event in json.loads(path.read_text())["events"]:
        marker = event.get("markerRecordedEventAttributes", {})
        if marker.get("markerName") == "core_patch":
            data = marker["details"]["patch-data"]["payloads"][0]["data"]
            patches.add(json.loads(base64.b64decode(data))["id"])
    return patches


def test_todays_histories_take_the_local_steps() -> None:
    assert _patches(ROOT / "tool_loop.json") >= {LOCAL_BEGIN, LOCAL_FINISH, PARALLEL_TOOLS}
    assert not _patches(ROOT / "before_local_steps" / "tool_loop.json")
