"""The scheduler as the workflow will drive it: concurrency, skips, on_error, output, maps, cost deferral."""

from __future__ import annotations

from typing import Any

import pytest

from core.contracts.pipelines import (
    EXPRESSION_ERROR,
    MAP_TOO_LARGE,
    OUTPUT_TOO_LARGE,
    STEP_FAILED,
    PipelineRunStatus,
    StepRecord,
)
from core.pipelines import scheduler as scheduler_module
from core.pipelines.definition import Definition, MapStep
from core.pipelines.scheduler import (
    Advance,
    Failure,
    Launch,
    OutputBudget,
    Scheduler,
    Skip,
    live_status,
    map_result,
    stops_map,
)

ERROR = {"type": "ToolFailed", "message": "boom"}


def _tool(step_id: str, *needs: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "tool", "tool": "calculator", "needs": list(needs), "args": {}, **extra}


class Run:
    """Applies the scheduler's answers to records, as the workflow will."""

    def __init__(self, definition: dict[str, Any], run_input: Any = None, **records: StepRecord) -> None:
        self.scheduler = Scheduler(Definition.model_validate(definition), run_input)
        self.records: dict[str, StepRecord] = dict(records)
        self.last = Advance()

    def advance(self) -> Advance:
        self.last = self.scheduler.advance(self.records)
        for launch in self.last.launches:
            self.records[launch.step_id] = StepRecord(status="running")
        for skip in self.last.skips:
            self.records[skip.step_id] = StepRecord(status="skipped")
        for failure in self.last.failures:
            self.records[failure.step_id] = StepRecord(status="failed", error=failure.error)
        return self.last

    def started(self) -> list[str]:
        return [launch.step_id for launch in self.advance().launches]

    def complete(self, step_id: str, output: Any = None) -> list[str]:
        self.records[step_id] = StepRecord(status="completed", output=output)
        return self.started()

    def fail(self, step_id: str, error: dict[str, Any] = ERROR) -> list[str]:
        self.records[step_id] = StepRecord(status="failed", error=error)
        return self.started()


def test_independent_steps_start_together_and_dependents_after_their_needs() -> None:
    run = Run({"steps": [_tool("a"), _tool("b"), _tool("c", "a", "b"), _tool("d", "a")]})
    assert run.started() == ["a", "b"]
    assert run.started() == []  # nothing changed
    assert run.complete("a", 1) == ["d"]
    assert run.complete("b", 2) == ["c"]
    assert run.complete("c") == []
    assert run.last.outcome is None
    run.complete("d")
    assert run.last.outcome is not None
    assert (run.last.outcome.status, run.last.outcome.output) == (PipelineRunStatus.COMPLETED, None)


def test_templates_are_rendered_over_the_input_and_upstream_outputs() -> None:
    run = Run(
        {
            "steps": [
                _tool("a", args={"x": "${input.n}"}),
                {"id": "b", "type": "agent", "agent_id": "agt", "needs": ["a"], "input": "n=${steps.a.output.n}"},
                {"id": "c", "type": "approval", "needs": ["b"], "prompt": "${steps.b.output}"},
                {
                    "id": "d",
                    "type": "pipeline",
                    "pipeline_id": "p",
                    "needs": ["c"],
                    "input": {"v": "${steps.a.output}"},
                },
                {"id": "e", "type": "wait", "seconds": 2, "needs": ["d"]},
            ]
        },
        run_input={"n": 4},
    )
    assert run.advance().launches[0].arguments == {"args": {"x": 4}}
    run.records["a"] = StepRecord(status="completed", output={"n": 5})
    assert run.advance().launches[0].arguments == {"input": "n=5"}
    run.records["b"] = StepRecord(status="completed", output=["x"])
    assert run.advance().launches[0].arguments == {"prompt": '["x"]'}  # a prompt stays text
    run.records["c"] = StepRecord(status="completed", output="approved")
    assert run.advance().launches[0].arguments == {"input": {"v": {"n": 5}}}
    run.records["d"] = StepRecord(status="completed")
    launch = run.advance().launches[0]
    assert (launch.arguments, launch.scope) == ({}, None)


def test_a_false_if_skips_the_step_and_every_step_downstream() -> None:
    run = Run(
        {
            "steps": [
                _tool("a"),
                _tool("b", "a", **{"if": "steps.a.output > 10"}),
                _tool("c", "b"),
                _tool("d", "c"),
                _tool("e", "a", **{"if": "steps.a.output <= 10"}),
            ],
            "output": "{'b': steps.b.status, 'd': steps.d.status, 'e': steps.e.output}",
        }
    )
    run.started()
    assert run.complete("a", 3) == ["e"]
    assert run.last.skips == (
        Skip(step_id="b", reason="if is false"),
        Skip(step_id="c", reason="needs skipped step 'b'"),
        Skip(step_id="d", reason="needs skipped step 'c'"),
    )
    run.complete("e", "done")
    assert run.last.outcome is not None
    assert run.last.outcome.output == {"b": "skipped", "d": "skipped", "e": "done"}


