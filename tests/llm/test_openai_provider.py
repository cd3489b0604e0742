"""The OpenAI provider: the real ``openai`` SDK against a scripted Chat Completions server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.contracts.llm import ChatMessage, LlmRequest, ModelConfig, ToolCall, ToolSchema
from core.llm.base import LlmProvider, ProviderError
from core.llm.openai_provider import OpenAIProvider
from core.llm.pricing import PriceTable
from simulated.scripted_server import (
    Reply,
    ScriptedServer,
    closed_port_url,
    oa_chunk,
    oa_error,
    oa_stream,
    oa_tool_delta,
    oa_usage,
)

KEY = "sk-test-SECRET0123456789abcdef"
WEATHER = ToolSchema(
    "get_weather", "Weather for a city.", {"type": "object", "properties": {"city": {"type": "string"}}}
)
CALC = ToolSchema("calculator", "Evaluate arithmetic.", {"type": "object", "properties": {"expression": {}}})


def _request(
    server: ScriptedServer, *messages: ChatMessage, tools: list[ToolSchema] | None = None, **params: Any
) -> LlmRequest:
    model = ModelConfig(provider="openai", name="gpt-4o-mini", base_url=f"{server.url}/v1", params=params)
    return LlmRequest(model=model, messages=list(messages), tools=tools or [], api_key=KEY)


async def _fail(provider: OpenAIProvider, request: LlmRequest) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.complete(request)
    assert caught.value.provider == "openai"
    assert KEY not in str(caught.value)
    return caught.value


def test_implements_the_protocol() -> None:
    provider: LlmProvider = OpenAIProvider()
    assert provider.name == "openai"


async def test_streams_text_with_deltas_usage_and_cost(server: ScriptedServer, openai_provider: OpenAIProvider) -> None:
    server.push(
        oa_stream(
            oa_chunk({"role": "assistant", "content": ""}),
            oa_chunk({"content": "Hel"}),
            oa_chunk({"content": "lo, "}),
            oa_chunk({"content": "world"}),
            oa_chunk({}, finish="stop"),
            oa_usage(1000, 2000),
        )
    )
    deltas: list[str] = []

    async def on_delta(text: str) -> None:
        deltas.append(text)

    request = _request(
        server,
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "hi"),
        temperature=0.2,
        max_tokens=50,
        latency_ms=5,
    )
    response = await openai_provider.complete(request, on_delta=on_delta)

    assert deltas == ["Hel", "lo, ", "world"]
    assert response.content == "Hello, world"
    assert response.finish_reason == "stop"
    assert response.tool_calls == []
    assert (response.usage.input_tokens, response.usage.output_tokens) == (1000, 2000)
    assert response.usage.cost_usd == pytest.approx(0.00015 + 0.0012)  # gpt-4o-mini list price
    sent = server.received[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body["model"] == "gpt-4o-mini"
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert (sent.body["temperature"], sent.body["max_tokens"]) == (0.2, 50)
    assert "latency_ms" not in sent.body  # not whitelisted
    assert "tools" not in sent.body


async def test_tool_call_split_across_chunks(server: ScriptedServer, openai_provider: OpenAIProvider) -> None:
    server.push(
        oa_stream(
            oa_chunk(oa_tool_delta(0, id="call_abc", name="get_weather")),
            oa_chunk(oa_tool_delta(0, args='{"ci')),
            oa_chunk(oa_tool_delta(0, args='ty": "Par')),
            oa_chunk(oa_tool_delta(0, args='is"}')),
            oa_chunk({}, finish="tool_calls"),
            oa_usage(20, 10),
        )
    )
    response = await openai_provider.complete(
        _request(server, ChatMessage("user", "weather in Paris?"), tools=[WEATHER], tool_choice="auto")
    )
    assert response.tool_calls == [ToolCall("call_abc", "get_weather", {"city": "Paris"})]
    assert response.finish_reason == "tool_calls"
    assert response.content == ""
    sent = server.received[0].body
    assert sent["tools"] == [{"type": "function", "function": WEATHER.__dict__}]
    assert sent["tool_choice"] == "auto"


async def test_two_parallel_tool_calls(server: ScriptedServer, openai_provider: OpenAIProvider) -> None:
    server.push(
        oa_stream(
            oa_chunk({"content": "Checking."}),
            oa_chunk(oa_tool_delta(0, id="call_1", name="get_weather", args='{"city":')),
            oa_chunk(oa_tool_delta(1, id="call_2", name="calculator", args='{"expr')),
            oa_chunk(oa_tool_delta(0, args=' "Oslo"}')),
            oa_chunk(oa_tool_delta(1, args='ession": "2*3"}')),
            oa_chunk({}, finish="tool_calls"),
        )
    )
    response = await openai_provider.complete(_request(server, ChatMessage("user", "go"), tools=[WEATHER, CALC]))
    assert response.tool_calls == [
        ToolCall("call_1", "get_weather", {"city": "Oslo"}),
        ToolCall("call_2", "calculator", {"expression": "2*3"}),
    ]
    assert response.content == "Checking."
    assert response.usage.input_tokens > 0  # no usage chunk: estimated
    assert response.usage.output_tokens > 0


async def test_multi_turn_maps_tool_calls_and_results(server: ScriptedServer, openai_provider: OpenAIProvider) -> None:
    server.push(oa_stream(oa_chunk({"content": "Oslo: 3°C, and 6."}, finish="stop")))
    messages = [
        ChatMessage("system", "sys"),
        ChatMessage("user", "weather and 2*3?"),
        ChatMessage(
            "assistant",
            "",
            tool_calls=[
                ToolCall("call_1", "get_weather", {"city": "Oslo"}),
                ToolCall("call_2", "calculator", {"expression": "2*3"}),
            ],
        ),
        ChatMessage("tool", "3°C", tool_call_id="call_1", name="get_weather"),
        ChatMessage("tool", "6", tool_call_id="call_2", name="calculator"),
    ]
    await openai_provider.complete(_request(server, *messages, tools=[WEATHER, CALC]))
    wire = server.received[0].body["messages"]
    assert wire[2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "calculator", "arguments": '{"expression": "2*3"}'},
            },
        ],
    }
    assert wire[3:] == [
        {"role": "tool", "tool_call_id": "call_1", "content": "3°C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "6"},
    ]


async def test_malformed_arguments_are_returned_not_raised(
    server: ScriptedServer, openai_provider: OpenAIProvider
) -> None:
    server.push(
        oa_stream(
            oa_chunk(oa_tool_delta(0, id="call_x", name="calculator", args='{"expression": 2*')),
            oa_chunk({}, finish="tool_calls"),
        )
    )
    response = await openai_provider.complete(_request(server, ChatMessage("user", "go"), tools=[CALC]))
    assert response.tool_calls == [ToolCall("call_x", "calculator", {"__invalid_json__": '{"expression": 2*'})]


async def test_response_format_passed_through(server: ScriptedServer, openai_provider: OpenAIProvider) -> None:
    server.push(oa_stream(oa_chunk({"content": '{"a": 1}'}, finish="stop")))
    request = _request(server, ChatMessage("user", "json please"))
    request.response_format = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}}
    response = await openai_provider.complete(request)
    assert json.loads(response.content) == {"a": 1}
    assert server.received[0].body["response_format"] == request.response_format


async def test_base_url_and_client_cache(server: ScriptedServer, openai_provider: OpenAIProvider) -> None:
    other = ScriptedServer().start()
    try:
        for target in (server, other, server):
            target.push(oa_stream(oa_chunk({"content": "ok"}, finish="stop")))
            await openai_provider.complete(_request(target, ChatMessage("user", "hi")))
    finally:
        other.stop()
    assert (len(server.received), len(other.received)) == (2, 1)
    assert len(openai_provider._clients) == 2


async def test_429_is_retryable_with_retry_after(server: ScriptedServer, openai_provider: OpenAIProvider) -> None:
    server.push(oa_error(429, "Rate limit reached", code="rate_limit_exceeded", headers={"Retry-After": "7"}))
    error = await _fail(openai_provider, _request(server, ChatMessage("user", "hi")))
    assert (error.retryable, error.status, error.retry_after_s) == (True, 429, 7.0)
    assert "openai" in str(error)
    assert "429" in str(error)


async def test_retry_after_ms_wins(server: ScriptedServer, openai_provider: OpenAIProvider) -> None:
    server.push(oa_error(429, "slow down", headers={"retry-after-ms": "1500", "retry-after": "2"}))
    error = await _fail(openai_provider, _request(server, ChatMessage("user", "hi")))
    assert error.retry_after_s == 1.5


async def test_500_is_retryable(server: ScriptedServer, openai_provider: OpenAIProvider) -> None:
    server.push(oa_error(500, "The server had an error"))
    error = await _fail(openai_provider, _request(server, ChatMessage("user", "hi")))
    assert (error.retryable, error.status) == (True, 500)


async def test_401_is_not_retryable_and_hides_the_key(server: ScriptedServer, openai_provider: OpenAIProvider) -> None:
    server.push(oa_error(401, f"Incorrect API key provided: {KEY}.", code="invalid_api_key"))
    error = await _fail(openai_provider, _request(server, ChatMessage("user", "hi")))
    assert (error.retryable, error.status) == (False, 401)
    assert "openai" in str(error)
    assert "401" in str(error)


@pytest.mark.parametrize("status", [400, 403, 404, 422])
async def test_client_errors_are_not_retryable(
    server: ScriptedServer, openai_provider: OpenAIProvider, status: int
) -> None:
    server.push(oa_error(status, "nope"))
    error = await _fail(openai_provider, _request(server, ChatMessage("user", "hi")))
    assert (error.retryable, error.status) == (False, status)


async def test_content_policy_error_is_not_retryable(server: ScriptedServer, openai_provider: OpenAIProvider) -> None:
    server.push(oa_error(400, "Your request was rejected", code="content_policy_violation"))
    error = await _fail(openai_provider, _request(server, ChatMessage("user", "hi")))
    assert not error.retryable
    assert "content policy" in str(error)


async def test_content_filter_finish_is_not_retryable(server: ScriptedServer, openai_provider: OpenAIProvider) -> None:
    server.push(oa_stream(oa_chunk({"content": "I"}), oa_chunk({}, finish="content_filter")))
    error = await _fail(openai_provider, _request(server, ChatMessage("user", "hi")))
    assert not error.retryable
    assert "content policy" in str(error)


async def test_error_event_inside_the_stream(server: ScriptedServer, openai_provider: OpenAIProvider) -> None:
    server.push(Reply(events=['data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n']))
    error = await _fail(openai_provider, _request(server, ChatMessage("user", "hi")))
    assert error.retryable


async def test_connection_refused_is_retryable(openai_provider: OpenAIProvider) -> None:
    request = LlmRequest(ModelConfig("openai", "gpt-4o", base_url=closed_port_url()), [ChatMessage("user", "hi")])
    error = await _fail(openai_provider, request)
    assert error.retryable
    assert "connection failed" in str(error)


async def test_timeout_is_retryable(server: ScriptedServer) -> None:
    server.push(Reply(delay_s=3))
    provider = OpenAIProvider(timeout_s=0.3)
    try:
        error = await _fail(provider, _request(server, ChatMessage("user", "hi")))
    finally:
        await provider.aclose()
    assert error.retryable
    assert "timed out" in str(error)


async def test_custom_price_table(server: ScriptedServer) -> None:
    server.push(oa_stream(oa_chunk({"content": "ok"}, finish="stop"), oa_usage(1_000_000, 0)))
    provider = OpenAIProvider(prices=PriceTable.from_json('{"gpt-4o-mini": {"input": 9, "output": 9}}'))
    try:
        response = await provider.complete(_request(server, ChatMessage("user", "hi")))
    finally:
        await provider.aclose()
    assert response.usage.cost_usd == 9.0


async def test_tool_message_without_id_is_rejected_before_sending(
    server: ScriptedServer, openai_provider: OpenAIProvider
) -> None:
    error = await _fail(openai_provider, _request(server, ChatMessage("user", "hi"), ChatMessage("tool", "6")))
    assert not error.retryable
    assert server.received == []
