"""Recorded histories replay against today's workflow code without non-determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.agent_run import AgentRunWorkflow
from workflows.memory import MemoryConsolidationWorkflow, MemoryExtractWorkflow, MemoryIngestWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_exist() -> None:
    assert {p.stem for p in HISTORIES} >= {
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
    }


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    result = await Replayer(
        workflows=[AgentRunWorkflow, MemoryIngestWorkflow, MemoryExtractWorkflow, MemoryConsolidationWorkflow]
    ).replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
