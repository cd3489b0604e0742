"""The payload converter's memoized type hints decode exactly what the plain ones did."""

from __future__ import annotations

import typing

import temporalio.converter._payload_converter as payload_converter
from temporalio.converter import DataConverter

from core.contracts.agent_run import ToolStepInput, ToolStepResult
from core.contracts.llm import ChatMessage, ToolCall
from core.type_hints import cached_type_hints, memoize_converter_type_hints


async def test_memoized_hints_decode_nested_contracts() -> None:
    memoize_converter_type_hints()
    memoize_converter_type_hints()  # idempotent
    assert payload_converter.get_type_hints is cached_type_hints
    value = ToolStepInput(
        tenant_id="t",
        run_id="r",
        step_id="s2-0",
        call=ToolCall(id="c1", name="calculator", arguments={"expression": "1 + 1"}),
        assistant=ChatMessage(role="assistant", tool_calls=[ToolCall(id="c1", name="calculator", arguments={})]),
        outcome=ToolStepResult(content="2", data={"value": 2}),
    )
    converter = DataConverter.default
    for _ in range(2):  # the second decode reads the cache
        decoded = (await converter.decode(await converter.encode([value]), [ToolStepInput]))[0]
        assert decoded == value
        assert isinstance(decoded.call, ToolCall)
        assert isinstance(decoded.outcome, ToolStepResult)


def test_cached_hints_are_the_typing_ones() -> None:
    assert cached_type_hints(ToolStepInput) == typing.get_type_hints(ToolStepInput)
    assert cached_type_hints(ToolStepInput) is cached_type_hints(ToolStepInput)
