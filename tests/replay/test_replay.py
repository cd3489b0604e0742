"""Recorded histories replay against today's workflow code without non-determinism."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workers.build import sandbox_runner
from workflows.agent_run import (
    CANCEL_MODEL_STEP,
    DECISION_AT_DEADLINE,
    DELIVERY_START_IDEMPOTENT,
    IDLE_CANCEL_KEEPS_ANSWER,
    LOCAL_BEGIN,
    LOCAL_FINISH,
    MAX_CONCURRENT_TOOL_CALLS,
    MESSAGE_AT_IDLE_DEADLINE,
    PARALLEL_TOOLS,
    RETRY_AT_DEADLINE,
    RUN_CLOSED_EVENT,
    RUN_STATUS_ATTRIBUTE,
    TOOL_CALL_LIMIT,
    AgentRunWorkflow,
)
from workflows.memory import (
    CONSOLIDATION_PAGED,
    MemoryConsolidationWorkflow,
    MemoryExtractWorkflow,
    MemoryIngestWorkflow,
)
from workflows.optimizer import OptimizerWorkflow
from workflows.pipeline import LOCAL_WRITES, PipelineWorkflow
from workflows.pipeline_map import PipelineMapChunkWorkflow
from workflows.recommend import RecommendationWorkflow
from workflows.replay import ReplayWorkflow
from workflows.run_reconciliation import RunReconciliationWorkflow
from workflows.voice import VoiceRetentionWorkflow, VoiceSessionWorkflow
from workflows.voice.session import KEEP_HEARD_PATCH
from workflows.webhook_delivery import WebhookDeliveryWorkflow

ROOT = Path(__file__).parent / "histories"
HISTORIES = sorted(ROOT.rglob("*.json"))
"""Today's recordings, plus runs of earlier workflow code that may still be in flight: under
``before_local_steps/`` from before ``begin`` became a local activity, under ``begin_local_only/``
from before ``finish`` became one and tool calls ran concurrently, under ``before_webhooks_queue/``
from before deliveries ran on their own task queue (a run whose delivery was refused as already
started failed then; its replay must still fail the same way), under ``before_consolidation_paged/``
from before consolidation paged its tenants and bounded each tenant's attempts, under
``before_tool_call_limit/`` from before at most 8 tool calls of one answer ran at once (all its
calls were scheduled together)."""


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
        "memory_consolidation_paged",
        "parallel_tools",
        "parallel_retry",
        "message_at_idle_deadline_single_batch",
        "retry_at_window_end_single_batch",
        "decision_at_deadline_single_batch",
        "cancel_in_tool",
        "webhook_run",
        "webhook_delivery",
        "redelivery",
        "run_closed",
        "run_closed_failed",
        "run_status",
    }


def test_pipeline_histories_exist() -> None:
    """One recorded run per step type and ending: tools, retries, approvals, deadlines, maps (chunked too),
    agents, sub-pipelines, cancel, webhook deliveries, a re-run (reused records) and a run a schedule started."""
    assert {p.stem for p in (ROOT / "pipelines").glob("*.json")} >= {
        "parallel_tools",
        "retry_continue",
        "approvals",
        "deadlines_wait",
        "map",
        "agent_step",
        "cancel",
        "sub_pipeline",
        "map_chunked",
        "map_chunk",
        "webhooks",
        "rerun",
        "scheduled",
    }


def test_voice_histories_exist() -> None:
    """Spoken, silent and ended turns; a session continued as new (its first and its next run); a barge-in;
    a worker killed mid-turn; a retention pass; streamed turns, and a barge-in over the stream."""
    assert {p.stem for p in (ROOT / "voice").glob("*.json")} >= {
        "turns",
        "continue_as_new",
        "continued",
        "interrupt",
        "crash_recovery",
        "retention",
        "streamed",
        "barge_in",
    }


def test_voice_barge_in_keeps_what_was_heard_behind_a_patch() -> None:
    """The interrupt recorded before the thread kept only what was heard replays without it (test_replay)."""
    assert _patches(ROOT / "voice" / "barge_in.json") == {KEEP_HEARD_PATCH}
    assert not _patches(ROOT / "voice" / "interrupt.json")


def test_earlier_histories_kept() -> None:
    assert len(list((ROOT / "before_local_steps").glob("*.json"))) >= 11
    assert len(list((ROOT / "begin_local_only").glob("*.json"))) >= 10
    assert _patches(ROOT / "begin_local_only" / "tool_loop.json") == {LOCAL_BEGIN}
    assert {p.stem for p in (ROOT / "before_webhooks_queue").glob("*.json")} >= {"webhook_run", "redelivery"}


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: str(p.relative_to(ROOT).with_suffix("")))
async def test_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    result = await Replayer(
        workflows=[
            AgentRunWorkflow,
            MemoryIngestWorkflow,
            MemoryExtractWorkflow,
            MemoryConsolidationWorkflow,
            WebhookDeliveryWorkflow,
            RunReconciliationWorkflow,
            PipelineWorkflow,
            PipelineMapChunkWorkflow,
            OptimizerWorkflow,
            ReplayWorkflow,
            VoiceSessionWorkflow,
            VoiceRetentionWorkflow,
            RecommendationWorkflow,
        ],
        workflow_runner=sandbox_runner(),
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


def test_runtime_fixes_are_patched() -> None:
    """Each changed command sequence records its own marker in the history that takes it."""
    assert TOOL_CALL_LIMIT in _patches(ROOT / "many_tool_calls.json")
    # Timer and update in one workflow task. In the SDK's default job order the update's condition
    # held before the timer fired: no re-check, no marker. In the single-batch order the timer won
    # and the re-check honoured the update: its marker.
    deadlines = {
        "message_at_idle_deadline": MESSAGE_AT_IDLE_DEADLINE,
        "retry_at_window_end": RETRY_AT_DEADLINE,
        "decision_at_deadline": DECISION_AT_DEADLINE,
    }
    for name, patch in deadlines.items():
        assert not _patches(ROOT / f"{name}.json") & set(deadlines.values())
        assert _patches(ROOT / f"{name}_single_batch.json") & set(deadlines.values()) == {patch}
    assert _patches(ROOT / "cancel_in_model_step.json") >= {CANCEL_MODEL_STEP}
    assert _patches(ROOT / "cancel_idle.json") >= {IDLE_CANCEL_KEEPS_ANSWER}
    # A re-check that changes nothing records no marker: ordinary timeouts replay as before.
    assert not _patches(ROOT / "continue_as_new_turns.json") & {MESSAGE_AT_IDLE_DEADLINE, IDLE_CANCEL_KEEPS_ANSWER}


def _tool_calls_before_the_first_result(path: Path) -> int:
    """Tool activities a history schedules before the first of them completes."""
    scheduled = 0
    for event in json.loads(path.read_text())["events"]:
        attributes = event.get("activityTaskScheduledEventAttributes", {})
        if attributes.get("activityType", {}).get("name") == "agent_run.tool":
            scheduled += 1
        if scheduled and "activityTaskCompletedEventAttributes" in event:
            return scheduled
    return scheduled


def test_tool_call_limit_histories() -> None:
    """Ten calls of one answer: today 8 start at once (patched); before the limit all ten did."""
    assert _tool_calls_before_the_first_result(ROOT / "many_tool_calls.json") == MAX_CONCURRENT_TOOL_CALLS
    before = ROOT / "before_tool_call_limit" / "many_tool_calls.json"
    assert TOOL_CALL_LIMIT not in _patches(before)
    assert PARALLEL_TOOLS in _patches(before)
    assert _tool_calls_before_the_first_result(before) == 10


def test_a_refused_delivery_start_is_patched() -> None:
    """Today's run shrugs off an already started delivery (patch marker); the earlier one failed for it."""
    assert DELIVERY_START_IDEMPOTENT in _patches(ROOT / "redelivery.json")
    assert DELIVERY_START_IDEMPOTENT not in _patches(ROOT / "before_webhooks_queue" / "redelivery.json")
    events = json.loads((ROOT / "before_webhooks_queue" / "redelivery.json").read_text())["events"]
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_FAILED"


