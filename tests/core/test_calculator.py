"""The calculator evaluates arithmetic only."""

from __future__ import annotations

import pytest

from core.errors import ToolError
from core.tools.base import ToolContext
from core.tools.calculator import CalculatorTool, evaluate

CTX = ToolContext(tenant_id="ten_x", run_id="run_x", idempotency_key="k")


@pytest.mark.parametrize(
    ("expression", "value"),
    [("2 + 3 * 4", 14), ("12 * (3 + 4)", 84), ("2 ** 10", 1024), ("7 / 2", 3.5), ("-3 + 1", -2), ("7 // 2", 3)],
)
def test_arithmetic(expression: str, value: float) -> None:
    assert evaluate(expression) == value


@pytest.mark.parametrize(
    "expression",
    ["__import__('os')", "a + 1", "2 ** 1000", "1 / 0", "(1).real", "[1, 2]", "True + 1", "x" * 300],
)
def test_rejects_everything_else(expression: str) -> None:
    with pytest.raises(ToolError):
        evaluate(expression)


async def test_tool_returns_integral_floats_as_ints() -> None:
    assert await CalculatorTool().call({"expression": "4 / 2"}, CTX) == {"expression": "4 / 2", "value": 2}
    with pytest.raises(ToolError):
        await CalculatorTool().call({"expression": 5}, CTX)
