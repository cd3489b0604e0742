"""Salient facts from a conversation turn, to be remembered about its subject.

With a real model the agent's model is asked for the facts (JSON list). With
``local`` — which is not a model — only explicit statements are taken:
"remember that …", "my name is …", "I live in …", "my <thing> is …",
"I like/love/prefer/hate …".
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from core.contracts.llm import ChatMessage, LlmRequest, ModelConfig
from core.llm.base import LlmProvider, ProviderError
from core.memory.context import SUMMARY_PREFIX, ExtractiveSummarizer

MAX_FACTS = 10
MAX_FACT_CHARS = 500

_RULES = [
    # a request to remember ("remember that …", "please remember …"), not "do you remember …"
    re.compile(r"(?:^|[.!?]\s+|\bplease\s+)remember(?: that)?\s+(?P<fact>[^.!?\n]+)", re.IGNORECASE),
    re.compile(r"\b(?P<fact>my name is [^.!?,\n]+)", re.IGNORECASE),
    re.compile(r"\b(?P<fact>i live in [^.!?,\n]+)", re.IGNORECASE),
    re.compile(r"\b(?P<fact>i (?:like|love|prefer|hate|work at|work as|am allergic to) [^.!?\n]+)", re.IGNORECASE),
    re.compile(r"\b(?P<fact>my (?!name\b)[\w' -]{2,40}? (?:is|are) [^.!?\n]+)", re.IGNORECASE),
]

EXTRACTION_PROMPT = (
    "Extract durable facts about the user from the conversation below: preferences, personal details, "
    "decisions, things they asked you to remember. Skip small talk and anything only true for this task. "
    'Answer with a JSON array of short standalone sentences (e.g. ["The user lives in Lisbon."]), '
    "or [] if there is nothing worth remembering."
)


def explicit_facts(texts: Sequence[str]) -> list[str]:
    """Facts stated explicitly in ``texts``, deduplicated, in order of appearance."""
    facts: list[str] = []
    seen: set[str] = set()
    for text in texts:
        spans: list[tuple[int, int]] = []
        for rule in _RULES:
            for match in rule.finditer(text):
                start, end = match.span("fact")
                if any(s <= start < e for s, e in spans):  # already inside a longer fact ("remember that my …")
                    continue
                spans.append((start, end))
                fact = match.group("fact").strip().rstrip(",;:")[:MAX_FACT_CHARS]
                fact = fact[0].upper() + fact[1:] if fact else fact
                if fact and fact.lower() not in seen:
                    seen.add(fact.lower())
                    facts.append(fact)
    return facts[:MAX_FACTS]


def _parse_facts(content: str) -> list[str] | None:
    start, end = content.find("["), content.rfind("]")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(content[start : end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(value, list):
        return None
    return [str(v).strip()[:MAX_FACT_CHARS] for v in value if str(v).strip()][:MAX_FACTS]


async def extract_facts(
    provider: LlmProvider, model: ModelConfig, messages: Sequence[ChatMessage], *, api_key: str | None = None
) -> tuple[list[str], str]:
    """Facts from the turn's ``messages`` and how they were found (``model`` or ``rules``).

    The explicit-statement rules are used with ``local`` and whenever the model's
    answer is not a JSON list, so a confused model never loses an explicit request.
    """
    users = [m.content for m in messages if m.role == "user"]
    if provider.name == "local":
        return explicit_facts(users), "rules"
    transcript = "\n".join(f"{m.role}: {m.content}" for m in messages if m.role in ("user", "assistant") and m.content)
    request = LlmRequest(
        model=model,
        messages=[ChatMessage(role="system", content=EXTRACTION_PROMPT), ChatMessage(role="user", content=transcript)],
        tools=[],
        api_key=api_key,
    )
    response = await provider.complete(request)
    facts = _parse_facts(response.content)
    if facts is None:
        return explicit_facts(users), "rules"
    return facts, "model"


SUMMARY_PROMPT = (
    "Summarise the conversation below for your own future reference: keep facts about the user, decisions, "
    "open questions and results of tool calls; drop pleasantries. Answer with the summary only, at most "
    "{words} words."
)


class ModelSummarizer:
    """Compaction summaries written by the agent's own model; extractive when the model fails."""

    method = "model"

    def __init__(self, provider: LlmProvider, model: ModelConfig, *, api_key: str | None = None):
        self._provider = provider
        self._model = model
        self._api_key = api_key

    async def summarize(self, previous: str | None, messages: Sequence[ChatMessage], max_tokens: int) -> str:
        """A model-written summary of ``previous`` + ``messages``."""
        transcript = "\n".join(
            f"{m.role}{' ' + m.name if m.name else ''}: {m.content}" for m in messages if m.content.strip()
        )
        if previous:
            transcript = f"(earlier) {previous}\n{transcript}"
        request = LlmRequest(
            model=self._model,
            messages=[
                ChatMessage(role="system", content=SUMMARY_PROMPT.format(words=max(20, max_tokens * 3 // 4))),
                ChatMessage(role="user", content=transcript[: max_tokens * 40]),
            ],
            api_key=self._api_key,
        )
        try:
            response = await self._provider.complete(request)
        except ProviderError:
            return await ExtractiveSummarizer().summarize(previous, messages, max_tokens)
        return f"{SUMMARY_PREFIX} ({len(messages)} messages):\n{response.content.strip()}"