def test_consolidation_histories_take_the_paged_path() -> None:
    """Today's passes are patched (paged, bounded); the serial pass recorded before still replays."""
    assert CONSOLIDATION_PAGED in _patches(ROOT / "memory_consolidation.json")
    assert CONSOLIDATION_PAGED in _patches(ROOT / "memory_consolidation_paged.json")
    assert not _patches(ROOT / "before_consolidation_paged" / "memory_consolidation.json")
    events = json.loads((ROOT / "memory_consolidation_paged.json").read_text())["events"]
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW"


def test_closing_runs_announce_it_behind_a_patch() -> None:
    """Today's runs publish ``run.closed`` as they end (completed or failed); the runs recorded before do not."""
    for name in ("run_closed", "run_closed_failed"):
        assert RUN_CLOSED_EVENT in _patches(ROOT / f"{name}.json")
        events = json.loads((ROOT / f"{name}.json").read_text())["events"]
        scheduled = [
            e["activityTaskScheduledEventAttributes"] for e in events if "activityTaskScheduledEventAttributes" in e
        ]
        assert [a["activityType"]["name"] for a in scheduled].count("agent_run.close") == 1
    assert not _patches(ROOT / "two_turns.json") & {RUN_CLOSED_EVENT}


def _run_statuses(path: Path) -> list[str]:
    """``RunStatus`` values a history upserts, in order."""
    statuses = []
    for event in json.loads(path.read_text())["events"]:
        fields = event.get("upsertWorkflowSearchAttributesEventAttributes", {}).get("searchAttributes", {})
        value = fields.get("indexedFields", {}).get("RunStatus")
        if value:
            statuses.append(json.loads(base64.b64decode(value["data"])))
    return statuses


