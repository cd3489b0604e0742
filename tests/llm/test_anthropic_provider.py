"""The Anthropic provider: the real ``anthropic`` SDK against a scripted Messages server."""

from __future__ import annotations

from typing import Any

import pytest

from core.contracts.llm import ChatMessage, LlmRequest, ModelConfig, ToolCall, ToolSchema
from core.llm.anthropic_provider import AnthropicProvider
from core.llm.base import LlmProvider, ProviderError
from simulated.scripted_server import (
    Reply,
    ScriptedServer,
    an_end,
    an_error,
    an_event,
    an_start,
    an_stream,
    an_text,
    an_tool,
    closed_port_url,
)

KEY = "sk-ant-api03-SECRET0123456789abcdef"
WEATHER = ToolSchema(
    "get_weather", "Weather for a city.", {"type": "object", "properties": {"city": {"type": "string"}}}
)
CLOCK = ToolSchema("current_time", "The time.")


def _request(
    server: ScriptedServer, *messages: ChatMessage, tools: list[ToolSchema] | None = None, **params: Any
) -> LlmRequest:
    model = ModelConfig(provider="anthropic", name="claude-sonnet-4-6", base_url=server.url, params=params)
    return LlmRequest(model=model, messages=list(messages), tools=tools or [], api_key=KEY)


async def _fail(provider: AnthropicProvider, request: LlmRequest) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.complete(request)
    assert caught.value.provider == "anthropic"
    assert KEY not in str(caught.value)
    return caught.value


def test_implements_the_protocol() -> None:
    provider: LlmProvider = AnthropicProvider()
    assert provider.name == "anthropic"


async def test_streams_text_with_deltas_usage_and_cost(
    server: ScriptedServer, anthropic_provider: AnthropicProvider
) -> None:
    server.push(an_stream(an_start(input_tokens=1000), an_text(0, "Hel", "lo, ", "world"), an_end("end_turn", 2000)))
    deltas: list[str] = []

    async def on_delta(text: str) -> None:
        deltas.append(text)

    request = _request(
        server,
        ChatMessage("system", "Be brief."),
        ChatMessage("system", "Be kind."),
        ChatMessage("user", "hi"),
        temperature=0.3,
        top_k=5,
        latency_ms=5,
    )
    response = await anthropic_provider.complete(request, on_delta=on_delta)

    assert deltas == ["Hel", "lo, ", "world"]
    assert response.content == "Hello, world"
    assert response.finish_reason == "stop"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (1000, 2000)
    assert response.usage.cost_usd == pytest.approx(0.003 + 0.03)  # claude-sonnet-4 list price
    sent = server.received[0]
    assert sent.path == "/v1/messages"
    assert KEY in (sent.headers.get("x-api-key"), sent.headers.get("authorization", "").removeprefix("Bearer "))
    assert "anthropic-version" in sent.headers
    assert sent.body["stream"] is True
    assert sent.body["max_tokens"] == 1024
    assert sent.body["system"] == "Be brief.\n\nBe kind."
    assert sent.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert (sent.body["temperature"], sent.body["top_k"]) == (0.3, 5)
    assert "latency_ms" not in sent.body
    assert "tools" not in sent.body


async def test_tool_use_split_across_deltas(server: ScriptedServer, anthropic_provider: AnthropicProvider) -> None:
    server.push(
        an_stream(
            an_start(),
            an_text(0, "Let me check."),
            an_tool(1, "toolu_1", "get_weather", '{"ci', 'ty": "Pa', 'ris"}'),
            an_end("tool_use", 30),
        )
    )
    response = await anthropic_provider.complete(
        _request(server, ChatMessage("user", "weather?"), tools=[WEATHER, CLOCK], max_tokens=200)
    )
    assert response.tool_calls == [ToolCall("toolu_1", "get_weather", {"city": "Paris"})]
    assert response.content == "Let me check."
    assert response.finish_reason == "tool_calls"
    sent = server.received[0].body
    assert sent["max_tokens"] == 200
    assert sent["tools"] == [
        {"name": "get_weather", "description": "Weather for a city.", "input_schema": WEATHER.parameters},
        {"name": "current_time", "description": "The time.", "input_schema": {"type": "object", "properties": {}}},
    ]


async def test_two_parallel_tool_uses(server: ScriptedServer, anthropic_provider: AnthropicProvider) -> None:
    server.push(
        an_stream(
            an_start(),
            an_tool(0, "toolu_1", "get_weather", '{"city": "Oslo"}'),
            an_tool(1, "toolu_2", "current_time"),
            an_end("tool_use", 30),
        )
    )
    response = await anthropic_provider.complete(_request(server, ChatMessage("user", "go"), tools=[WEATHER, CLOCK]))
    assert response.tool_calls == [
        ToolCall("toolu_1", "get_weather", {"city": "Oslo"}),
        ToolCall("toolu_2", "current_time", {}),
    ]


