"""CEL expressions and ``${…}`` templates of pipeline definitions, evaluated with bounded cost.

Expressions are CEL (``celpy``, a tree-walking interpreter: no ``eval``, no Python code
generated from tenant text) over a *scope* of JSON values: ``input`` (the run's input),
``steps`` (``{<id>: {output, status, error}}`` of the steps a step may see) and, inside a
``map`` step, ``item`` and ``index``. Results come back as JSON values (``cel_to_json``).

Templates: a string value in a step's ``input``/``args``/``prompt`` may embed ``${<CEL>}``.
A string that is exactly one ``${expr}`` becomes the expression's value with its JSON type
(``"${input.n}"`` → ``3``); a string mixing text and templates stays a string, each value
inserted as text (strings as they are, anything else as compact JSON, ``null`` as ``null``).
``$${`` writes a literal ``${``. Object keys are never templated.

Determinism and cost (expressions run inside the workflow, so every replay must compute
the same thing quickly):

- Only CEL's standard functions and macros; anything else is refused when the expression is
  compiled. ``timestamp()`` accepts RFC 3339 text only: celpy's parser (pendulum) would read
  ``timestamp("now")`` as the current time. Nothing else in celpy reads a clock or the
  environment at evaluation time.
- Static bounds: ``MAX_EXPRESSION_CHARS``, ``MAX_AST_NODES``, ``MAX_AST_DEPTH``.
- Dynamic bounds: an evaluation visits at most ``MAX_EVAL_STEPS`` syntax-tree nodes (macro
  iterations included) and produces at most ``MAX_EVAL_UNITS`` characters/elements in new
  strings, lists and maps (a ``Meter`` shared by several evaluations bounds them together:
  the scheduler gives each step one); a scope holds at most ``MAX_SCOPE_BYTES`` of JSON and a result
  (or a rendered template) at most ``MAX_VALUE_BYTES``. Exceeding any of them is an
  ``ExpressionError`` like any other.

Every failure (syntax, unknown function, missing key, wrong type, limit) raises one type,
``ExpressionError``, with the expression's text and a short message.

Under the Temporal workflow sandbox, import this module (and so celpy, lark, re2, pendulum)
inside ``workflow.unsafe.imports_passed_through()``: the sandbox would otherwise re-import
them for every workflow run, and pendulum/re2 hold native state.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import Activation, CELEvalError, Evaluator, base_functions, celstr

from core.contracts.pipelines import EXPRESSION_ERROR

MAX_EXPRESSION_CHARS = 2000
MAX_AST_NODES = 4000
"""Parse-tree nodes of one expression (an identifier alone is about ten)."""
MAX_AST_DEPTH = 200
"""Parse-tree depth (each level of parentheses or nested calls adds about ten)."""
MAX_EVAL_STEPS = 10_000
"""Parse-tree nodes visited by one evaluation, counting every macro iteration."""
MAX_EVAL_UNITS = 2_000_000
"""Characters (strings) and elements (lists, maps) produced by one evaluation's operations."""
MAX_SCOPE_BYTES = 1024 * 1024
"""JSON size of the values an expression can see (input and step outputs)."""
MAX_VALUE_BYTES = 256 * 1024
"""JSON size of one result or rendered template value."""
MAX_VALUE_DEPTH = 32
"""Nesting of objects and arrays in a scope value or a result."""
MAX_TEMPLATES_PER_STRING = 50
MAX_MESSAGE_CHARS = 300

ROOT_NAMES = frozenset({"input", "steps"})
"""Names every expression may use."""
MAP_NAMES = frozenset({"item", "index"})
"""Names the expressions of a ``map``'s step (and of maps inside it) may use too."""
MACROS = frozenset({"has", "dyn", "map", "filter", "all", "exists", "exists_one"})
COMPREHENSIONS = frozenset({"map", "filter", "all", "exists", "exists_one"})
FUNCTIONS = frozenset(name for name in base_functions if name[0].isalpha()) | MACROS
"""CEL's standard functions (celpy's ``base_functions``) and macros: all an expression may call."""
TYPE_NAMES = frozenset(
    {"bool", "bytes", "double", "duration", "int", "list", "map", "null_type", "string", "timestamp", "uint", "type"}
)
"""Type names an expression may mention (``type(x) == int``)."""

