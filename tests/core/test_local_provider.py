"""The `local` provider's fixed rules."""

from __future__ import annotations

from core.contracts.llm import ChatMessage, LlmRequest, ModelConfig, ToolSchema
from core.llm.local import LocalProvider

CALC = ToolSchema(name="calculator", description="", parameters={})
CLOCK = ToolSchema(name="current_time", description="", parameters={})


def _request(*messages: ChatMessage, tools: list[ToolSchema] | None = None) -> LlmRequest:
    return LlmRequest(model=ModelConfig(), messages=list(messages), tools=tools or [])


async def test_calls_calculator_for_arithmetic_when_offered() -> None:
    response = await LocalProvider().complete(_request(ChatMessage("user", "what's 3 * (2 + 5)?"), tools=[CALC]))
    assert [(c.name, c.arguments) for c in response.tool_calls] == [("calculator", {"expression": "3 * (2 + 5)"})]
    assert response.content == ""
    assert response.usage.input_tokens == 11


async def test_spoken_operators_between_numbers_are_arithmetic() -> None:
    question = ChatMessage("user", "What is 6 times 7, 2 plus 3 and 12 divided by 4? Not two times.")
    response = await LocalProvider().complete(_request(question, tools=[CALC]))
    assert [c.arguments["expression"] for c in response.tool_calls] == ["6 * 7", "2 + 3", "12 / 4"]
    words = await LocalProvider().complete(_request(ChatMessage("user", "Three times a day"), tools=[CALC]))
    assert (words.tool_calls, words.content) == ([], "You said: Three times a day")


async def test_answers_without_tools_when_not_offered() -> None:
    response = await LocalProvider().complete(_request(ChatMessage("user", "what's 3 * 2?")))
    assert response.tool_calls == []
    assert response.content == "You said: what's 3 * 2?"


async def test_asks_for_time_and_summarises_tool_results() -> None:
    first = await LocalProvider().complete(_request(ChatMessage("user", "what time is it?"), tools=[CALC, CLOCK]))
    assert [c.name for c in first.tool_calls] == ["current_time"]
    second = await LocalProvider().complete(
        _request(
            ChatMessage("user", "what time is it?"),
            ChatMessage("assistant", tool_calls=first.tool_calls),
            ChatMessage("tool", "12:00", tool_call_id=first.tool_calls[0].id, name="current_time"),
            tools=[CALC, CLOCK],
        )
    )
    assert second.content == "Result — current_time: 12:00"
    assert second.usage.output_tokens > 0


async def test_only_the_latest_turn_counts() -> None:
    response = await LocalProvider().complete(
        _request(
            ChatMessage("user", "1 + 1"),
            ChatMessage("tool", "2", name="calculator"),
            ChatMessage("assistant", "Result — calculator: 2"),
            ChatMessage("user", "thanks"),
            tools=[CALC],
        )
    )
    assert response.content == "You said: thanks"


async def test_several_expressions_become_parallel_calls() -> None:
    response = await LocalProvider().complete(_request(ChatMessage("user", "1+1, 2*3 and 10-4?"), tools=[CALC]))
    assert [c.arguments["expression"] for c in response.tool_calls] == ["1+1", "2*3", "10-4"]
    assert len({c.id for c in response.tool_calls}) == 3


async def test_use_names_any_offered_tool_with_arguments() -> None:
    tool = ToolSchema(name="record", description="", parameters={})
    response = await LocalProvider().complete(
        _request(ChatMessage("user", "please use record with note=hello id=7"), tools=[tool])
    )
    assert [(c.name, c.arguments) for c in response.tool_calls] == [("record", {"note": "hello", "id": "7"})]
    ignored = await LocalProvider().complete(_request(ChatMessage("user", "use rm_rf with x=1"), tools=[tool]))
    assert ignored.tool_calls == []
