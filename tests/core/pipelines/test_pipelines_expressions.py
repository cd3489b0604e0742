"""CEL expressions and ``${…}`` templates: values and types, errors naming the expression, bounded cost."""

from __future__ import annotations

from typing import Any

import pytest

from core.contracts.pipelines import EXPRESSION_ERROR
from core.pipelines import expressions as ex
from core.pipelines.expressions import (
    MAX_EVAL_STEPS,
    MAX_SCOPE_BYTES,
    MAX_VALUE_BYTES,
    ExpressionError,
    Meter,
    Scope,
    cel_to_json,
    compile_expression,
    evaluate,
    parse_template,
    render,
    template_expressions,
)

RUN_INPUT = {"name": "Ada", "n": 3, "ratio": 0.5, "tags": ["a", "b"], "flag": True, "none": None}
STEPS = {"fetch": {"output": {"items": [1, 2, 5], "title": "T"}, "status": "completed", "error": None}}


@pytest.fixture
def scope() -> Scope:
    return Scope({"input": RUN_INPUT, "steps": STEPS})


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("input.n * 2", 6),
        ("input.ratio + 1.0", 1.5),
        ("input.name + '!'", "Ada!"),
        ("input.flag && input.n > 2", True),
        ("input.none", None),
        ("input.tags", ["a", "b"]),
        ("{'k': input.n, 'l': [input.name]}", {"k": 3, "l": ["Ada"]}),
        ("steps.fetch.output.items.filter(x, x > 1).map(x, x * input.n)", [6, 15]),
        ("steps['fetch'].output.title", "T"),
        ("has(input.missing) ? 1 : 2", 2),
        ("size(input.tags) == 2 && 'a' in input.tags", True),
        ("input.name.startsWith('A') && input.name.matches('^[A-Z][a-z]+$')", True),
        ("timestamp('2024-01-31T12:00:00Z') + duration('90s')", "2024-01-31T12:01:30Z"),
        ("b'ab'", "YWI="),
        ("{1: 'one', 2: 'two'}.size()", 2),
    ],
)
def test_expressions_evaluate_to_json_values(scope: Scope, expression: str, expected: Any) -> None:
    assert evaluate(expression, scope) == expected


def test_map_keys_become_strings_and_durations_text() -> None:
    assert cel_to_json(ex.celpy.json_to_cel({"a": [1, {"b": None}]})) == {"a": [1, {"b": None}]}
    assert evaluate("{1: 'x'}", Scope({})) == {"1": "x"}
    assert evaluate("{true: 'x'}", Scope({})) == {"true": "x"}
    assert evaluate("duration('1h')", Scope({})) == "3600s"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("input.missing", "no such member in mapping: 'missing'"),
        ("input.n + 'x'", "found no matching overload for + applied to '(int, string)'"),
        ("input.tags[5]", "list index out of range"),
        ("1 / 0", "modulus or divide by zero"),
        ("9223372036854775807 + 1", "integer overflow"),
        ("int('x')", "invalid literal for int() with base 10: 'x'"),
        ("input.name.matches('(')", "invalid regular expression: missing ): ("),
        ("1.0 / 0.0", "inf is not a JSON number"),
        ("type(1)", "a type is not a JSON value"),
    ],
)
def test_a_runtime_error_names_the_expression(scope: Scope, expression: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate(expression, scope)
    assert (caught.value.expression, caught.value.message) == (expression, message)
    assert caught.value.to_error() == {"type": EXPRESSION_ERROR, "message": message, "expression": expression}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "empty expression"),
        ("input.n +", "syntax error at line 1, column 9: unexpected end of the expression"),
        ("input.n $ 1", "syntax error at line 1, column 9: unexpected character '$'"),
        ("now()", "unknown function 'now'"),
        ("input.name.lowerAscii()", "unknown function 'lowerAscii'"),
        ("steps", "steps must be followed by a step id: steps.<id> or steps['<id>']"),
        ("steps[input.name].output", "steps must be indexed by a literal step id: steps['<id>']"),
        ("google.protobuf.Struct{}", "message construction (Type{field: …}) is not supported"),
        (".input", "qualified names (.name) are not supported"),
        ("[1].map(1, 2)", "map() expects a variable name and an expression"),
        ("x" * 2001, "longer than 2000 characters"),
        ("(" * 30 + "1" + ")" * 30, "nested too deeply"),
        ("[" + ",".join(["1"] * 450) + "]", "too large (more than 4000 syntax nodes)"),
    ],
)
def test_refused_at_compile_time(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(expression)
    assert caught.value.message == message


def test_the_clock_cannot_be_read() -> None:
    """celpy's timestamp() would parse "now" as the current time; only RFC 3339 text is accepted."""
    for text in ("now", "today", "2024-01-31"):
        with pytest.raises(ExpressionError, match="RFC 3339"):
            evaluate(f"timestamp('{text}')", Scope({}))


def test_names_and_step_reads_are_found() -> None:
    compiled = compile_expression(
        "steps.a.output + steps['b'].output.size() + input.n + [1].map(steps, steps).size()"
        " + [item].size() + (has(steps.c.output) ? 1 : 0)"
    )
    assert compiled.steps == {"a", "b", "c"}
    assert compiled.names == {"steps", "input", "item"}
    assert ex.unknown_names(compiled, ex.ROOT_NAMES) == ["item"]
    assert ex.unknown_names(compile_expression("type(input) == map"), ex.ROOT_NAMES) == []


def test_compiled_once_per_text() -> None:
    assert compile_expression("input.n + 40") is compile_expression("input.n + 40")


# --- templates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${input.n}", 3),
        ("${ input.tags }", ["a", "b"]),
        ("${input.none}", None),
        ("Hello ${input.name}!", "Hello Ada!"),
        (
            "n=${input.n} tags=${input.tags} flag=${input.flag} none=${input.none}",
            'n=3 tags=["a","b"] flag=true none=null',
        ),
        ("${input.n} ", "3 "),
        ("$${input.n} is ${input.n}", "${input.n} is 3"),
        ("${ {'a': '}'}.a }", "}"),
        ("${'${'}", "${"),
        ("no templates", "no templates"),
    ],
)
def test_templates_keep_the_type_of_a_lone_expression(scope: Scope, template: str, expected: Any) -> None:
    assert render(template, scope) == expected


