"""Which steps of a pipeline run start, skip or fail next, and when the run is over: pure and deterministic.

The workflow keeps one ``StepRecord`` per top-level step and calls ``Scheduler.advance``
whenever a record changed (and once at the start); it applies the answer — starts each
``Launch``, records each ``Skip`` and ``Failure`` — and calls again, until ``outcome`` is set.
Nothing here reads a clock, the environment or anything but its arguments, so a replay
computes the same answers.

Semantics:

- A step is *ready* when each of its ``needs`` is final. If one of them was ``skipped`` or
  ``cancelled``, the step is ``skipped`` too (skip propagation: a skipped step skips every
  step downstream of it). A need that ``failed`` with ``on_error: continue`` counts as done:
  ``steps.<id>.status`` is ``failed`` and ``steps.<id>.error`` holds its error.
- When a step is ready its ``if`` is evaluated: ``false`` skips it, ``true`` starts it, any
  other value or a CEL error fails it. Then its templates are rendered (``input``, ``args``,
  ``prompt``) and a ``map``'s ``over`` is evaluated (a list of at most ``MAX_MAP_ITEMS``);
  an error there fails the step too, before it starts. The error records the expression.
- A failed step with ``on_error: fail`` (the default) fails the run at once: the outcome
  lists the steps to cancel (started ones) or mark cancelled (pending ones). With
  ``continue`` the run goes on.
- When every step is final, ``output`` is evaluated (``null`` without it) and the run is
  ``completed``; an error in ``output`` fails the run.
- Expressions see ``input`` and ``steps`` — the steps upstream of the evaluating step, each
  as ``{output, status, error}`` (``output`` evaluates over every step). A ``map``'s step
  also sees ``item`` and ``index``; see ``prepare_item`` and ``map_result``.

Cost: a step's expressions share one ``Meter``. One ``advance`` call spends at most about
``MAX_ADVANCE_COST`` (evaluation steps plus characters of expression text); past that it
stops preparing steps and answers ``deferred=True``: the workflow should call again in a
later workflow task, so that one task never runs long.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.contracts.pipelines import (
    DEFINITION_INVALID,
    MAP_TOO_LARGE,
    OUTPUT_TOO_LARGE,
    STEP_FAILED,
    OnError,
    PipelineRunStatus,
    PipelineStepStatus,
    StepRecord,
)
from core.pipelines.definition import (
    AgentStep,
    AnyStep,
    ApprovalStep,
    Definition,
    MapStep,
    PipelineStep,
    ToolStep,
    expression_fields,
)
from core.pipelines.expressions import (
    Converted,
    ExpressionError,
    Meter,
    Scope,
    convert,
    convert_mapping,
    evaluate,
    json_size,
    render,
)
from core.pipelines.plan import Graph

MAX_MAP_ITEMS = 1000
"""Items one ``map`` step may fan out to."""
MAP_INLINE_ITEMS = 100
"""A map of more items runs them in ``PipelineMapChunkWorkflow`` children, not in the run's history."""
RUN_INLINE_ITEMS = 1000
"""Map items one run's history holds in all; a map that would pass it runs through children too."""
MAP_CHUNK_ITEMS = 100
"""Items one ``PipelineMapChunkWorkflow`` runs at most."""
MAP_CHUNK_INPUT_BYTES = 512 * 1024
"""JSON size of the items' rendered fields one chunk takes (a chunk holds at least one item)."""
MAX_ADVANCE_COST = 50_000
"""Evaluation steps plus expression characters one ``advance`` call spends before deferring (~1 s)."""

_FINAL = PipelineStepStatus.FINAL
_BLOCKING = frozenset({PipelineStepStatus.SKIPPED, PipelineStepStatus.CANCELLED})


@dataclass(frozen=True, kw_only=True)
class Launch:
    """A step to start now, with its templated fields rendered."""

    step_id: str
    """A top-level id, or ``<map id>[<index>]`` for the step a map runs for one item."""
    step: AnyStep
    arguments: dict[str, Any]
    """``input`` (agent, pipeline), ``args`` (tool), ``prompt`` (approval), ``items`` (map); ``{}`` for wait."""
    scope: Scope | None = None
    """What the step's expressions saw (a map's items extend it); ``None`` when it has none."""