_WRAPPERS = frozenset(
    {"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication", "unary", "member", "primary"}
)
"""Grammar levels that wrap a single operand."""
_PRODUCING = frozenset({"addition", "member_dot_arg", "ident_arg", "list_lit", "map_lit"})
"""Nodes whose result may be a new string, list or map (charged by size)."""
_REFUSED = {
    "member_object": "message construction (Type{field: …}) is not supported",
    "dot_ident": "qualified names (.name) are not supported",
    "dot_ident_arg": "qualified function names (.f()) are not supported",
}
_OPERATORS = {
    "addition_add": "+",
    "addition_sub": "-",
    "multiplication_mul": "*",
    "multiplication_div": "/",
    "multiplication_mod": "%",
    "unary_neg": "-",
    "unary_not": "!",
}
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})")

# celpy logs the values it evaluates at debug level (tenant data, and reprs as large as the
# scope); errors reach callers as ExpressionError instead.
logging.getLogger("celpy").setLevel(logging.CRITICAL)


class ExpressionError(Exception):
    """A CEL expression or template that does not parse, is refused, or fails to evaluate."""

    def __init__(self, expression: str, message: str) -> None:
        super().__init__(f"{message} (in {expression!r})")
        self.expression = expression
        self.message = message

    def to_error(self) -> dict[str, Any]:
        """The step or run ``error`` this failure records."""
        return {"type": EXPRESSION_ERROR, "message": self.message, "expression": self.expression}


def _environment() -> celpy.Environment:
    """One environment (parser); celpy lowers a higher recursion limit to 2500, so keep the larger."""
    limit = sys.getrecursionlimit()
    env = celpy.Environment()
    sys.setrecursionlimit(max(limit, sys.getrecursionlimit()))
    return env


_ENV = _environment()


def _timestamp(value: Any) -> Any:
    """``timestamp()`` over RFC 3339 text only (celpy would accept ``"now"``: the current time)."""
    if isinstance(value, celtypes.TimestampType):
        return value
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        return celtypes.TimestampType(value)
    raise ValueError("timestamp() expects RFC 3339 text such as 2024-01-31T12:00:00Z")


_OVERRIDES: dict[str, Any] = {"timestamp": _timestamp}


@dataclass(frozen=True, eq=False)
class Compiled:
    """A parsed, checked expression ready to evaluate (shared through ``compile_expression``'s cache)."""

    text: str
    runner: celpy.Runner
    names: frozenset[str]
    """Free identifiers it reads (``input``, ``steps``, ``item``, type names, …)."""
    steps: frozenset[str]
    """Step ids it reads through ``steps.<id>`` or ``steps["<id>"]``."""


@lru_cache(maxsize=4096)
def compile_expression(text: str) -> Compiled:
    """Parse and check ``text`` once (cached by text); raises ``ExpressionError``."""
    if not text.strip():
        raise ExpressionError(text, "empty expression")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(_clip(text), f"longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        ast = _ENV.compile(text)
    except CELParseError as exc:
        raise ExpressionError(text, _syntax_message(exc)) from None
    except (lark.exceptions.LarkError, RecursionError) as exc:  # pragma: no cover - celpy wraps lark's errors
        raise ExpressionError(text, f"syntax error: {type(exc).__name__}") from None
    _check_shape(text, ast)
    names, steps = _analyse(text, ast)
    return Compiled(text=text, runner=_ENV.program(ast, functions=_OVERRIDES), names=names, steps=steps)


def _syntax_message(exc: CELParseError) -> str:
    where = f" at line {exc.line}, column {exc.column}" if exc.line else ""
    context = exc.__context__
    if isinstance(context, lark.exceptions.UnexpectedToken):
        found = "end of the expression" if context.token.type == "$END" else repr(str(context.token))
        return f"syntax error{where}: unexpected {found}"
    if isinstance(context, lark.exceptions.UnexpectedCharacters):
        return f"syntax error{where}: unexpected character {context.char!r}"
    return f"syntax error{where}"


def _check_shape(text: str, ast: lark.Tree[Any]) -> None:
    nodes = 0
    stack: list[tuple[lark.Tree[Any], int]] = [(ast, 1)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_AST_NODES:
            raise ExpressionError(_clip(text), f"too large (more than {MAX_AST_NODES} syntax nodes)")
        if depth > MAX_AST_DEPTH:
            raise ExpressionError(_clip(text), "nested too deeply")
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, lark.Tree))