async def test_multi_turn_maps_tool_use_and_merged_tool_results(
    server: ScriptedServer, anthropic_provider: AnthropicProvider
) -> None:
    server.push(an_stream(an_start(), an_text(0, "Done."), an_end("end_turn", 3)))
    messages = [
        ChatMessage("system", "sys"),
        ChatMessage("user", "weather and time?"),
        ChatMessage(
            "assistant",
            "Checking.",
            tool_calls=[ToolCall("toolu_1", "get_weather", {"city": "Oslo"}), ToolCall("toolu_2", "current_time")],
        ),
        ChatMessage("tool", "3°C", tool_call_id="toolu_1", name="get_weather"),
        ChatMessage("tool", "12:00", tool_call_id="toolu_2", name="current_time"),
        ChatMessage("user", "thanks"),
    ]
    await anthropic_provider.complete(_request(server, *messages, tools=[WEATHER, CLOCK]))
    sent = server.received[0].body
    assert sent["system"] == "sys"
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "weather and time?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_2", "name": "current_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "3°C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "12:00"},
                {"type": "text", "text": "thanks"},
            ],
        },
    ]


async def test_malformed_input_json_is_returned_not_raised(
    server: ScriptedServer, anthropic_provider: AnthropicProvider
) -> None:
    server.push(an_stream(an_start(), an_tool(0, "toolu_x", "get_weather", '{"city": Osl'), an_end("tool_use", 5)))
    response = await anthropic_provider.complete(_request(server, ChatMessage("user", "go"), tools=[WEATHER]))
    assert response.tool_calls == [ToolCall("toolu_x", "get_weather", {"__invalid_json__": '{"city": Osl'})]


async def test_json_schema_response_format_maps_to_output_config(
    server: ScriptedServer, anthropic_provider: AnthropicProvider
) -> None:
    server.push(an_stream(an_start(), an_text(0, "{}"), an_end("end_turn", 1)))
    request = _request(server, ChatMessage("user", "json"))
    request.response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    await anthropic_provider.complete(request)
    assert server.received[0].body["output_config"] == {"format": {"type": "json_schema", "schema": {"type": "object"}}}


async def test_refusal_is_not_retryable(server: ScriptedServer, anthropic_provider: AnthropicProvider) -> None:
    details = {"type": "refusal", "category": "cyber", "explanation": "Not with that."}
    server.push(an_stream(an_start(), an_text(0, "I can"), an_end("refusal", 2, stop_details=details)))
    error = await _fail(anthropic_provider, _request(server, ChatMessage("user", "bad")))
    assert not error.retryable
    assert "refused" in str(error)
    assert "cyber" in str(error)


async def test_429_is_retryable_with_retry_after(server: ScriptedServer, anthropic_provider: AnthropicProvider) -> None:
    server.push(an_error(429, "rate_limit_error", "Too many requests", headers={"retry-after": "12"}))
    error = await _fail(anthropic_provider, _request(server, ChatMessage("user", "hi")))
    assert (error.retryable, error.status, error.retry_after_s) == (True, 429, 12.0)


@pytest.mark.parametrize(("status", "kind"), [(500, "api_error"), (529, "overloaded_error")])
async def test_server_errors_are_retryable(
    server: ScriptedServer, anthropic_provider: AnthropicProvider, status: int, kind: str
) -> None:
    server.push(an_error(status, kind, "try later"))
    error = await _fail(anthropic_provider, _request(server, ChatMessage("user", "hi")))
    assert (error.retryable, error.status) == (True, status)


async def test_401_is_not_retryable_and_hides_the_key(
    server: ScriptedServer, anthropic_provider: AnthropicProvider
) -> None:
    server.push(an_error(401, "authentication_error", f"invalid x-api-key {KEY}"))
    error = await _fail(anthropic_provider, _request(server, ChatMessage("user", "hi")))
    assert (error.retryable, error.status) == (False, 401)
    assert "anthropic" in str(error)
    assert "401" in str(error)


async def test_overloaded_error_event_mid_stream_is_retryable(
    server: ScriptedServer, anthropic_provider: AnthropicProvider
) -> None:
    overloaded = an_event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
    server.push(an_stream(an_start(), an_text(0, "Hi"), [overloaded]))
    error = await _fail(anthropic_provider, _request(server, ChatMessage("user", "hi")))
    assert (error.retryable, error.status) == (True, 529)


async def test_connection_refused_is_retryable(anthropic_provider: AnthropicProvider) -> None:
    model = ModelConfig("anthropic", "claude-haiku-4-5", base_url=closed_port_url())
    error = await _fail(anthropic_provider, LlmRequest(model, [ChatMessage("user", "hi")]))
    assert error.retryable


async def test_timeout_is_retryable(server: ScriptedServer, anthropic_provider: AnthropicProvider) -> None:
    server.push(Reply(delay_s=3))
    error = await _fail(anthropic_provider, _request(server, ChatMessage("user", "hi"), timeout_s=0.3))
    assert error.retryable
    assert "timed out" in str(error)