def test_a_failure_with_on_error_fail_fails_the_run_and_cancels_the_rest() -> None:
    run = Run({"steps": [_tool("a"), _tool("b"), _tool("c", "a"), _tool("d", "c")]})
    run.started()
    assert run.fail("a") == []
    outcome = run.last.outcome
    assert outcome is not None
    assert outcome.status == PipelineRunStatus.FAILED
    assert outcome.error == {"type": STEP_FAILED, "message": "step 'a' failed: boom", "step_id": "a", "cause": ERROR}
    assert outcome.cancel == ("b", "c", "d")  # running b to cancel; c and d never start


def test_a_failure_with_on_error_continue_counts_as_done_with_its_error() -> None:
    run = Run(
        {
            "steps": [
                _tool("a", on_error="continue"),
                _tool("b", "a", args={"status": "${steps.a.status}", "why": "${steps.a.error.message}"}),
            ],
            "output": "steps.a.output",
        }
    )
    run.started()
    assert run.fail("a") == ["b"]
    assert run.last.launches[0].arguments == {"args": {"status": "failed", "why": "boom"}}
    run.complete("b")
    assert run.last.outcome is not None
    assert (run.last.outcome.status, run.last.outcome.output) == (PipelineRunStatus.COMPLETED, None)


def test_an_expression_error_fails_the_step_before_it_starts_and_names_the_expression() -> None:
    run = Run({"steps": [_tool("a", on_error="continue", args={"x": "${input.missing}"}), _tool("b", "a")]}, {})
    assert run.started() == ["b"]
    assert run.last.failures == (
        Failure(
            step_id="a",
            error={
                "type": EXPRESSION_ERROR,
                "message": "no such member in mapping: 'missing'",
                "expression": "input.missing",
                "field": "args",
            },
        ),
    )

    failing = Run({"steps": [_tool("a", **{"if": "input.n"}), _tool("b")]}, run_input={"n": 1})
    assert failing.started() == []  # b is not started: the run fails first
    assert failing.last.failures[0].error["message"] == "if must be true or false, not a number"
    assert failing.last.outcome is not None
    assert failing.last.outcome.cancel == ("b",)


def test_the_output_expression_sees_every_step_and_its_error_fails_the_run() -> None:
    run = Run({"steps": [_tool("a"), _tool("b")], "output": "steps.a.output + steps.b.output"})
    run.started()
    run.complete("a", 2)
    run.complete("b", 3)
    assert run.last.outcome is not None
    assert (run.last.outcome.status, run.last.outcome.output) == (PipelineRunStatus.COMPLETED, 5)

    broken = Run({"steps": [_tool("a")], "output": "steps.a.output.total"})
    broken.started()
    broken.complete("a", {"sum": 1})
    assert broken.last.outcome is not None
    assert broken.last.outcome.status == PipelineRunStatus.FAILED
    assert broken.last.outcome.error == {
        "type": EXPRESSION_ERROR,
        "message": "no such member in mapping: 'total'",
        "expression": "steps.a.output.total",
        "field": "output",
    }


def test_expressions_see_only_upstream_steps() -> None:
    run = Run(
        {
            "steps": [_tool("a"), _tool("b"), _tool("c", "a", args={"seen": "${steps}"})],
        }
    )
    # "${steps}" is refused by validation; run directly it shows what the scope holds
    run.started()
    run.complete("b", "not visible")
    run.complete("a", 1)
    assert run.last.failures[0].error["message"].startswith("steps must be followed by a step id")
    visible = Run({"steps": [_tool("a"), _tool("b"), _tool("c", "a", args={"n": "${has(steps.b) ? 1 : 0}"})]})
    visible.started()
    visible.complete("b", "x")
    visible.complete("a", 1)
    assert visible.last.launches[0].arguments == {"args": {"n": 0}}


def test_reused_records_of_a_rerun_are_final_from_the_start() -> None:
    run = Run(
        {"steps": [_tool("a"), _tool("b", "a", args={"v": "${steps.a.output}"}), _tool("c", "a")]},
        a=StepRecord(status="completed", output=7, reused=True),
        c=StepRecord(status="skipped", reused=True),
    )
    assert run.started() == ["b"]
    assert run.last.launches[0].arguments == {"args": {"v": 7}}


def test_live_status() -> None:
    assert live_status({"a": StepRecord(status="running")}) == PipelineRunStatus.RUNNING
    assert live_status({"a": StepRecord(status="waiting_approval")}) == PipelineRunStatus.WAITING_APPROVAL


