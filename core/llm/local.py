"""The ``local`` provider: a deterministic offline stand-in for a language model.

It is *not* a language model. It follows fixed rules so that demos, tests and
benchmarks exercise the whole agent loop (tool calls, tool results, token
accounting) without a network or model weights:

* the latest user message contains arithmetic and ``calculator`` is offered
  → it calls ``calculator`` once per expression (up to three in one step, or
  ``model.params.max_calls``); spoken operators between numbers count (``6 times 7``,
  ``2 plus 3``, ``9 minus 4``, ``12 divided by 4``: what speech to text writes);
* it asks for the time or date and ``current_time`` is offered → it calls it;
* it says ``use <tool> [with key=value ...]`` for an offered tool → it calls that tool
  with those (string) arguments;
* after tool results → it answers with them;
* it asks a question and the prompt holds recalled memories → it answers with the
  memory sharing the most words with the question (``"From memory: <memory>"``);
* otherwise → it answers ``"You said: <message>"``.

``model.params.latency_ms`` adds a fixed delay per call (to simulate a slow model).
Its usage is priced by the model's name like the other providers' (``core.llm.pricing``):
the default ``local-echo`` is free; an agent whose local model is named ``gpt-4o-mini``
costs what those tokens would (for tests and demos of budgets and cost reports).
"""

from __future__ import annotations

import asyncio
import re

from core.contracts.llm import ChatMessage, LlmRequest, LlmResponse, ToolCall, Usage
from core.llm.base import DeltaCallback
from core.llm.pricing import PriceTable
from core.llm.tokens import count_tokens
from core.memory.context import MEMORY_HEADER

_ARITHMETIC = re.compile(r"[-+(]*\d[\d.\s]*(?:[-+*/%^]+[\s(]*[-+]?\d[\d.\s]*\)*)+")
_TIME_WORDS = re.compile(r"\b(time|date|today|clock)\b", re.IGNORECASE)
MAX_CALLS = 3
_SPOKEN = (
    (re.compile(r"(?<=\d)\s+(?:times|multiplied by)\s+(?=[-(]*\d)", re.IGNORECASE), " * "),
    (re.compile(r"(?<=\d)\s+plus\s+(?=[-(]*\d)", re.IGNORECASE), " + "),
    (re.compile(r"(?<=\d)\s+minus\s+(?=[-(]*\d)", re.IGNORECASE), " - "),
    (re.compile(r"(?<=\d)\s+(?:divided by|over)\s+(?=[-(]*\d)", re.IGNORECASE), " / "),
)
"""Operators spoken between two numbers, as symbols."""
_USE_TOOL = re.compile(r"\buse (\w+)(?: with (.*))?", re.IGNORECASE)
_ARGUMENT = re.compile(r"(\w+)=(\S+)")
_WORD = re.compile(r"[a-z0-9]+")
_QUESTION = re.compile(r"\?\s*$|^\s*(what|where|who|when|which|how|do|does|did|is|am|are|can)\b", re.IGNORECASE)
_FILLER_WORDS = "a an the is are am was do does did i me my you your what where who when which how of in to"
_FILLER = frozenset(_FILLER_WORDS.split())


class LocalProvider:
    """Rule-based offline provider; see the module docstring for its rules."""

    name = "local"

    def __init__(self, prices: PriceTable | None = None):
        self._prices = prices or PriceTable()

    async def complete(self, request: LlmRequest, *, on_delta: DeltaCallback | None = None) -> LlmResponse:
        """Answer by the fixed rules, with token counts of the prompt and reply; streams the answer by word."""
        latency_ms = float(request.model.params.get("latency_ms", 0) or 0)
        if latency_ms > 0:
            await asyncio.sleep(latency_ms / 1000)
        response = self._decide(request)
        prompt = " ".join(m.content for m in request.messages)
        if on_delta is not None and response.content:
            for index, word in enumerate(response.content.split(" ")):
                await on_delta(word if index == 0 else " " + word)
        response.usage = Usage(
            input_tokens=count_tokens(prompt),
            output_tokens=count_tokens(response.content)
            + sum(count_tokens(str(c.arguments)) for c in response.tool_calls),
        )
        response.usage.cost_usd = self._prices.cost_usd(request.model.name, response.usage)
        return response

    def _decide(self, request: LlmRequest) -> LlmResponse:
        offered = {t.name for t in request.tools}
        turn = _current_turn(request.messages)
        results = [m for m in turn if m.role == "tool"]
        if results:
            summary = "; ".join(f"{m.name}: {m.content}" for m in results)
            return LlmResponse(content=f"Result — {summary}")
        question = next((m.content for m in reversed(turn) if m.role == "user"), "")
        calls: list[ToolCall] = []
        if "calculator" in offered:
            for match in list(_ARITHMETIC.finditer(_symbols(question)))[: _max_calls(request)]:
                expression = match.group(0).strip().replace("^", "**")
                calls.append(
                    ToolCall(
                        id=f"call_{len(turn)}_{len(calls)}", name="calculator", arguments={"expression": expression}
                    )
                )
        if _TIME_WORDS.search(question) and "current_time" in offered:
            calls.append(ToolCall(id=f"call_{len(turn)}_{len(calls)}", name="current_time", arguments={}))
        named = _USE_TOOL.search(question)
        if named and named.group(1) in offered and not calls:
            arguments = dict(_ARGUMENT.findall(named.group(2) or ""))
            calls.append(ToolCall(id=f"call_{len(turn)}_0", name=named.group(1), arguments=arguments))
        if calls:
            return LlmResponse(tool_calls=calls, finish_reason="tool_calls")
        recalled = _best_memory(question, request.messages) if _QUESTION.search(question) else None
        if recalled:
            return LlmResponse(content=f"From memory: {recalled}")
        return LlmResponse(content=f"You said: {question}")


def _symbols(text: str) -> str:
    """``text`` with the operators spoken between two numbers written as symbols."""
    for spoken, symbol in _SPOKEN:
        text = spoken.sub(symbol, text)
    return text


def _max_calls(request: LlmRequest) -> int:
    value = request.model.params.get("max_calls")
    return value if isinstance(value, int) and 0 < value <= 64 else MAX_CALLS


def _words(text: str) -> set[str]:
    return {w.rstrip("s") for w in _WORD.findall(text.lower()) if w not in _FILLER}


def _best_memory(question: str, messages: list[ChatMessage]) -> str | None:
    """The recalled memory sharing the most words with ``question``, if any shares one."""
    block = next((m.content for m in messages if m.role == "system" and m.content.startswith(MEMORY_HEADER)), "")
    memories = [line[2:] for line in block.splitlines()[1:] if line.startswith("- ")]
    wanted = _words(question)
    scored = [(len(wanted & _words(memory)), -index, memory) for index, memory in enumerate(memories)]
    best = max(scored, default=None)
    return best[2] if best is not None and best[0] > 0 else None


def _current_turn(messages: list[ChatMessage]) -> list[ChatMessage]:
    """Messages after (and including) the latest user message."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return messages[index:]
    return []
