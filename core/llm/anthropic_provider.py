"""The ``anthropic`` provider: the Messages API over the official ``anthropic`` SDK, always streamed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

import anthropic
from anthropic.types import (
    InputJSONDelta,
    MessageParam,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStreamEvent,
    TextBlock,
    TextDelta,
    ToolParam,
    ToolUseBlock,
)

from core.contracts.llm import ChatMessage, LlmRequest, LlmResponse, ToolCall, Usage
from core.llm import errors
from core.llm.base import DeltaCallback, ProviderError
from core.llm.clients import ClientCache
from core.llm.pricing import PriceTable, estimate_usage

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MAX_TOKENS = 1024

PASSTHROUGH_PARAMS = frozenset({"temperature", "top_p", "top_k", "stop_sequences", "metadata", "service_tier"})
"""``ModelConfig.params`` sent to the API as they are (``max_tokens`` always is); others are ignored."""

TOOL_PARAMS = frozenset({"tool_choice"})
"""Params sent only when tools are offered."""

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
}
"""Anthropic ``stop_reason`` → provider-neutral ``finish_reason`` (others pass through)."""


class AnthropicProvider:
    """Messages API provider with streaming and tool use.

    System messages become the ``system`` parameter; assistant tool calls become
    ``tool_use`` blocks and tool results ``tool_result`` blocks in a user message
    (consecutive results share one message). Malformed tool input JSON gives
    ``arguments={"__invalid_json__": "<raw text>"}`` instead of an error, so the
    agent loop can tell the model. ``stop_reason == "refusal"`` raises a
    non-retryable ``ProviderError``; other failures are classified by
    ``core.llm.errors``. A ``json_schema`` ``response_format`` maps to
    ``output_config.format``; ``json_object`` has no equivalent and is ignored.

    ``model.params["max_tokens"]`` defaults to 1024; ``model.params["timeout_s"]``
    overrides the provider's timeout per agent.
    """

    name = "anthropic"

    def __init__(self, *, prices: PriceTable | None = None, timeout_s: float = 120.0):
        """Create the provider.

        Args:
            prices: Prices for ``Usage.cost_usd``; list prices when ``None``.
            timeout_s: Connect and per-read timeout of each request, in seconds.
        """
        self._prices = prices or PriceTable()
        self._timeout_s = timeout_s
        self._clients: ClientCache[anthropic.AsyncAnthropic] = ClientCache(
            lambda base_url, api_key: anthropic.AsyncAnthropic(
                api_key=api_key, base_url=base_url, max_retries=0, timeout=self._timeout_s
            )
        )

    async def complete(self, request: LlmRequest, *, on_delta: DeltaCallback | None = None) -> LlmResponse:
        """Stream a message for ``request``; text deltas go to ``on_delta``.

        Raises:
            ProviderError: On HTTP, connection, timeout failures and refusals.
        """
        base_url = request.model.base_url or DEFAULT_BASE_URL
        client = self._client(base_url, request.api_key or "unused")
        system, messages = _wire_messages(request.messages)
        tools: list[ToolParam] = [
            {"name": t.name, "description": t.description, "input_schema": _schema(t.parameters)} for t in request.tools
        ]
        params = request.model.params
        body = _passthrough(params, with_tools=bool(tools))
        if request.response_format and request.response_format.get("type") == "json_schema":
            schema = request.response_format.get("json_schema", {}).get("schema", {})
            body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        stream = _Accumulator()
        try:
            events = await client.messages.create(
                model=request.model.name,
                max_tokens=int(params.get("max_tokens") or DEFAULT_MAX_TOKENS),
                messages=messages,
                system=system or anthropic.omit,
                tools=tools or anthropic.omit,
                stream=True,
                extra_body=body or None,
                timeout=float(params.get("timeout_s") or self._timeout_s),
            )
            async with events:
                async for event in events:
                    delta = stream.add(event)
                    if delta and on_delta is not None:
                        await on_delta(delta)
        except anthropic.APIStatusError as exc:
            status = exc.status_code if exc.status_code >= 400 else errors.implied_status(exc.type)
            raise errors.status_error(
                self.name, status, body=exc.body, headers=exc.response.headers, secrets=[request.api_key]
            ) from None
        except anthropic.APIConnectionError as exc:
            timed_out = isinstance(exc, anthropic.APITimeoutError)
            raise errors.connection_error(self.name, base_url, timed_out=timed_out) from None
        except anthropic.APIError as exc:
            raise errors.status_error(self.name, 500, body=exc.body, secrets=[request.api_key]) from None
        except json.JSONDecodeError as exc:
            raise errors.malformed_error(self.name, f"undecodable stream event ({exc.msg})") from None
        return self._response(request, stream)

    async def aclose(self) -> None:
        """Close the cached HTTP clients."""
        await self._clients.aclose()

    def _client(self, base_url: str, api_key: str) -> anthropic.AsyncAnthropic:
        return self._clients.get(base_url, api_key)

    def _response(self, request: LlmRequest, stream: _Accumulator) -> LlmResponse:
        if stream.stop_reason == "refusal":
            raise errors.refusal_error(self.name, stream.refusal_detail)
        if stream.stop_reason is None:
            message = f"{self.name} ended the stream without a stop_reason"
            raise ProviderError(message, provider=self.name, retryable=True)
        calls = [ToolCall(id=b.id, name=b.name, arguments=b.arguments()) for b in stream.tool_blocks()]
        content = "".join(b.text for b in stream.blocks.values() if b.kind == "text")
        if stream.saw_usage:
            usage = Usage(input_tokens=stream.input_tokens, output_tokens=stream.output_tokens)
        else:
            usage = estimate_usage(request, content + "".join(b.text for b in stream.tool_blocks()))
        usage.cost_usd = self._prices.cost_usd(request.model.name, usage)
        finish = FINISH_REASONS.get(stream.stop_reason, stream.stop_reason)
        if calls:
            finish = "tool_calls"
        return LlmResponse(content=content, tool_calls=calls, usage=usage, finish_reason=finish)


@dataclass
class _Block:
    kind: str
    id: str = ""
    name: str = ""
    text: str = ""
    start: dict[str, Any] = field(default_factory=dict)

    def arguments(self) -> dict[str, Any]:
        """The streamed JSON input, else the input given at block start."""
        return errors.parse_tool_arguments(self.text) if self.text else self.start


@dataclass
class _Accumulator:
    """Folds Messages stream events into one answer."""

    blocks: dict[int, _Block] = field(default_factory=dict)
    stop_reason: str | None = None
    refusal_detail: str = ""
    saw_usage: bool = False
    input_tokens: int = 0
    output_tokens: int = 0

    def add(self, event: RawMessageStreamEvent) -> str:
        """Fold ``event`` in; returns its text delta ("" if none)."""
        if isinstance(event, RawMessageStartEvent):
            self._usage(getattr(event.message, "usage", None))
        elif isinstance(event, RawContentBlockStartEvent):
            block = event.content_block
            if isinstance(block, ToolUseBlock):
                start = dict(block.input) if isinstance(block.input, dict) else {}
                self.blocks[event.index] = _Block("tool_use", id=block.id, name=block.name, start=start)
            elif isinstance(block, TextBlock):
                self.blocks[event.index] = _Block("text", text=block.text)
                return block.text
            else:
                self.blocks[event.index] = _Block(block.type)
        elif isinstance(event, RawContentBlockDeltaEvent):
            return self._delta(event)
        elif isinstance(event, RawMessageDeltaEvent):
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            details = event.delta.stop_details
            if details is not None:
                self.refusal_detail = "; ".join(filter(None, [details.category, details.explanation]))
            self._usage(getattr(event, "usage", None))
        return ""

    def tool_blocks(self) -> list[_Block]:
        return [b for b in self.blocks.values() if b.kind == "tool_use"]

    def _delta(self, event: RawContentBlockDeltaEvent) -> str:
        block = self.blocks.setdefault(event.index, _Block("text"))
        delta = event.delta
        if isinstance(delta, TextDelta) and block.kind == "text":
            block.text += delta.text
            return delta.text
        if isinstance(delta, InputJSONDelta) and block.kind == "tool_use":
            block.text += delta.partial_json
        return ""

    def _usage(self, usage: Any) -> None:
        if usage is None:
            return
        self.saw_usage = True
        if getattr(usage, "input_tokens", None) is not None:
            cached = (usage.cache_creation_input_tokens or 0) + (usage.cache_read_input_tokens or 0)
            self.input_tokens = usage.input_tokens + cached
        if getattr(usage, "output_tokens", None) is not None:
            self.output_tokens = usage.output_tokens


def _passthrough(params: dict[str, Any], *, with_tools: bool) -> dict[str, Any]:
    body = {k: v for k, v in params.items() if k in PASSTHROUGH_PARAMS or (with_tools and k in TOOL_PARAMS)}
    stop = params.get("stop")
    if stop and "stop_sequences" not in body:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    return body


def _schema(parameters: dict[str, Any]) -> dict[str, Any]:
    return parameters or {"type": "object", "properties": {}}


def _wire_messages(messages: list[ChatMessage]) -> tuple[str, list[MessageParam]]:
    """``system`` text and the alternating user/assistant messages of ``messages``."""
    system: list[str] = []
    wire: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            system.append(m.content)
            continue
        role, blocks = _blocks(m)
        if not blocks:
            continue
        if wire and wire[-1]["role"] == role:
            wire[-1]["content"].extend(blocks)  # the API wants alternating roles
        else:
            wire.append({"role": role, "content": blocks})
    return "\n\n".join(s for s in system if s), cast("list[MessageParam]", wire)


def _blocks(m: ChatMessage) -> tuple[str, list[dict[str, Any]]]:
    if m.role == "tool":
        if not m.tool_call_id:
            raise ProviderError("anthropic: a tool message has no tool_call_id", provider="anthropic", retryable=False)
        return "user", [{"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
    if m.role == "assistant":
        blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in m.tool_calls]
    return ("assistant" if m.role == "assistant" else "user"), blocks