def _bare_ident(node: Any) -> str | None:
    """The name if ``node`` is just an identifier (through the single-operand grammar levels)."""
    while isinstance(node, lark.Tree) and node.data in _WRAPPERS and len(node.children) == 1:
        node = node.children[0]
    if isinstance(node, lark.Tree) and node.data == "ident":
        return str(node.children[0])
    return None


def _string_literal(node: Any) -> str | None:
    """The value if ``node`` is just a string literal."""
    while isinstance(node, lark.Tree) and (node.data in _WRAPPERS or node.data == "literal") and node.children:
        if node.data == "literal":
            token = node.children[0]
            if isinstance(token, lark.Token) and token.type in ("STRING_LIT", "MLSTRING_LIT"):
                return str(celstr(token))
            return None
        if len(node.children) != 1:
            return None
        node = node.children[0]
    return None


def _analyse(text: str, ast: lark.Tree[Any]) -> tuple[frozenset[str], frozenset[str]]:
    """Free names and referenced step ids; refuses unknown functions and dynamic ``steps`` access."""
    names: set[str] = set()
    steps: set[str] = set()
    stack: list[tuple[lark.Tree[Any], frozenset[str]]] = [(ast, frozenset())]
    while stack:
        node, bound = stack.pop()
        kind = node.data
        children = node.children
        if kind in _REFUSED:
            raise ExpressionError(text, _REFUSED[kind])
        if kind == "ident":
            name = str(children[0])
            if name == "steps" and name not in bound:
                raise ExpressionError(text, "steps must be followed by a step id: steps.<id> or steps['<id>']")
            if name not in bound:
                names.add(name)
            continue
        if kind in ("ident_arg", "member_dot_arg"):
            function = str(children[0] if kind == "ident_arg" else children[1])
            if function not in FUNCTIONS:
                raise ExpressionError(text, f"unknown function {function!r}")
            if kind == "member_dot_arg" and function in COMPREHENSIONS:
                args = [c for c in children[2:] if isinstance(c, lark.Tree)]
                parts = args[0].children if args else []
                variable = _bare_ident(parts[0]) if parts else None
                if variable is None or len(parts) < 2:
                    raise ExpressionError(text, f"{function}() expects a variable name and an expression")
                stack.append((children[0], bound))
                stack.extend((part, bound | {variable}) for part in parts[1:] if isinstance(part, lark.Tree))
                continue
        if kind in ("member_dot", "member_index") and "steps" not in bound and _bare_ident(children[0]) == "steps":
            step_id = str(children[1]) if kind == "member_dot" else _string_literal(children[1])
            if step_id is None:
                raise ExpressionError(text, "steps must be indexed by a literal step id: steps['<id>']")
            names.add("steps")
            steps.add(step_id)
            continue
        stack.extend((child, bound) for child in children if isinstance(child, lark.Tree))
    return frozenset(names), frozenset(steps)


def unknown_names(compiled: Compiled, allowed: frozenset[str]) -> list[str]:
    """The free names of ``compiled`` that are neither ``allowed`` nor type names (sorted)."""
    return sorted(compiled.names - allowed - TYPE_NAMES)


