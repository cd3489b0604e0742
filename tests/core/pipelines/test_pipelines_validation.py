"""Validation of pipeline definitions: each problem at its JSON pointer, the plan of a valid one, run inputs."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from core.pipelines.definition import MAX_STEPS, pointer
from core.pipelines.validation import StaticCatalog, validate, validate_input

CATALOG = StaticCatalog(
    agents=frozenset({"agt_writer"}), tools=frozenset({"calculator", "http_request"}), pipelines=frozenset({"pip_sub"})
)


def definition() -> dict[str, Any]:
    """A valid definition using every step type."""
    return {
        "inputs": {"type": "object", "properties": {"topic": {"type": "string"}}, "required": ["topic"]},
        "steps": [
            {"id": "fetch", "type": "tool", "tool": "http_request", "args": {"url": "https://x.test/${input.topic}"}},
            {"id": "count", "type": "tool", "tool": "calculator", "args": {"expression": "1 + 1"}},
            {
                "id": "draft",
                "type": "agent",
                "agent_id": "agt_writer",
                "needs": ["fetch"],
                "if": "steps.fetch.output != null",
                "input": "Write about ${input.topic}: ${steps.fetch.output}",
                "retry": {"max_attempts": 3, "backoff_s": 2},
                "timeout_s": 60,
                "on_error": "continue",
            },
            {"id": "review", "type": "approval", "needs": ["draft"], "prompt": "Publish ${steps.draft.output}?"},
            {"id": "pause", "type": "wait", "seconds": 5, "needs": ["review"]},
            {
                "id": "each",
                "type": "map",
                "needs": ["count"],
                "over": "[1, 2, steps.count.output]",
                "max_concurrency": 2,
                "step": {"type": "pipeline", "pipeline_id": "pip_sub", "input": {"n": "${item}", "i": "${index}"}},
            },
        ],
        "output": "{'draft': steps.draft.output, 'each': steps.each.output}",
    }


def errors_of(value: Any) -> list[tuple[str, str]]:
    result = validate(value, CATALOG)
    assert result.valid is (not result.errors)
    return [(e.field, e.message) for e in result.errors]


def test_a_valid_definition_gets_its_plan() -> None:
    result = validate(definition(), CATALOG)
    assert result.to_json() == {
        "valid": True,
        "errors": [],
        "plan": {
            "waves": [["fetch", "count"], ["draft", "each"], ["review"], ["pause"]],
            "steps": [
                {"id": "fetch", "needs": []},
                {"id": "count", "needs": []},
                {"id": "draft", "needs": ["fetch"]},
                {"id": "review", "needs": ["draft"]},
                {"id": "pause", "needs": ["review"]},
                {"id": "each", "needs": ["count"]},
            ],
        },
    }
    assert result.definition is not None


def _set(path: str, value: Any) -> Any:
    """A mutation: set ``path`` (slash-separated, no escaping) to ``value``; ``...`` deletes it."""

    def mutate(d: dict[str, Any]) -> None:
        *parents, last = path.strip("/").split("/")
        node: Any = d
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        if value is ...:
            del node[key]
        elif isinstance(node, list) and key == len(node):
            node.append(value)
        else:
            node[key] = value

    return mutate


CASES: list[tuple[str, Any, list[tuple[str, str]]]] = [
    # parse errors
    (
        "unknown step type",
        _set("/steps/1/type", "shell"),
        [("/steps/1/type", "unknown step type 'shell' (expected one of agent, tool, approval, wait, map, pipeline)")],
    ),
    ("missing type", _set("/steps/1/type", ...), [("/steps/1/type", "is required")]),
    ("step not an object", _set("/steps/1", 5), [("/steps/1", "must be an object (a step)")]),
    ("missing field", _set("/steps/2/agent_id", ...), [("/steps/2/agent_id", "is required")]),
    ("unknown field", _set("/steps/0/command", "ls"), [("/steps/0/command", "is not a known field")]),
    (
        "bad id",
        _set("/steps/0/id", "fetch-it"),
        [("/steps/0/id", "must be a step id: a letter or _, then letters, digits or _ (at most 64 characters)")],
    ),
    (
        "bad need",
        _set("/steps/2/needs/0", "a b"),
        [("/steps/2/needs/0", "must be a step id: a letter or _, then letters, digits or _ (at most 64 characters)")],
    ),
    ("if not a string", _set("/steps/2/if", True), [("/steps/2/if", "Input should be a valid string")]),
    (
        "inner step field",
        _set("/steps/5/step/pipeline_id", ...),
        [("/steps/5/step/pipeline_id", "is required")],
    ),
    (
        "bound",
        _set("/steps/5/max_concurrency", 500),
        [("/steps/5/max_concurrency", "Input should be less than or equal to 50")],
    ),
    (
        "boolean as number",
        _set("/steps/4/seconds", True),
        [("/steps/4/seconds", "must be a number, not true or false")],
    ),
    (
        "retry bound",
        _set("/steps/2/retry/max_attempts", 0),
        [("/steps/2/retry/max_attempts", "Input should be greater than or equal to 1")],
    ),
    (
        "on_error value",
        _set("/steps/2/on_error", "ignore"),
        [("/steps/2/on_error", "Input should be 'fail' or 'continue'")],
    ),
    ("NUL text", _set("/steps/3/prompt", "a\x00b"), [("/steps/3/prompt", "must not contain NUL characters")]),
    ("no steps", _set("/steps", []), [("/steps", "List should have at least 1 item after validation, not 0")]),
    # steps
    ("top-level id required", _set("/steps/4/id", ...), [("/steps/4/id", "is required")]),
    ("reserved id", _set("/steps/4/id", "in"), [("/steps/4/id", "'in' is a reserved word in expressions")]),
    (
        "duplicate id",
        _set("/steps/4/id", "fetch"),
        [("/steps/4/id", "duplicate step id 'fetch' (also /steps/0/id)")],
    ),
    (
        "needs inside a map",
        _set("/steps/5/step/needs", ["fetch"]),
        [("/steps/5/step/needs", "a map's step runs once per item: it cannot have needs")],
    ),
    (
        "retry on approval",
        _set("/steps/3/retry", {"max_attempts": 2}),
        [("/steps/3/retry", "approval steps are not retried")],
    ),
    (
        "timeout on wait",
        _set("/steps/4/timeout_s", 3),
        [("/steps/4/timeout_s", "wait steps take seconds, not timeout_s")],
    ),
    # graph
    ("unknown need", _set("/steps/2/needs/1", "nope"), [("/steps/2/needs/1", "unknown step 'nope'")]),
    ("self need", _set("/steps/2/needs/1", "draft"), [("/steps/2/needs/1", "a step cannot need itself")]),
    ("need twice", _set("/steps/2/needs/1", "fetch"), [("/steps/2/needs/1", "'fetch' is listed twice")]),
    (
        "cycle",
        _set("/steps/0/needs", ["pause"]),
        [("/steps/0/needs/0", "steps depend on each other: fetch → pause → review → draft → fetch")],
    ),
    # catalog
    ("unknown agent", _set("/steps/2/agent_id", "agt_other"), [("/steps/2/agent_id", "unknown agent 'agt_other'")]),
    ("unknown tool", _set("/steps/1/tool", "shell"), [("/steps/1/tool", "unknown tool 'shell'")]),
    (
        "unknown sub-pipeline",
        _set("/steps/5/step/pipeline_id", "pip_x"),
        [("/steps/5/step/pipeline_id", "unknown pipeline 'pip_x'")],
    ),
    # expressions
    (
        "if syntax",
        _set("/steps/2/if", "steps.fetch.output !="),
        [("/steps/2/if", "syntax error at line 1, column 20: unexpected end of the expression")],
    ),
    (
        "template in a map's step",
        _set("/steps/5/step/input/n", "${item +}"),
        [("/steps/5/step/input/n", "syntax error at line 1, column 6: unexpected end of the expression in ${item +}")],
    ),
    (
        "pointer escaping",
        _set("/steps/0/args/a~b", {"c/d": "${nope(1)}"}),
        [("/steps/0/args/a~0b/c~1d", "unknown function 'nope' in ${nope(1)}")],
    ),
    (
        "unknown name",
        _set("/steps/2/if", "item > 1"),
        [("/steps/2/if", "unknown name 'item' (expressions here may use input, steps)")],
    ),
    (
        "unknown step read",
        _set("/steps/2/if", "steps.nope.output"),
        [("/steps/2/if", "steps.nope: unknown step 'nope'")],
    ),
    (
        "read of a step not upstream",
        _set("/steps/2/if", "steps.count.output > 1"),
        [
            (
                "/steps/2/if",
                "steps.count: step 'count' is not upstream of step 'draft'; "
                "add it to needs (directly or through a step it needs)",
            )
        ],
    ),
    (
        "read of its own output",
        _set("/steps/5/step/input/n", "${steps.each.output}"),
        [("/steps/5/step/input/n", "steps.each: a step cannot read its own output")],
    ),
    ("output unknown step", _set("/output", "steps.nope.output"), [("/output", "steps.nope: unknown step 'nope'")]),
    (
        "over syntax",
        _set("/steps/5/over", "[1,"),
        [("/steps/5/over", "syntax error at line 1, column 3: unexpected end of the expression")],
    ),
    # inputs schema
    (
        "invalid schema",
        _set("/inputs/properties/topic/type", "text"),
        [
            (
                "/inputs/properties/topic/type",
                "not a valid JSON Schema: 'text' is not valid under any of the given schemas",
            )
        ],
    ),
    (
        "non-RE2 pattern",
        _set("/inputs/properties/topic/pattern", "(a)\\1"),
        [("/inputs/properties/topic/pattern", "not an RE2 regular expression: invalid escape sequence: \\1")],
    ),
    (
        "patternProperties",
        _set("/inputs/patternProperties", {"^x": {}}),
        [("/inputs/patternProperties", "patternProperties is not supported")],
    ),
    (
        "remote reference",
        _set("/inputs/properties/topic/$ref", "https://schemas.test/topic"),
        [("/inputs/properties/topic/$ref", "only local references (#…) are supported")],
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), [(m, e) for _, m, e in CASES], ids=[c[0] for c in CASES])
def test_each_problem_is_reported_at_its_pointer(mutate: Any, expected: list[tuple[str, str]]) -> None:
    value = definition()
    mutate(value)
    assert errors_of(value) == expected


def test_run_bounds_are_checked_at_their_pointers() -> None:
    bounded = definition() | {"max_concurrent_runs": 3, "on_concurrency_limit": "reject", "budget_usd": 0.5}
    assert errors_of(bounded) == []
    wrong = definition() | {"max_concurrent_runs": 0, "on_concurrency_limit": "drop", "budget_usd": 0}
    assert errors_of(wrong) == [
        ("/max_concurrent_runs", "Input should be greater than or equal to 1"),
        ("/on_concurrency_limit", "Input should be 'queue' or 'reject'"),
        ("/budget_usd", "Input should be greater than 0"),
    ]
    assert errors_of(definition() | {"max_concurrent_runs": 1001, "budget_usd": "lots"}) == [
        ("/max_concurrent_runs", "Input should be less than or equal to 1000"),
        ("/budget_usd", "Input should be a valid number, unable to parse string as a number"),
    ]
    assert errors_of(definition() | {"on_concurrency_limit": "queue"}) == [
        ("/on_concurrency_limit", "applies only with max_concurrent_runs")
    ]


def test_errors_come_together_in_document_order() -> None:
    value = definition()
    value["output"] = "steps.nope.output"
    value["steps"][4]["needs"] = ["nope"]
    value["steps"][1]["tool"] = "shell"
    value["inputs"] = {"patternProperties": {}}
    assert [field for field, _ in errors_of(value)] == [
        "/inputs/patternProperties",
        "/steps/1/tool",
        "/steps/4/needs/0",
        "/output",
    ]


def test_whole_definition_limits() -> None:
    assert errors_of([]) == [("", "must be an object with steps")]
    deep: dict[str, Any] = {"steps": [{"id": "a", "type": "tool", "tool": "calculator", "args": {}}]}
    node = deep["steps"][0]["args"]
    for _ in range(60):
        node["x"] = {}
        node = node["x"]
    assert errors_of(deep) == [("", "nested more than 48 levels deep")]
    huge = definition()
    huge["steps"][1]["args"]["expression"] = "1" * 300_000
    assert errors_of(huge) == [("", "larger than 262144 bytes of JSON")]


def test_step_count_and_map_nesting_limits() -> None:
    many = {"steps": [{"id": f"s{i}", "type": "wait", "seconds": 1} for i in range(MAX_STEPS)]}
    assert errors_of(many) == []
    many["steps"].append({"id": "extra", "type": "wait", "seconds": 1})
    assert errors_of(many) == [("/steps", "List should have at most 100 items after validation, not 101")]
    many["steps"] = many["steps"][: MAX_STEPS - 1]
    many["steps"][0] = {"id": "s0", "type": "map", "over": "[1]", "step": {"type": "wait", "seconds": 1}}
    many["steps"][1] = {"id": "s1", "type": "map", "over": "[1]", "step": {"type": "wait", "seconds": 1}}
    assert errors_of(many) == [("/steps", "at most 100 steps, counting the steps of maps (101 given)")]

    inner: dict[str, Any] = {"type": "wait", "seconds": 1}
    for _ in range(4):
        inner = {"type": "map", "over": "[item]", "step": inner}
    nested = {"steps": [{"id": "m", **inner}]}
    nested["steps"][0]["over"] = "[1]"
    assert errors_of(nested) == [(pointer("/steps/0", *["step"] * 4), "maps nest at most 3 deep")]


def test_expression_text_is_bounded_per_step_and_definition() -> None:
    long_if = " && ".join(["input.x == 1"] * 120)  # 1,776 characters
    template = f"${{{long_if}}}"
    step = {"id": "a", "type": "tool", "tool": "calculator", "if": long_if, "args": {"a": template, "b": template}}
    assert errors_of({"steps": [step, {**step, "id": "b"}]}) == [
        ("/steps/0", "its expressions exceed 4000 characters in all"),
        ("/steps/1", "its expressions exceed 4000 characters in all"),
    ]
    steps = [{"id": f"s{i}", "type": "wait", "seconds": 1, "if": long_if} for i in range(12)]
    assert errors_of({"steps": steps}) == [("", "its expressions exceed 20000 characters in all")]


def test_map_steps_may_use_item_and_index_and_nested_maps_see_the_outer_item() -> None:
    value = {
        "steps": [
            {
                "id": "outer",
                "type": "map",
                "over": "[[1, 2], [3]]",
                "step": {
                    "type": "map",
                    "over": "item",
                    "if": "index >= 0",
                    "step": {"type": "tool", "tool": "calculator", "args": {"expression": "${item} * ${index}"}},
                },
            }
        ]
    }
    assert errors_of(value) == []
    value["steps"][0]["over"] = "item"
    assert errors_of(value) == [("/steps/0/over", "unknown name 'item' (expressions here may use input, steps)")]


def test_a_run_input_is_checked_against_the_inputs_schema() -> None:
    schema = {
        "type": "object",
        "required": ["name", "age"],
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Z]"},
            "tags": {"type": "array", "items": {"type": "integer"}},
            "a/b": {"type": "integer"},
        },
    }
    assert validate_input(schema, {"name": "Bob", "age": 3}) == []
    assert validate_input(None, "anything") == []
    errors = validate_input(schema, {"name": "bob", "tags": [1, "x"], "a/b": "1"})
    assert [(e.field, e.message) for e in errors] == [
        ("/input/age", "is required"),
        ("/input/a~1b", "'1' is not of type 'integer'"),
        ("/input/name", "'bob' does not match '^[A-Z]'"),
        ("/input/tags/1", "'x' is not of type 'integer'"),
    ]


def test_validation_does_not_change_its_argument() -> None:
    value = definition()
    before = copy.deepcopy(value)
    validate(value, CATALOG)
    assert value == before