# --- maps ---------------------------------------------------------------------------------


MAP = {
    "steps": [
        _tool("a"),
        {
            "id": "m",
            "type": "map",
            "needs": ["a"],
            "over": "steps.a.output",
            "step": {
                "type": "tool",
                "tool": "calculator",
                "if": "item != 0",
                "args": {"expression": "${item} * ${index}", "from": "${steps.a.status}"},
            },
        },
    ],
    "output": "steps.m.output",
}


def test_a_map_prepares_one_step_per_item_with_item_and_index() -> None:
    run = Run(MAP)
    run.started()
    assert run.complete("a", [5, 0, 7]) == ["m"]
    launch = run.last.launches[0]
    assert launch.arguments == {"items": [5, 0, 7]}
    prepared = [run.scheduler.prepare_item(launch, i, item) for i, item in enumerate(launch.arguments["items"])]
    assert isinstance(prepared[0], Launch)
    assert prepared[0].step_id == "m[0]"
    assert prepared[0].arguments == {"args": {"expression": "5 * 0", "from": "completed"}}
    assert prepared[1] == Skip(step_id="m[1]", reason="if is false")
    assert isinstance(prepared[2], Launch)
    assert prepared[2].arguments["args"]["expression"] == "7 * 2"

    step = run.scheduler.steps["m"]
    assert isinstance(step, MapStep)
    items = [
        StepRecord(status="completed", output=0),
        StepRecord(status="skipped"),
        StepRecord(status="completed", output=14),
    ]
    run.records["m"] = map_result(step, items)
    run.advance()
    assert run.last.outcome is not None
    assert run.last.outcome.output == [0, None, 14]


def test_a_failed_item_fails_the_map_unless_its_step_continues() -> None:
    definition = Definition.model_validate(MAP)
    step = definition.steps[1]
    assert isinstance(step, MapStep)
    items = [StepRecord(status="completed", output=1), StepRecord(status="failed", error=ERROR)]
    assert map_result(step, items) == StepRecord(
        status="failed",
        error={"type": STEP_FAILED, "message": "item 1 failed: boom", "index": 1, "cause": ERROR},
    )
    lenient = step.step.model_copy(update={"on_error": "continue"})
    assert map_result(step.model_copy(update={"step": lenient}), items) == StepRecord(
        status="completed", output=[1, None]
    )


def test_item_outputs_past_the_map_bound_fail_the_map_even_when_items_continue() -> None:
    definition = Definition.model_validate(MAP)
    step = definition.steps[1]
    assert isinstance(step, MapStep)
    lenient = step.model_copy(update={"step": step.step.model_copy(update={"on_error": "continue"})})
    budget = OutputBudget(left=12)
    first = budget.take(StepRecord(status="completed", output="abcd", attempts=1))  # 6 bytes of JSON
    assert first.status == "completed"
    assert budget.take(StepRecord(status="skipped")).status == "skipped"
    second = budget.take(StepRecord(status="completed", output="abcdefgh", attempts=2))
    assert second.status == "failed"
    assert second.attempts == 2
    assert second.error is not None
    assert (second.error["type"], second.error["scope"]) == (OUTPUT_TOO_LARGE, "map")
    assert stops_map(lenient, second)
    assert not stops_map(lenient, StepRecord(status="failed", error=ERROR))
    result = map_result(lenient, [first, second])
    assert result.status == "failed"
    assert result.error == {**second.error, "index": 1}


@pytest.mark.parametrize(
    ("items", "error_type", "message"),
    [
        ({"a": 1}, EXPRESSION_ERROR, "over must be a list, not an object"),
        (list(range(1001)), MAP_TOO_LARGE, "over has 1001 items; a map runs at most 1000"),
    ],
)
def test_over_must_be_a_bounded_list(items: Any, error_type: str, message: str) -> None:
    run = Run(MAP)
    run.started()
    run.complete("a", items)
    assert run.last.failures[0].error["type"] == error_type
    assert run.last.failures[0].error["message"] == message
    assert run.last.outcome is not None


# --- cost ---------------------------------------------------------------------------------


def test_one_advance_defers_ready_steps_beyond_its_cost_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler_module, "MAX_ADVANCE_COST", 2_000)
    costly = "[" + ",".join(["1"] * 100) + "].map(x, x * 2).size() > 0"
    run = Run({"steps": [_tool(f"s{i}", **{"if": costly}) for i in range(6)] + [_tool("plain")]})
    first = run.advance()
    assert first.deferred
    assert first.outcome is None
    assert 0 < len(first.launches) < 6
    started = [launch.step_id for launch in first.launches]
    while run.last.deferred:
        started += [launch.step_id for launch in run.advance().launches]
    assert sorted(started) == sorted([f"s{i}" for i in range(6)] + ["plain"])