# --- values -----------------------------------------------------------------------------


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_size(value: Any) -> int:
    """Bytes of ``value``'s compact JSON text."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _json_depth_ok(value: Any) -> bool:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth >= MAX_VALUE_DEPTH:
                return False
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return True


@dataclass(frozen=True, eq=False)
class Converted:
    """A JSON value with its CEL form and JSON size, computed once (``convert``)."""

    json: Any
    cel: Any
    size: int


def convert(value: Any, name: str = "value") -> Converted:
    """``value`` (JSON) converted for CEL; raises ``ExpressionError`` if too deep, too large or not JSON."""
    if not _json_depth_ok(value):
        raise ExpressionError(name, f"the value of {name} is nested too deeply for expressions")
    try:
        size = json_size(value)
        if size > MAX_SCOPE_BYTES:
            raise ExpressionError(name, f"the value of {name} exceeds {MAX_SCOPE_BYTES} bytes of JSON")
        return Converted(json=value, cel=json_to_cel(value), size=size)
    except (TypeError, ValueError) as exc:
        raise ExpressionError(name, f"the value of {name} is not JSON: {_clip(str(exc))}") from None


def convert_mapping(entries: Mapping[str, Converted]) -> Converted:
    """A JSON object of already converted values (no value is converted again)."""
    cel = celtypes.MapType({celtypes.StringType(key): item.cel for key, item in entries.items()})
    size = 2 + sum(json_size(key) + 1 + item.size for key, item in entries.items()) + max(len(entries) - 1, 0)
    return Converted(json={key: item.json for key, item in entries.items()}, cel=cel, size=size)


class Scope:
    """The values expressions see by name, in CEL form, bounded by ``MAX_SCOPE_BYTES`` in all.

    ``Scope({"input": …, "steps": …})`` takes JSON values or ``Converted`` ones (which are
    not converted again); ``extend(item=…, index=…)`` adds or replaces names.
    """

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values: dict[str, Converted] = {}
        for name, value in values.items():
            self.values[name] = value if isinstance(value, Converted) else convert(value, name)
        self.size = sum(item.size for item in self.values.values())
        if self.size > MAX_SCOPE_BYTES:
            raise ExpressionError(
                ", ".join(self.values), f"the values expressions can see exceed {MAX_SCOPE_BYTES} bytes of JSON"
            )
        self.cel = {name: item.cel for name, item in self.values.items()}

    def extend(self, **values: Any) -> Scope:
        """This scope with more names (or names replaced)."""
        return Scope({**self.values, **values})

    def json(self) -> dict[str, Any]:
        """The JSON values by name."""
        return {name: item.json for name, item in self.values.items()}


class _BudgetExceededError(Exception):
    pass


class Meter:
    """What evaluations may still spend: syntax-tree steps and produced units.

    One evaluation gets a fresh meter unless a caller shares one across several (a step's
    ``if`` and templates, say), which then bounds them together.
    """

    def __init__(self, steps: int = MAX_EVAL_STEPS, units: int = MAX_EVAL_UNITS) -> None:
        self.limit = steps
        self.steps = steps
        self.units = units
        self.exceeded: str | None = None

    @property
    def spent(self) -> int:
        """Steps spent so far."""
        return self.limit - self.steps

    def spend(self, steps: int, units: int) -> None:
        self.steps -= steps
        self.units -= units
        if self.exceeded is None and self.steps < 0:
            self.exceeded = f"too costly: more than {self.limit} evaluation steps"
        elif self.exceeded is None and self.units < 0:
            self.exceeded = f"too costly: builds more than {MAX_EVAL_UNITS} characters or elements"
        if self.exceeded:
            raise _BudgetExceededError(self.exceeded)


def _units(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | dict) else 0


class _BoundedEvaluator(Evaluator):
    """celpy's interpreter, charging every node it visits to a shared budget."""

    def __init__(self, ast: lark.Tree[Any], activation: Activation, budget: Meter) -> None:
        super().__init__(ast, activation)
        self._budget = budget

    def sub_evaluator(self, ast: lark.Tree[Any]) -> Evaluator:
        return _BoundedEvaluator(ast, self.activation, self._budget)

    def _visit_tree(self, tree: lark.Tree[Any]) -> Any:
        self._budget.spend(1, 0)
        result = super()._visit_tree(tree)
        if tree.data in _PRODUCING:
            self._budget.spend(0, _units(result))
        return result


