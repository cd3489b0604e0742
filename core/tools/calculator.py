"""``calculator``: evaluates arithmetic safely (no names, no calls, bounded powers)."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

from core.contracts.llm import ToolSchema
from core.errors import ToolError
from core.tools.base import ToolContext

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
MAX_EXPRESSION = 200
MAX_EXPONENT = 100


def evaluate(expression: str) -> float | int:
    """The value of an arithmetic ``expression``; ``ToolError`` if it is not one."""
    if len(expression) > MAX_EXPRESSION:
        raise ToolError(f"expression longer than {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"not an arithmetic expression: {expression!r}") from exc
    return _eval(tree.body)


def _eval(node: ast.expr) -> float | int:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolError(f"exponent above {MAX_EXPONENT}")
        try:
            result: float | int = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError as exc:
            raise ToolError("division by zero") from exc
        return result
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        value: float | int = _UNARY[type(node.op)](_eval(node.operand))
        return value
    raise ToolError("only numbers and + - * / // % ** ( ) are allowed")


class CalculatorTool:
    """Arithmetic on numbers; pure, so it has no side effects."""

    side_effects = False
    pure = True
    schema = ToolSchema(
        name="calculator",
        description="Evaluate an arithmetic expression such as '2 + 3 * 4'.",
        parameters={
            "type": "object",
            "properties": {"expression": {"type": "string", "maxLength": MAX_EXPRESSION}},
            "required": ["expression"],
            "additionalProperties": False,
        },
    )

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> Any:
        """Evaluate ``arguments["expression"]``."""
        expression = arguments.get("expression")
        if not isinstance(expression, str):
            raise ToolError("'expression' must be a string")
        value = evaluate(expression)
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)
        return {"expression": expression, "value": value}
