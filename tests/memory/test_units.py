"""Unit tests of the memory modules: embedders, fact extraction, context assembly helpers, local recall."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from core.contracts.llm import ChatMessage, LlmRequest, LlmResponse, ModelConfig, ToolCall
from core.db.models import EMBEDDING_DIM
from core.llm.base import DeltaCallback
from core.llm.local import LocalProvider
from core.memory.context import (
    MEMORY_HEADER,
    SUMMARY_PREFIX,
    ExtractiveSummarizer,
    _cut_point,
    estimate_tokens,
    in_call_order,
    memory_block,
    message_tokens,
)
from core.memory.embedders import HashEmbedder
from core.memory.extraction import EXTRACTION_PROMPT, explicit_facts, extract_facts
from core.memory.store import MemoryHit


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


# --- HashEmbedder ---------------------------------------------------------------------------------


def test_hash_embedder_is_deterministic_across_instances() -> None:
    text = "I drive an old red Volkswagen"
    assert HashEmbedder().vector(text) == HashEmbedder().vector(text)


def test_hash_embedder_vectors_have_unit_norm_and_384_dims() -> None:
    assert EMBEDDING_DIM == 384
    for text in ["My home is in Lisbon", "x", "A much longer sentence about nurses, hospitals and night shifts."]:
        vector = HashEmbedder().vector(text)
        assert len(vector) == 384
        assert math.sqrt(_dot(vector, vector)) == pytest.approx(1.0)


def test_hash_embedder_identical_text_has_similarity_one() -> None:
    a, b = HashEmbedder().vector("I am allergic to nuts"), HashEmbedder().vector("I am allergic to nuts")
    assert _dot(a, b) == pytest.approx(1.0)


def test_hash_embedder_shared_words_score_higher_than_unrelated_text() -> None:
    embedder = HashEmbedder()
    query = embedder.vector("which guitar do I play")
    related = embedder.vector("I play the guitar in a jazz band")
    unrelated = embedder.vector("My mother lives near Porto")
    assert _dot(query, related) > _dot(query, unrelated) + 0.2


async def test_hash_embedder_embed_matches_vector_in_order() -> None:
    embedder = HashEmbedder()
    texts = ["first text", "second text", "third"]
    assert await embedder.embed(texts) == [embedder.vector(t) for t in texts]
    assert embedder.name == "hash"


# --- explicit_facts / extract_facts ---------------------------------------------------------------


def test_explicit_facts_remember_that() -> None:
    assert explicit_facts(["Please remember that my favourite colour is green."]) == ["My favourite colour is green"]


def test_explicit_facts_remember_that_with_my_is_yields_one_fact() -> None:
    facts = explicit_facts(["Remember that my car is a red Golf."])
    assert facts == ["My car is a red Golf"]


def test_explicit_facts_name() -> None:
    assert "My name is Ana" in explicit_facts(["my name is Ana"])


def test_explicit_facts_live_in_stops_at_comma() -> None:
    assert explicit_facts(["I live in Porto, near the river"]) == ["I live in Porto"]


def test_explicit_facts_removes_duplicates_case_insensitively_in_order() -> None:
    facts = explicit_facts(["My name is Ana. I live in Porto.", "my name is ana!", "I LIVE IN PORTO"])
    assert facts == ["My name is Ana", "I live in Porto"]


def test_explicit_facts_likes_and_possessions() -> None:
    facts = explicit_facts(["I love jazz. My dog is called Max."])
    assert facts == ["I love jazz", "My dog is called Max"]


@pytest.mark.parametrize(
    "chat", ["Hi! How are you today?", "Thanks, that's great.", "ok", "The weather is lovely, isn't it?", ""]
)
def test_explicit_facts_chit_chat_yields_nothing(chat: str) -> None:
    assert explicit_facts([chat]) == []


def test_explicit_facts_ignores_remember_used_as_a_question() -> None:
    assert explicit_facts(["Do you remember what I said?", "I can't remember the name of that film"]) == []


class FakeProvider:
    """A stand-in for a language model: answers every request with a fixed text and records the requests."""

    name = "fake"

    def __init__(self, content: str):
        self.content = content
        self.requests: list[LlmRequest] = []

    async def complete(self, request: LlmRequest, *, on_delta: DeltaCallback | None = None) -> LlmResponse:
        self.requests.append(request)
        return LlmResponse(content=self.content)


TURN = [
    ChatMessage("user", "Hi there. I live in Lisbon, by the sea."),
    ChatMessage("assistant", "Lovely city!"),
    ChatMessage("tool", "irrelevant tool output", tool_call_id="c1", name="search"),
]


async def test_extract_facts_with_local_provider_uses_rules() -> None:
    facts, method = await extract_facts(LocalProvider(), ModelConfig(), TURN)
    assert method == "rules"
    assert facts == ["I live in Lisbon"]


async def test_extract_facts_with_a_model_uses_its_json_answer() -> None:
    provider = FakeProvider('["The user lives in Lisbon."]')
    facts, method = await extract_facts(provider, ModelConfig(provider="fake", name="m"), TURN, api_key="k")
    assert (facts, method) == (["The user lives in Lisbon."], "model")
    [request] = provider.requests
    assert request.api_key == "k"
    assert request.tools == []
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.messages[0].content == EXTRACTION_PROMPT
    transcript = request.messages[1].content
    assert "user: Hi there. I live in Lisbon, by the sea." in transcript
    assert "assistant: Lovely city!" in transcript
    assert "irrelevant tool output" not in transcript


async def test_extract_facts_with_json_inside_prose_still_uses_the_model() -> None:
    provider = FakeProvider('Here you go: ["The user lives in Lisbon.", "  "] hope it helps')
    assert await extract_facts(provider, ModelConfig(), TURN) == (["The user lives in Lisbon."], "model")


@pytest.mark.parametrize("content", ["not json", "[not json]", '{"facts": 1}', ""])
async def test_extract_facts_falls_back_to_rules_when_the_answer_is_not_a_json_list(content: str) -> None:
    facts, method = await extract_facts(FakeProvider(content), ModelConfig(), TURN)
    assert (facts, method) == (["I live in Lisbon"], "rules")


# --- context: summarizer, cut point, memory block, token estimate ----------------------------------


def test_estimate_tokens() -> None:
    assert estimate_tokens("") == 1
    assert estimate_tokens("abc") == 1
    assert estimate_tokens("abcd") == 2
    assert estimate_tokens("x" * 400) == 101
    assert message_tokens(ChatMessage("user", "abcd")) == 2 + 4


async def test_summary_starts_with_prefix_and_counts_messages() -> None:
    messages = [ChatMessage("user", "My dog is called Max. He is five."), ChatMessage("assistant", "Nice! Noted.")]
    summary = await ExtractiveSummarizer().summarize(None, messages, 200)
    assert summary.startswith(f"{SUMMARY_PREFIX} (2 messages):")
    assert summary.splitlines()[1:] == ["user: My dog is called Max.", "assistant: Nice!"]


@pytest.mark.parametrize("max_tokens", [32, 50, 100, 400])
async def test_summary_stays_within_the_budget(max_tokens: int) -> None:
    messages = []
    for i in range(30):
        messages += [
            ChatMessage("user", f"Question number {i} is about something rather long and detailed. More text."),
            ChatMessage("assistant", f"Answer {i} " + "blah " * 40),
            ChatMessage("tool", "result " * 30, tool_call_id=f"c{i}", name="search"),
        ]
    previous = f"{SUMMARY_PREFIX} (10 messages):\n" + "user: an earlier fact.\n" * 50
    for prior in (None, previous):
        summary = await ExtractiveSummarizer().summarize(prior, messages, max_tokens)
        assert summary.startswith(SUMMARY_PREFIX)
        assert len(summary) <= max_tokens * 4


async def test_summary_drops_tool_lines_before_user_lines() -> None:
    messages = [
        ChatMessage("user", "I live in Lisbon."),
        ChatMessage("assistant", "", tool_calls=[ToolCall(id="c1", name="search", arguments={})]),
        ChatMessage("tool", "a long search result " * 10, tool_call_id="c1", name="search"),
        ChatMessage("user", "My cat is called Tom."),
        ChatMessage("tool", "another long result " * 10, tool_call_id="c2", name="search"),
    ]
    full = await ExtractiveSummarizer().summarize(None, messages, 1000)
    assert full.count("\ntool search:") == 2
    trimmed = await ExtractiveSummarizer().summarize(None, messages, 30)
    assert len(trimmed) <= 120
    assert "tool search" not in trimmed
    assert "user: I live in Lisbon." in trimmed
    assert "user: My cat is called Tom." in trimmed


async def test_summary_drops_oldest_user_lines_last_of_all() -> None:
    messages = [ChatMessage("user", f"Fact number {i} about me.") for i in range(10)]
    summary = await ExtractiveSummarizer().summarize(None, messages, 25)
    assert len(summary) <= 100
    assert "user: Fact number 9 about me." in summary
    assert "Fact number 0 " not in summary


async def test_summary_carries_over_the_previous_summary_body() -> None:
    previous = f"{SUMMARY_PREFIX} (4 messages):\nuser: I live in Lisbon."
    new = [ChatMessage("user", "My cat is Tom."), ChatMessage("assistant", "Hello Tom!")]
    summary = await ExtractiveSummarizer().summarize(previous, new, 200)
    assert summary.splitlines() == [
        f"{SUMMARY_PREFIX} (2 messages):",
        "user: I live in Lisbon.",
        "user: My cat is Tom.",
        "assistant: Hello Tom!",
    ]


async def test_summary_keeps_new_user_line_when_previous_summary_is_long() -> None:
    previous = f"{SUMMARY_PREFIX} (40 messages):\n" + "\n".join(f"user: old fact number {i}." for i in range(60))
    summary = await ExtractiveSummarizer().summarize(previous, [ChatMessage("user", "My dog is called Max.")], 100)
    assert len(summary) <= 400
    assert "user: My dog is called Max." in summary


def _conversation() -> list[ChatMessage]:
    return [
        ChatMessage("user", "What is 2 + 2? Please compute it for me carefully."),
        ChatMessage("assistant", "", tool_calls=[ToolCall(id="c1", name="calculator", arguments={"e": "2+2"})]),
        ChatMessage("tool", "4", tool_call_id="c1", name="calculator"),
        ChatMessage("assistant", "It is 4."),
        ChatMessage("user", "And the time? I need it for my notes."),
        ChatMessage("assistant", "", tool_calls=[ToolCall(id="c2", name="current_time", arguments={})]),
        ChatMessage("tool", "12:00 " * 20, tool_call_id="c2", name="current_time"),
        ChatMessage("assistant", "It is noon."),
        ChatMessage("user", "Thanks!"),
        ChatMessage("assistant", "You're welcome."),
    ]


def test_cut_point_is_the_earliest_user_message_whose_tail_fits() -> None:
    messages = _conversation()
    sizes = [message_tokens(m) for m in messages]
    assert _cut_point(messages, sizes, sum(sizes)) == 0
    assert _cut_point(messages, sizes, sum(sizes[4:])) == 4
    assert _cut_point(messages, sizes, sum(sizes[4:]) - 1) == 8
    assert _cut_point(messages, sizes, 0) == 8  # nothing fits: keep the latest turn whole


def test_cut_point_never_separates_a_tool_call_from_its_result() -> None:
    messages = _conversation()
    sizes = [message_tokens(m) for m in messages]
    caller = {c.id: i for i, m in enumerate(messages) for c in m.tool_calls}
    results = {i: caller[m.tool_call_id] for i, m in enumerate(messages) if m.role == "tool" and m.tool_call_id}
    assert len(results) == 2
    cuts = set()
    for keep in range(sum(sizes) + 2):
        cut = _cut_point(messages, sizes, keep)
        cuts.add(cut)
        assert messages[cut].role == "user"
        for result, call in results.items():
            assert (result < cut) == (call < cut), (keep, cut)
    assert cuts == {0, 4, 8}


def test_cut_point_without_user_messages_is_zero() -> None:
    messages = [ChatMessage("assistant", "hello"), ChatMessage("assistant", "again")]
    assert _cut_point(messages, [10, 10], 0) == 0


def _hit(i: int, text: str) -> MemoryHit:
    return MemoryHit(id=f"m{i}", subject="s", text=text, score=0.9, metadata={}, created_at=datetime.now(UTC))


HITS = [_hit(1, "I live in Lisbon"), _hit(2, "My favourite colour is green"), _hit(3, "I am allergic to nuts")]


def test_memory_block_with_room_for_all_hits() -> None:
    block, used = memory_block(HITS, 1000)
    assert used == ["m1", "m2", "m3"]
    assert block is not None
    assert block.splitlines() == [
        MEMORY_HEADER,
        "- I live in Lisbon",
        "- My favourite colour is green",
        "- I am allergic to nuts",
    ]


def test_memory_block_respects_the_token_cap() -> None:
    cost = [estimate_tokens(MEMORY_HEADER)] + [estimate_tokens(f"- {h.text}") for h in HITS]
    cap = sum(cost[:3])  # header and the first two hits exactly
    block, used = memory_block(HITS, cap)
    assert used == ["m1", "m2"]
    assert block is not None
    assert "allergic" not in block
    assert estimate_tokens(block) <= cap
    assert memory_block(HITS, cap - 1)[1] == ["m1"]


def test_memory_block_stops_at_the_first_hit_that_does_not_fit() -> None:
    hits = [_hit(1, "short"), _hit(2, "long " * 100), _hit(3, "tiny")]
    block, used = memory_block(hits, 50)
    assert used == ["m1"]
    assert block == f"{MEMORY_HEADER}\n- short"


def test_memory_block_is_none_without_hits_or_room() -> None:
    assert memory_block([], 1000) == (None, [])
    assert memory_block(HITS, estimate_tokens(MEMORY_HEADER)) == (None, [])


# --- local provider recall ------------------------------------------------------------------------

MEMORY_SYSTEM = ChatMessage("system", f"{MEMORY_HEADER}\n- My favourite colour is green\n- I live in Lisbon")


async def _answer(question: str, *, memories: bool = True) -> str:
    messages = ([MEMORY_SYSTEM] if memories else []) + [ChatMessage("user", question)]
    response = await LocalProvider().complete(LlmRequest(model=ModelConfig(), messages=messages))
    assert response.tool_calls == []
    return response.content


async def test_local_answers_a_question_from_the_best_memory() -> None:
    assert await _answer("What is my favourite colour?") == "From memory: My favourite colour is green"
    assert await _answer("Where do I live?") == "From memory: I live in Lisbon"


async def test_local_echoes_a_statement_even_with_memories() -> None:
    assert await _answer("I had a lovely favourite colour day") == "You said: I had a lovely favourite colour day"


async def test_local_echoes_a_question_no_memory_overlaps() -> None:
    assert await _answer("What time does the train leave?") == "You said: What time does the train leave?"


async def test_local_echoes_a_question_without_a_memory_block() -> None:
    assert await _answer("What is my favourite colour?", memories=False) == "You said: What is my favourite colour?"


async def test_hash_embedder_gives_unit_vectors_for_stop_words_and_punctuation() -> None:
    embedder = HashEmbedder()
    for text in ("what is it?", "?", ""):
        [vector] = await embedder.embed([text])
        assert abs(sum(v * v for v in vector) - 1.0) < 1e-9, text


def test_tool_results_read_in_the_order_of_their_calls() -> None:
    calls = [ToolCall(id=f"c{i}", name="calculator", arguments={}) for i in range(3)]
    thread = [
        ChatMessage(role="user", content="three sums"),
        ChatMessage(role="assistant", tool_calls=calls),
        ChatMessage(role="tool", content="third", tool_call_id="c2"),
        ChatMessage(role="tool", content="first", tool_call_id="c0"),
        ChatMessage(role="tool", content="second", tool_call_id="c1"),
        ChatMessage(role="assistant", content="done"),
        ChatMessage(role="tool", content="stray", tool_call_id="c9"),
    ]
    ordered = in_call_order(thread)
    assert [m.content for m in ordered] == ["three sums", "", "first", "second", "third", "done", "stray"]
    assert [m.content for m in thread][2] == "third"  # the input is left as it was