def test_templates_render_recursively_but_not_keys(scope: Scope) -> None:
    value = {"${input.name}": "${input.n}", "list": ["${input.flag}", {"x": "a${input.n}"}, 7, None]}
    assert render(value, scope) == {"${input.name}": 3, "list": [True, {"x": "a3"}, 7, None]}


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("${input.n", "unterminated ${ … } (no closing brace)"),
        ("a ${ } b", "empty ${}"),
        ("${'}", "unterminated ${ … } (no closing brace)"),
        ("${1}" * 51, "more than 50 ${…} in one string"),
    ],
)
def test_malformed_templates(template: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_template(template)
    assert caught.value.message == message


def test_a_failing_template_names_its_expression(scope: Scope) -> None:
    assert list(template_expressions("a ${input.x} b ${steps.fetch.output}")) == ["input.x", "steps.fetch.output"]
    with pytest.raises(ExpressionError) as caught:
        render({"q": "a ${input.x} b"}, scope)
    assert (caught.value.expression, caught.value.message) == ("input.x", "no such member in mapping: 'x'")


# --- bounded cost -----------------------------------------------------------------------


def test_evaluation_steps_are_bounded() -> None:
    scope = Scope({"input": {"l": list(range(200))}})
    assert evaluate("input.l.map(x, x).size()", scope) == 200
    with pytest.raises(ExpressionError, match=f"too costly: more than {MAX_EVAL_STEPS} evaluation steps"):
        evaluate("input.l.map(x, input.l.map(y, y)).size()", scope)


def test_growing_values_are_bounded() -> None:
    scope = Scope({"input": {"s": "x" * 200_000}})
    assert evaluate("size(input.s + input.s)", scope) == 400_000
    with pytest.raises(ExpressionError, match="too costly: builds more than"):
        evaluate("size(input.s + input.s + input.s + input.s + input.s + input.s)", scope)


def test_a_meter_bounds_several_evaluations_together() -> None:
    scope = Scope({"input": {"l": list(range(200))}})
    meter = Meter()
    evaluate("input.l.map(x, x).size()", scope, meter)
    once = meter.spent
    assert 0 < once < MAX_EVAL_STEPS
    for _ in range(MAX_EVAL_STEPS // once - 1):
        evaluate("input.l.map(x, x).size()", scope, meter)
    with pytest.raises(ExpressionError, match="too costly"):
        evaluate("input.l.map(x, x).size()", scope, meter)
    assert evaluate("input.l.map(x, x).size()", scope) == 200  # a fresh meter per evaluation otherwise


def test_scope_and_results_are_bounded() -> None:
    with pytest.raises(ExpressionError, match=f"exceeds {MAX_SCOPE_BYTES} bytes"):
        Scope({"input": "x" * MAX_SCOPE_BYTES})
    with pytest.raises(ExpressionError, match="exceed"):
        Scope({"input": "x" * (MAX_SCOPE_BYTES // 2), "steps": "y" * (MAX_SCOPE_BYTES // 2)})
    with pytest.raises(ExpressionError, match="nested too deeply"):
        Scope({"input": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]})
    big = Scope({"input": {"s": "x" * (MAX_VALUE_BYTES // 2 + 10)}})
    with pytest.raises(ExpressionError, match=f"the result exceeds {MAX_VALUE_BYTES} bytes"):
        evaluate("input.s + input.s", big)
    with pytest.raises(ExpressionError, match=f"the rendered value exceeds {MAX_VALUE_BYTES} bytes"):
        render(["${input.s}", "${input.s}"], big)
    assert evaluate("size(input.s)", big) == MAX_VALUE_BYTES // 2 + 10