def evaluate(expression: str | Compiled, scope: Scope, meter: Meter | None = None) -> Any:
    """The JSON value of ``expression`` over ``scope``; raises ``ExpressionError``."""
    compiled = expression if isinstance(expression, Compiled) else compile_expression(expression)
    budget = meter or Meter()
    if budget.exceeded:
        raise ExpressionError(compiled.text, budget.exceeded)
    evaluator = _BoundedEvaluator(compiled.runner.ast, compiled.runner.new_activation(), budget)
    try:
        value = evaluator.evaluate(scope.cel)
    except _BudgetExceededError as exc:
        raise ExpressionError(compiled.text, str(exc)) from None
    except CELEvalError as exc:
        raise ExpressionError(compiled.text, _eval_message(exc)) from None
    except RecursionError:
        raise ExpressionError(compiled.text, "nested too deeply") from None
    except Exception as exc:  # celpy raises plain Python errors on some inputs
        raise ExpressionError(compiled.text, f"cannot be evaluated ({type(exc).__name__})") from None
    if budget.exceeded:  # raised inside a macro and swallowed there
        raise ExpressionError(compiled.text, budget.exceeded)
    return cel_to_json(value, compiled.text)


def _type_name(match: re.Match[str]) -> str:
    return match.group(1).lower().replace("nonetype", "null")


def _eval_message(exc: CELEvalError) -> str:
    """celpy's error as one short line, in CEL's words (type names, operators)."""
    args = exc.args
    head = str(args[0]) if args else "evaluation error"
    first = args[2][0] if len(args) > 2 and isinstance(args[2], tuple) and args[2] else ""
    detail = first.decode(errors="replace") if isinstance(first, bytes) else str(first)
    if head.startswith("undeclared reference"):
        head = head.split(" (in activation", 1)[0]
    elif head == "return error for overflow":  # celpy's text for any ValueError
        head = "integer overflow" if detail == "overflow" else detail or head
    elif head == "match error":
        head = f"invalid regular expression: {detail}"
    elif head == "invalid_argument" and detail:
        head = detail
    head = re.sub(r"<class '(?:celpy\.celtypes\.)?(\w+?)(?:Type)?'>", _type_name, head)
    head = re.sub(r"Token\('RULE', '(\w+)'\)", lambda m: _OPERATORS.get(m.group(1), m.group(1)), head)
    head = re.sub(r"\b(?:String|Int|Uint|Double|Bool|Bytes)Type\((.*?)\)", r"\1", head)
    return _clip(head, MAX_MESSAGE_CHARS)


def cel_to_json(value: Any, expression: str = "") -> Any:
    """A CEL result as a JSON value; bytes become base64, timestamps RFC 3339, durations ``"90s"``.

    Raises ``ExpressionError`` for values JSON cannot hold (types, NaN, infinities) and for
    results larger than ``MAX_VALUE_BYTES`` or deeper than ``MAX_VALUE_DEPTH``.
    """
    budget = [MAX_VALUE_BYTES]
    result = _to_json(value, expression, budget, 0)
    if json_size(result) > MAX_VALUE_BYTES:
        raise ExpressionError(expression, f"the result exceeds {MAX_VALUE_BYTES} bytes of JSON")
    return result


def _to_json(value: Any, expression: str, budget: list[int], depth: int) -> Any:
    if depth > MAX_VALUE_DEPTH:
        raise ExpressionError(expression, "the result is nested too deeply")
    budget[0] -= 1 + _units(value)
    if budget[0] < 0:
        raise ExpressionError(expression, f"the result exceeds {MAX_VALUE_BYTES} bytes of JSON")
    if value is None:
        return None
    if isinstance(value, bool | celtypes.BoolType):
        return bool(value)
    if isinstance(value, celtypes.TimestampType | celtypes.DurationType):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExpressionError(expression, f"{value} is not a JSON number")
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [_to_json(item, expression, budget, depth + 1) for item in value]
    if isinstance(value, dict):
        return {_key(key, expression): _to_json(item, expression, budget, depth + 1) for key, item in value.items()}
    raise ExpressionError(expression, f"a {type(value).__name__.removesuffix('Type').lower()} is not a JSON value")


