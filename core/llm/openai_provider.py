"""The ``openai`` provider: Chat Completions over the official ``openai`` SDK, always streamed.

Works with OpenAI and every server that speaks the Chat Completions protocol:
Azure OpenAI (``base_url="https://<resource>.openai.azure.com/openai/v1/"``), vLLM,
Ollama (``http://host:11434/v1``), llama.cpp server and LM Studio. Set
``ModelConfig.base_url`` to reach them; ``api_key`` may be absent for local servers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

import openai
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam, ChatCompletionToolParam

from core.contracts.llm import ChatMessage, LlmRequest, LlmResponse, ToolCall, Usage
from core.llm import errors
from core.llm.base import DeltaCallback, ProviderError
from core.llm.clients import ClientCache
from core.llm.pricing import PriceTable, estimate_usage

DEFAULT_BASE_URL = "https://api.openai.com/v1"

PASSTHROUGH_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "frequency_penalty",
        "presence_penalty",
        "stop",
        "seed",
        "logit_bias",
        "user",
        "reasoning_effort",
        "service_tier",
        "verbosity",
        "prompt_cache_key",
        "safety_identifier",
    }
)
"""``ModelConfig.params`` sent to the API as they are; other params are ignored."""

TOOL_PARAMS = frozenset({"tool_choice", "parallel_tool_calls"})
"""Params sent only when tools are offered."""


class OpenAIProvider:
    """Chat Completions provider with streaming and tool calling.

    Tool-call arguments are parsed as JSON. When a model sends malformed
    arguments the call is **not** failed: the ``ToolCall`` carries
    ``arguments={"__invalid_json__": "<raw text>"}`` so the agent loop can tell
    the model and let it try again. Failures raise ``ProviderError``, classified
    by ``core.llm.errors``; a ``content_filter`` finish or a refusal is a
    non-retryable ``ProviderError``.

    ``model.params["timeout_s"]`` overrides the provider's timeout per agent.
    """

    name = "openai"

    def __init__(self, *, prices: PriceTable | None = None, timeout_s: float = 120.0):
        """Create the provider.

        Args:
            prices: Prices for ``Usage.cost_usd``; list prices when ``None``.
            timeout_s: Connect and per-read timeout of each request, in seconds.
        """
        self._prices = prices or PriceTable()
        self._timeout_s = timeout_s
        self._clients: ClientCache[openai.AsyncOpenAI] = ClientCache(
            lambda base_url, api_key: openai.AsyncOpenAI(
                api_key=api_key, base_url=base_url, max_retries=0, timeout=self._timeout_s
            )
        )

    async def complete(self, request: LlmRequest, *, on_delta: DeltaCallback | None = None) -> LlmResponse:
        """Stream a chat completion for ``request``; text deltas go to ``on_delta``.

        Raises:
            ProviderError: On HTTP, connection, timeout and content-policy failures.
        """
        base_url = request.model.base_url or DEFAULT_BASE_URL
        client = self._client(base_url, request.api_key or "unused")
        tools = [_wire_tool(t.name, t.description, t.parameters) for t in request.tools]
        params = request.model.params
        body = {k: v for k, v in params.items() if k in PASSTHROUGH_PARAMS or (tools and k in TOOL_PARAMS)}
        if request.response_format is not None:
            body["response_format"] = request.response_format
        timeout = float(params.get("timeout_s") or self._timeout_s)
        stream = _Accumulator()
        try:
            chunks = await client.chat.completions.create(
                model=request.model.name,
                messages=_wire_messages(request.messages),
                tools=tools or openai.omit,
                stream=True,
                stream_options={"include_usage": True},
                extra_body=body or None,
                timeout=timeout,
            )
            async with chunks:
                async for chunk in chunks:
                    delta = stream.add(chunk)
                    if delta and on_delta is not None:
                        await on_delta(delta)
        except openai.APIStatusError as exc:
            raise errors.status_error(
                self.name, exc.status_code, body=exc.body, headers=exc.response.headers, secrets=[request.api_key]
            ) from None
        except openai.APIConnectionError as exc:
            timed_out = isinstance(exc, openai.APITimeoutError)
            raise errors.connection_error(self.name, base_url, timed_out=timed_out) from None
        except openai.APIError as exc:  # an error event inside the stream
            status = errors.implied_status(exc.code, exc.type)
            raise errors.status_error(self.name, status, body=exc.body, secrets=[request.api_key]) from None
        except json.JSONDecodeError as exc:
            raise errors.malformed_error(self.name, f"undecodable stream event ({exc.msg})") from None
        return self._response(request, stream)

    async def aclose(self) -> None:
        """Close the cached HTTP clients."""
        await self._clients.aclose()

    def _client(self, base_url: str, api_key: str) -> openai.AsyncOpenAI:
        return self._clients.get(base_url, api_key)

    def _response(self, request: LlmRequest, stream: _Accumulator) -> LlmResponse:
        if stream.finish_reason == "content_filter":
            raise errors.refusal_error(self.name, "finish_reason=content_filter")
        if stream.refusal:
            raise errors.refusal_error(self.name, stream.refusal)
        if not stream.received:
            raise ProviderError(f"{self.name} ended the stream without an answer", provider=self.name, retryable=True)
        calls = stream.tool_calls()
        usage = stream.usage or estimate_usage(request, stream.content + "".join(c.arguments for c in stream.calls))
        usage.cost_usd = self._prices.cost_usd(request.model.name, usage)
        finish = "tool_calls" if calls else (stream.finish_reason or "stop")
        return LlmResponse(content=stream.content, tool_calls=calls, usage=usage, finish_reason=finish)


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class _Accumulator:
    """Folds ``chat.completion.chunk`` objects into one answer (choice 0)."""

    parts: list[str] = field(default_factory=list)
    refusal: str = ""
    calls: list[_PartialCall] = field(default_factory=list)
    by_index: dict[int, _PartialCall] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Usage | None = None
    received: bool = False

    @property
    def content(self) -> str:
        return "".join(self.parts)

    def add(self, chunk: ChatCompletionChunk) -> str:
        """Fold ``chunk`` in; returns its text delta ("" if none)."""
        if chunk.usage is not None:
            self.usage = Usage(input_tokens=chunk.usage.prompt_tokens, output_tokens=chunk.usage.completion_tokens)
        text = ""
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            self.received = True
            delta = choice.delta
            if delta.content:
                text = delta.content
                self.parts.append(text)
            if delta.refusal:
                self.refusal += delta.refusal
            for fragment in delta.tool_calls or []:
                call = self.by_index.get(fragment.index)
                if call is None:
                    call = self.by_index[fragment.index] = _PartialCall()
                    self.calls.append(call)
                if fragment.id and not call.id:
                    call.id = fragment.id
                if fragment.function is not None:
                    name = fragment.function.name or ""
                    if name != call.name:  # sent whole once, repeated by some servers
                        call.name += name
                    call.arguments += fragment.function.arguments or ""
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        return text

    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall(id=c.id or f"call_{i}", name=c.name, arguments=errors.parse_tool_arguments(c.arguments))
            for i, c in enumerate(self.calls)
        ]


def _wire_tool(name: str, description: str, parameters: dict[str, Any]) -> ChatCompletionToolParam:
    schema = parameters or {"type": "object", "properties": {}}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": schema}}


def _wire_messages(messages: list[ChatMessage]) -> list[ChatCompletionMessageParam]:
    wire: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "tool":
            if not m.tool_call_id:
                raise ProviderError("openai: a tool message has no tool_call_id", provider="openai", retryable=False)
            wire.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
            continue
        item: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.name:
            item["name"] = m.name
        if m.role == "assistant" and m.tool_calls:
            item["content"] = m.content or None
            item["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                for c in m.tool_calls
            ]
        wire.append(item)
    return cast("list[ChatCompletionMessageParam]", wire)