@dataclass(frozen=True, kw_only=True)
class Skip:
    """A step that will not run, and why."""

    step_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Failure:
    """A step that failed before starting (an expression of it failed)."""

    step_id: str
    error: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """How the run ends."""

    status: PipelineRunStatus
    output: Any = None
    error: dict[str, Any] | None = None
    cancel: tuple[str, ...] = ()
    """Steps not final when the run failed: cancel the started ones, mark all ``cancelled``."""


@dataclass(frozen=True, kw_only=True)
class Advance:
    """What to do after one call of ``Scheduler.advance``."""

    launches: tuple[Launch, ...] = ()
    skips: tuple[Skip, ...] = ()
    failures: tuple[Failure, ...] = ()
    outcome: Outcome | None = None
    deferred: bool = False
    """Ready steps were left for the next call (cost budget reached): call again in a later task."""


Prepared = Launch | Skip | Failure


def live_status(records: Mapping[str, StepRecord]) -> PipelineRunStatus:
    """The status of a run still going: ``waiting_approval`` while a step waits for a decision."""
    waiting = any(r.status == PipelineStepStatus.WAITING_APPROVAL for r in records.values())
    return PipelineRunStatus.WAITING_APPROVAL if waiting else PipelineRunStatus.RUNNING


class Scheduler:
    """Decides a run's next moves from its definition, its input and its step records."""

    def __init__(self, definition: Definition, run_input: Any) -> None:
        self.definition = definition
        self.graph = Graph.from_definition(definition, references=False)
        self.steps: dict[str, AnyStep] = {step.id: step for step in definition.steps}
        self._input = run_input
        self._input_converted: Converted | None = None
        self._upstream = {step_id: self.graph.upstream_of(step_id) for step_id in self.graph.order}
        self._entries: dict[str, tuple[str, Any, Converted]] = {}
        self._chars = {step.id: sum(len(f.text) for f in expression_fields(step, "")) for step in definition.steps}

    # --- the run ---------------------------------------------------------------------

    def advance(self, records: Mapping[str, StepRecord]) -> Advance:
        """The next moves given every step's record (a missing record means ``pending``)."""
        status = {s: PipelineStepStatus(records[s].status) if s in records else PipelineStepStatus.PENDING
                  for s in self.graph.order}  # fmt: skip
        errors = {s: records[s].error for s in records}
        failed = self._fatal(status, errors)
        if failed:
            return Advance(outcome=failed)
        launches: list[Launch] = []
        skips: list[Skip] = []
        failures: list[Failure] = []
        spent = 0
        deferred = False
        progress = True
        while progress and not deferred:
            progress = False
            for step_id in self.graph.order:
                if status[step_id] != PipelineStepStatus.PENDING:
                    continue
                step = self.steps[step_id]
                if any(status[n] not in _FINAL for n in step.needs):
                    continue
                blocked = next((n for n in step.needs if status[n] in _BLOCKING), None)
                if blocked is not None:
                    skips.append(Skip(step_id=step_id, reason=f"needs {status[blocked]} step {blocked!r}"))
                    status[step_id] = PipelineStepStatus.SKIPPED
                    progress = True
                    continue
                if spent >= MAX_ADVANCE_COST and self._chars[step_id]:
                    deferred = True
                    break
                meter = Meter()
                prepared = self._prepare_top(step, records, status, meter)
                spent += meter.spent + self._chars[step_id]
                progress = True
                if isinstance(prepared, Launch):
                    launches.append(prepared)
                    status[step_id] = PipelineStepStatus.RUNNING
                elif isinstance(prepared, Skip):
                    skips.append(prepared)
                    status[step_id] = PipelineStepStatus.SKIPPED
                else:
                    failures.append(prepared)
                    status[step_id] = PipelineStepStatus.FAILED
                    errors[step_id] = prepared.error
                    if step.on_error == OnError.FAIL:
                        outcome = self._fatal(status, errors)
                        return Advance(skips=tuple(skips), failures=tuple(failures), outcome=outcome)
        outcome = None if deferred else self._finish(records, status)
        return Advance(
            launches=tuple(launches),
            skips=tuple(skips),
            failures=tuple(failures),
            outcome=outcome,
            deferred=deferred,
        )

    def _fatal(
        self, status: Mapping[str, PipelineStepStatus], errors: Mapping[str, dict[str, Any] | None]
    ) -> Outcome | None:
        """The failed run's outcome if a step with ``on_error: fail`` has failed."""
        for step_id in self.graph.order:
            if status[step_id] == PipelineStepStatus.FAILED and self.steps[step_id].on_error == OnError.FAIL:
                cause = errors.get(step_id) or {}
                message = str(cause.get("message") or "failed")
                return Outcome(
                    status=PipelineRunStatus.FAILED,
                    error={
                        "type": STEP_FAILED,
                        "message": f"step {step_id!r} failed: {message}",
                        "step_id": step_id,
                        "cause": cause,
                    },
                    cancel=tuple(s for s in self.graph.order if status[s] not in _FINAL),
                )
        return None

    def _finish(self, records: Mapping[str, StepRecord], status: Mapping[str, PipelineStepStatus]) -> Outcome | None:
        """The completed run's outcome once every step is final (``output`` evaluated)."""
        unfinished = [s for s in self.graph.order if status[s] not in _FINAL]
        if any(status[s] in PipelineStepStatus.STARTED for s in unfinished):
            return None
        if unfinished:  # nothing runs and nothing can start: cannot happen for a validated definition
            return Outcome(
                status=PipelineRunStatus.FAILED,
                error={"type": DEFINITION_INVALID, "message": f"steps {unfinished} can never start"},
                cancel=tuple(unfinished),
            )
        if self.definition.output is None:
            return Outcome(status=PipelineRunStatus.COMPLETED)
        try:
            scope = self._scope(records, self.graph.order)
            output = evaluate(self.definition.output, scope)
        except ExpressionError as exc:
            return Outcome(status=PipelineRunStatus.FAILED, error={**exc.to_error(), "field": "output"})
        return Outcome(status=PipelineRunStatus.COMPLETED, output=output)

    # --- preparing a step ------------------------------------------------------------

    def _prepare_top(
        self,
        step: AnyStep,
        records: Mapping[str, StepRecord],
        status: Mapping[str, PipelineStepStatus],
        meter: Meter,
    ) -> Prepared:
        if not self._chars[step.id]:
            return prepare(step, step.id, None, meter)
        try:
            scope = self._scope(records, self._upstream[step.id])
        except ExpressionError as exc:
            return Failure(step_id=step.id, error=exc.to_error())
        return prepare(step, step.id, scope, meter)

    def _scope(self, records: Mapping[str, StepRecord], visible: Sequence[str] | frozenset[str]) -> Scope:
        if self._input_converted is None:
            self._input_converted = convert(self._input, "input")
        entries = {s: self._entry(s, records[s]) for s in self.graph.order if s in visible and s in records}
        return Scope({"input": self._input_converted, "steps": convert_mapping(entries)})

    def _entry(self, step_id: str, record: StepRecord) -> Converted:
        """``{output, status, error}`` of a final step, converted once per record state."""
        cached = self._entries.get(step_id)
        if cached and cached[0] == record.status and cached[1] is record.output:
            return cached[2]
        entry = convert(
            {"output": record.output, "status": str(record.status), "error": record.error}, f"steps.{step_id}"
        )
        self._entries[step_id] = (record.status, record.output, entry)
        return entry

    # --- maps ------------------------------------------------------------------------

    def prepare_item(self, launch: Launch, index: int, item: Any) -> Prepared:
        """The step a map launch runs for ``item`` (at ``index``): ``item``/``index`` join its scope."""
        if not isinstance(launch.step, MapStep) or launch.scope is None:
            raise TypeError(f"{launch.step_id} is not a map launch")
        step_id = f"{launch.step_id}[{index}]"
        try:
            scope = launch.scope.extend(item=item, index=index)
        except ExpressionError as exc:
            return Failure(step_id=step_id, error=exc.to_error())
        return prepare(launch.step.step, step_id, scope, Meter())