def test_run_status_search_attribute_is_patched() -> None:
    """Today's runs keep ``RunStatus`` current (failed while a retry is possible); earlier runs replay without."""
    today = ROOT / "run_status.json"
    assert RUN_STATUS_ATTRIBUTE in _patches(today)
    assert _run_statuses(today) == ["running", "failed", "running", "completed"]
    for earlier in ("retry_after_failure", "approval", "run_closed_failed"):
        assert RUN_STATUS_ATTRIBUTE not in _patches(ROOT / f"{earlier}.json")
        assert not _run_statuses(ROOT / f"{earlier}.json")


def test_pipeline_histories_before_and_after_local_writes() -> None:
    """Runs started before ``LOCAL_WRITES`` (kept, they must replay) wrote the projection through
    regular activities; today's through local activities."""
    before = sorted((ROOT / "pipelines_before_local_writes").glob("*.json"))
    today = sorted((ROOT / "pipelines").glob("*.json"))
    assert len(before) >= 13
    assert all(_patches(path) == set() for path in before)
    assert all(LOCAL_WRITES in _patches(path) for path in today)


def test_optimizer_histories_exist() -> None:
    """A run that promotes, the first run of one split by continue-as-new, a run a schedule started and a
    counterfactual replay."""
    assert {p.stem for p in (ROOT / "optimizer").glob("*.json")} >= {
        "promotion",
        "continued_as_new",
        "scheduled",
        "replay",
    }


def test_recommendation_histories_exist() -> None:
    """A refresh pass that found a problem, saved it and measured outcomes."""
    assert {p.stem for p in (ROOT / "recommend").glob("*.json")} >= {"refresh"}
    events = json.loads((ROOT / "recommend" / "refresh.json").read_text())["events"]
    scheduled = [
        e["activityTaskScheduledEventAttributes"]["activityType"]["name"]
        for e in events
        if "activityTaskScheduledEventAttributes" in e
    ]
    assert sorted(scheduled) == sorted(["recommend.mine"] * 4 + ["recommend.save", "recommend.outcomes"])