def _key(key: Any, expression: str) -> str:
    if isinstance(key, bool | celtypes.BoolType):
        return "true" if key else "false"
    if isinstance(key, str | int):
        return str(key)
    raise ExpressionError(expression, "map keys must be strings, integers or booleans")


# --- templates --------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """One ``${…}`` of a string: the expression's text."""

    text: str


def parse_template(text: str) -> tuple[str | Template, ...]:
    """``text`` split into literal text and ``Template`` parts (cached); raises ``ExpressionError``."""
    if "${" not in text:
        return (text,)
    return _parse_template(text)


@lru_cache(maxsize=4096)
def _parse_template(text: str) -> tuple[str | Template, ...]:
    parts: list[str | Template] = []
    literal: list[str] = []
    at = 0
    while at < len(text):
        if text.startswith("$${", at):
            literal.append("${")
            at += 3
        elif text.startswith("${", at):
            end = _closing_brace(text, at + 2)
            if end < 0:
                raise ExpressionError(_clip(text[at:]), "unterminated ${ … } (no closing brace)")
            inner = text[at + 2 : end].strip()
            if not inner:
                raise ExpressionError(text[at : end + 1], "empty ${}")
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(Template(inner))
            if sum(isinstance(p, Template) for p in parts) > MAX_TEMPLATES_PER_STRING:
                raise ExpressionError(_clip(text), f"more than {MAX_TEMPLATES_PER_STRING} ${{…}} in one string")
            at = end + 1
        else:
            literal.append(text[at])
            at += 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def _closing_brace(text: str, at: int) -> int:
    """Index of the ``}`` closing a template whose expression starts at ``at`` (skips CEL strings)."""
    depth = 0
    while at < len(text):
        char = text[at]
        if char in "'\"":
            at = _string_end(text, at)
            if at < 0:
                return -1
            continue
        if text.startswith("//", at):
            newline = text.find("\n", at)
            at = len(text) if newline < 0 else newline
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return at
            depth -= 1
        at += 1
    return -1


def _string_end(text: str, at: int) -> int:
    """Index just past the CEL string literal starting at ``at`` (-1 if it does not end)."""
    quote = text[at] * 3 if text.startswith(text[at] * 3, at) else text[at]
    raw = at > 0 and text[at - 1] in "rR"
    at += len(quote)
    while at < len(text):
        if not raw and text[at] == "\\":
            at += 2
            continue
        if text.startswith(quote, at):
            return at + len(quote)
        if len(quote) == 1 and text[at] == "\n":
            return -1
        at += 1
    return -1


def template_expressions(text: str) -> Iterator[str]:
    """The expressions of the ``${…}`` in ``text``; raises ``ExpressionError`` if malformed."""
    for part in parse_template(text):
        if isinstance(part, Template):
            yield part.text


def render(value: Any, scope: Scope, meter: Meter | None = None) -> Any:
    """``value`` (JSON) with every string's templates evaluated; see the module docstring.

    Raises ``ExpressionError`` (naming the failing template) when an expression fails or the
    rendered value exceeds ``MAX_VALUE_BYTES``.
    """
    return _render(value, scope, meter or Meter(), [MAX_VALUE_BYTES])


def _render(value: Any, scope: Scope, meter: Meter, budget: list[int]) -> Any:
    if isinstance(value, dict):
        return {key: _render(item, scope, meter, budget) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, scope, meter, budget) for item in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    parts = parse_template(value)
    if len(parts) == 1 and isinstance(parts[0], Template):
        result = evaluate(parts[0].text, scope, meter)
        budget[0] -= json_size(result)
    else:
        result = "".join(
            part if isinstance(part, str) else _as_text(evaluate(part.text, scope, meter)) for part in parts
        )
        budget[0] -= len(result.encode())
    if budget[0] < 0:
        raise ExpressionError(_clip(value), f"the rendered value exceeds {MAX_VALUE_BYTES} bytes")
    return result


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