def prepare(step: AnyStep, step_id: str, scope: Scope | None, meter: Meter) -> Prepared:
    """``step``'s ``if`` evaluated and its fields rendered over ``scope`` (``None``: it has no expressions)."""
    field = "if"
    try:
        if step.if_ is not None and scope is not None:
            decision = evaluate(step.if_, scope, meter)
            if not isinstance(decision, bool):
                raise ExpressionError(step.if_, f"if must be true or false, not {_json_type(decision)}")
            if not decision:
                return Skip(step_id=step_id, reason="if is false")
        arguments: dict[str, Any] = {}
        if isinstance(step, AgentStep | PipelineStep):
            field = "input"
            arguments["input"] = render(step.input, scope, meter) if scope else step.input
        elif isinstance(step, ToolStep):
            field = "args"
            arguments["args"] = render(step.args, scope, meter) if scope else step.args
        elif isinstance(step, ApprovalStep):
            field = "prompt"
            prompt = render(step.prompt, scope, meter) if scope else step.prompt
            arguments["prompt"] = prompt if prompt is None or isinstance(prompt, str) else _text(prompt)
        elif isinstance(step, MapStep):
            field = "over"
            assert scope is not None  # a map always has ``over``
            items = evaluate(step.over, scope, meter)
            if not isinstance(items, list):
                raise ExpressionError(step.over, f"over must be a list, not {_json_type(items)}")
            if len(items) > MAX_MAP_ITEMS:
                return Failure(
                    step_id=step_id,
                    error={
                        "type": MAP_TOO_LARGE,
                        "message": f"over has {len(items)} items; a map runs at most {MAX_MAP_ITEMS}",
                        "expression": step.over,
                        "field": "over",
                    },
                )
            arguments["items"] = items
    except ExpressionError as exc:
        return Failure(step_id=step_id, error={**exc.to_error(), "field": field})
    return Launch(step_id=step_id, step=step, arguments=arguments, scope=scope)


