"""Re-running a finished pipeline run from one of its steps: which recorded steps the new run keeps.

A re-run interprets a target version (the original run's, or another of the same pipeline).
It keeps the record of a step when nothing it depends on is run again and:

- the step exists in both versions with the same definition JSON (``needs`` included);
- the original run recorded it ``completed`` or ``skipped``.

Every other step, ``from_step`` and everything downstream of them run again. A kept map
step keeps its items' records (``m[0]``, ``m[1]`` …) too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.contracts.pipelines import PipelineStepStatus, StepRecord
from core.pipelines.plan import Graph
from core.pipelines.reads import PipelineStepRow
from core.pipelines.runs import Rerun
from core.pipelines.store import StepWrite
from core.pipelines.validation import load_definition

REUSABLE = frozenset({PipelineStepStatus.COMPLETED, PipelineStepStatus.SKIPPED})
_ITEM = re.compile(r"^(?P<map>.+)\[\d+\]$")


class UnknownStepError(KeyError):
    """``from_step`` is no top-level step of the target version."""


@dataclass(frozen=True)
class RerunPlan:
    """The records a re-run starts with, by top-level step id, and the steps it runs again."""

    reused: dict[str, StepRecord]
    rerun: frozenset[str]


def top_level(step_id: str) -> str:
    """The top-level step a recorded step belongs to (``m`` for the map item ``m[3]``)."""
    match = _ITEM.match(step_id)
    return top_level(match.group("map")) if match else step_id


def plan_rerun(
    target: dict[str, Any], original: dict[str, Any], from_step: str, records: Mapping[str, StepRecord]
) -> RerunPlan:
    """What a re-run of ``target`` from ``from_step`` keeps of a run of ``original`` that recorded ``records``.

    Raises:
        UnknownStepError: ``from_step`` is not a top-level step of ``target``.
    """
    graph = Graph.from_definition(load_definition(target))
    if from_step not in graph.depends:
        raise UnknownStepError(from_step)
    before = {s.get("id"): s for s in original.get("steps", []) if isinstance(s, dict)}
    now = {s["id"]: s for s in target["steps"]}
    fresh = {from_step} | {
        step_id
        for step_id in graph.order
        if before.get(step_id) != now[step_id] or step_id not in records or records[step_id].status not in REUSABLE
    }
    rerun = set(fresh)
    for step_id in fresh:
        rerun |= graph.downstream_of(step_id)
    reused = {
        s: StepRecord(
            status=records[s].status,
            output=records[s].output,
            error=records[s].error,
            attempts=records[s].attempts,
            reused=True,
        )
        for s in graph.order
        if s not in rerun
    }
    return RerunPlan(reused=reused, rerun=frozenset(rerun))


def build_rerun(
    target: dict[str, Any], original: dict[str, Any], from_step: str, run_id: str, steps: Sequence[PipelineStepRow]
) -> Rerun:
    """The re-run of the run ``run_id`` (of ``original``, with its recorded ``steps``) as ``target`` from ``from_step``.

    Its first rows, in ``target``'s step order: copies of the reused steps (each with its map
    items), the other steps ``pending``.

    Raises:
        UnknownStepError: ``from_step`` is not a top-level step of ``target``.
    """
    records = {s.step_id: StepRecord(status=s.status, output=s.output, error=s.error, attempts=s.attempts)
               for s in steps}  # fmt: skip
    plan = plan_rerun(target, original, from_step, records)
    recorded: dict[str, list[PipelineStepRow]] = {}
    for step in steps:
        recorded.setdefault(top_level(step.step_id), []).append(step)
    rows: list[StepWrite] = []
    for step in target["steps"]:
        if step["id"] not in plan.reused:
            rows.append(StepWrite(step_id=step["id"], type=step["type"], status=PipelineStepStatus.PENDING))
            continue
        rows += [
            StepWrite(step_id=r.step_id, type=r.type, status=r.status, attempts=r.attempts, started_at=r.started_at,
                      ended_at=r.ended_at, output=r.output, error=r.error)
            for r in recorded[step["id"]]
        ]  # fmt: skip
    return Rerun(rerun_of=run_id, from_step=from_step, reused=plan.reused, rows=rows)