def too_large(message: str, scope: str) -> StepRecord:
    """A step failed for a size bound; ``scope`` says which (``step``, ``map`` or ``run``)."""
    return StepRecord(
        status=PipelineStepStatus.FAILED, error={"type": OUTPUT_TOO_LARGE, "message": message, "scope": scope}
    )


@dataclass(kw_only=True)
class OutputBudget:
    """JSON bytes a map's item outputs may still add up to."""

    left: int

    def take(self, record: StepRecord) -> StepRecord:
        """``record``, or a map-scope ``PipelineOutputTooLarge`` failure when its output does not fit."""
        if record.status != PipelineStepStatus.COMPLETED or record.output is None:
            return record
        size = json_size(record.output)
        if size > self.left:
            self.left = -1
            failed = too_large("the map's item outputs are larger than its output bound", "map")
            failed.attempts = record.attempts
            return failed
        self.left -= size
        return record


def stops_map(step: MapStep, record: StepRecord) -> bool:
    """Whether this item's record fails the map (no further item starts): its step's ``on_error`` is
    ``fail``, or it passed the map's or the run's size bound."""
    if record.status != PipelineStepStatus.FAILED:
        return False
    return step.step.on_error == OnError.FAIL or (record.error or {}).get("scope") in ("map", "run")


def map_result(step: MapStep, items: Sequence[StepRecord]) -> StepRecord:
    """A map step's record from its items' final records (in item order).

    The output is the list of the items' outputs (``null`` for skipped or failed-and-continued
    items). An item that failed with its step's ``on_error: fail`` fails the map (the map's
    own ``on_error`` then applies); the workflow should start no further items after it.
    """
    for index, record in enumerate(items):
        if stops_map(step, record):
            cause = record.error or {}
            if cause.get("scope") in ("map", "run"):
                return StepRecord(status=PipelineStepStatus.FAILED, error={**cause, "index": index})
            return StepRecord(
                status=PipelineStepStatus.FAILED,
                error={
                    "type": STEP_FAILED,
                    "message": f"item {index} failed: {cause.get('message') or 'failed'}",
                    "index": index,
                    "cause": cause,
                },
            )
    outputs = [r.output if r.status == PipelineStepStatus.COMPLETED else None for r in items]
    return StepRecord(status=PipelineStepStatus.COMPLETED, output=outputs)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
