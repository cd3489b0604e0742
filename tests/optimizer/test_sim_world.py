"""The simulated world: the Chat Completions wire, determinism, hidden effects, A/A, judge and reflection roles."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from core.contracts.llm import ChatMessage, LlmRequest, ModelConfig
from core.llm.openai_provider import OpenAIProvider
from core.optimizer.metrics import METRIC, judge_prompt, parse_judge_answer
from simulated.scripted_server import ScriptedServer
from simulated.world import PHRASES, SLICES, Demo, Prompt, SimWorld, hidden_quality, question_bank, solve

SEED = 7
HELPS = "Think step by step. Double-check your answer."
HURTS = "Be creative."


@pytest.fixture
def world() -> SimWorld:
    return SimWorld(seed=SEED)


def body(instructions: str, question: str, *, model: str = "sim-base", demos: Sequence[Demo] = ()) -> dict[str, Any]:
    messages = [{"role": "system", "content": instructions}] if instructions else []
    for demo_input, demo_output in demos:
        messages += [{"role": "user", "content": demo_input}, {"role": "assistant", "content": demo_output}]
    return {"model": model, "messages": [*messages, {"role": "user", "content": question}]}


async def accuracy(url: str, instructions: str, examples: list[dict[str, str]], **kw: Any) -> float:
    """The share of ``examples`` the server answers right, asked over HTTP (20 at a time)."""
    limit = asyncio.Semaphore(20)
    async with httpx.AsyncClient(base_url=f"{url}/v1", timeout=30) as client:

        async def right(example: dict[str, str]) -> bool:
            async with limit:
                sent = await client.post("/chat/completions", json=body(instructions, example["input"], **kw))
            return bool(sent.json()["choices"][0]["message"]["content"] == example["expected"])

        results = await asyncio.gather(*(right(e) for e in examples))
    return sum(results) / len(results)


def test_question_bank_is_seeded_balanced_and_solvable() -> None:
    bank = question_bank(SEED, 210)
    assert bank == question_bank(SEED, 210)
    assert bank != question_bank(SEED + 1, 210)
    assert [e["slice"] for e in bank[:6]] == ["math", "geo", "words", "math", "geo", "words"]
    assert all(e["input"].startswith(f"[{e['slice']}] ") for e in bank)
    assert all(solve(e["input"]) == (e["slice"], e["expected"]) for e in bank)
    assert len({e["input"] for e in bank}) == len(bank), "no repeats while a slice's pool lasts"


async def test_answers_the_chat_completions_wire(server: ScriptedServer) -> None:
    question = question_bank(SEED, 1)[0]["input"]
    async with httpx.AsyncClient(base_url=f"{server.url}/v1", timeout=10) as client:
        whole = await client.post("/chat/completions", json=body(HELPS, question))
        async with client.stream(
            "POST",
            "/chat/completions",
            json=body(HELPS, question) | {"stream": True, "stream_options": {"include_usage": True}},
        ) as streamed:
            frames = [line.removeprefix("data: ") async for line in streamed.aiter_lines() if line.startswith("data:")]
        missing = await client.post("/chat/completions", json={"messages": []})
        elsewhere = await client.post("/embeddings", json={"model": "m", "input": "x"})

    assert whole.status_code == 200
    completion = whole.json()
    assert completion["object"] == "chat.completion"
    assert completion["model"] == "sim-base"
    assert completion["choices"][0]["message"]["role"] == "assistant"
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert completion["usage"]["total_tokens"] == (
        completion["usage"]["prompt_tokens"] + completion["usage"]["completion_tokens"]
    )
    assert streamed.headers["content-type"] == "text/event-stream"
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == completion["choices"][0]["message"]["content"], "streamed and whole answers agree"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == completion["usage"]
    assert (missing.status_code, missing.json()["error"]["type"]) == (400, "invalid_request_error")
    assert elsewhere.status_code == 404


async def test_the_openai_provider_talks_to_it_end_to_end(world: SimWorld, server: ScriptedServer) -> None:
    example = question_bank(SEED, 1)[0]
    provider = OpenAIProvider(timeout_s=10)
    try:
        response = await provider.complete(
            LlmRequest(
                model=ModelConfig(provider="openai", name="sim-large", base_url=f"{server.url}/v1"),
                messages=[ChatMessage("system", HELPS), ChatMessage("user", example["input"])],
                api_key="sk-sim",
            )
        )
    finally:
        await provider.aclose()
    assert response.content == world.answer(body(HELPS, example["input"], model="sim-large"))
    assert response.finish_reason == "stop"
    assert response.usage.input_tokens > 0
    sent = server.received[-1]
    assert (sent.path, sent.body["stream"], sent.headers["authorization"]) == (
        "/v1/chat/completions",
        True,
        "Bearer sk-sim",
    )


def test_same_seed_same_answers_other_seed_other_answers() -> None:
    bank = question_bank(SEED, 60)

    def answers(world: SimWorld, **extra: Any) -> list[str]:
        return [world.answer(body("You are an expert.", e["input"]) | extra) for e in bank]

    first = answers(SimWorld(seed=SEED))
    assert first == answers(SimWorld(seed=SEED))
    assert first != answers(SimWorld(seed=SEED + 1))
    assert first != answers(SimWorld(seed=SEED), seed=123), "a request seed draws again"
    assert answers(SimWorld(seed=SEED), seed=123) == answers(SimWorld(seed=SEED), seed=123)


def test_resample_draws_again_for_each_attempt_reproducibly() -> None:
    question = question_bank(SEED, 1)[0]["input"]

    def attempts() -> list[str]:
        world = SimWorld(seed=SEED, resample=True)
        return [world.answer(body("", question)) for _ in range(30)]

    assert attempts() == attempts()
    assert len(set(attempts())) > 1


def test_wrong_answers_are_plausible() -> None:
    world = SimWorld(seed=SEED)
    bank = question_bank(SEED, 300)
    wrong = [(e, a) for e in bank if (a := world.answer(body(HURTS, e["input"]))) != e["expected"]]
    assert len(wrong) > 100
    for example, answer in wrong:
        if example["slice"] == "math":
            assert 0 < abs(int(answer) - int(example["expected"])) < 10
        elif example["slice"] == "words":
            assert sorted(answer) == sorted(example["expected"])
        else:
            assert answer.isalpha()
            assert answer[0].isupper()


async def test_a_helping_feature_raises_measured_accuracy_and_a_hurting_one_lowers_it(server: ScriptedServer) -> None:
    bank = question_bank(SEED, 210)
    plain = await accuracy(server.url, "", bank)
    helped = await accuracy(server.url, HELPS, bank)
    hurt = await accuracy(server.url, HURTS, bank)
    # Hidden: 0.49 plain, 0.71 helped, 0.31 hurt; 210 draws each, so a standard error near 0.035.
    assert helped - plain > 0.08
    assert plain - hurt > 0.05
    for instructions, measured in (("", plain), (HELPS, helped), (HURTS, hurt)):
        assert abs(measured - hidden_quality(instructions)) < 0.12


def test_effects_differ_by_slice_and_interact() -> None:
    def gain(instructions: str, slice: str, base: str = "") -> float:
        return hidden_quality(instructions, slice=slice) - hidden_quality(base, slice=slice)

    one_word = PHRASES["one_word"]
    assert gain(one_word, "geo") > 0.15
    assert gain(one_word, "math") < -0.1
    assert gain(PHRASES["double_check"], "math") < 0, "alone it hurts"
    step = PHRASES["step_by_step"]
    assert gain(f"{step} {PHRASES['double_check']}", "math", base=step) > 0.05, "after step by step it helps"
    assert hidden_quality(f"{step} {one_word}", slice="math") < hidden_quality(step, slice="math") - 0.2


def test_demos_and_models_move_hidden_quality() -> None:
    bank = question_bank(SEED + 1, 6)
    right = [(e["input"], e["expected"]) for e in bank]
    wrong = [(e["input"], e["expected"] + "x") for e in bank]
    assert hidden_quality("", right) > hidden_quality("") + 0.1
    assert hidden_quality("", wrong) < hidden_quality("") - 0.1
    assert hidden_quality("", right * 4) < hidden_quality("", right), "too many demos dilute"
    written = "Answer like these.\n" + "\n".join(f"Input: {q}\nOutput: {a}" for q, a in right)
    assert Prompt(written).all_demos() == tuple(right)
    assert hidden_quality(written) == pytest.approx(hidden_quality("Answer like these.", right))
    assert hidden_quality("", model="sim-large") > hidden_quality("") > hidden_quality("", model="sim-small")


def test_demos_sent_as_messages_raise_accuracy() -> None:
    world = SimWorld(seed=SEED)
    bank = question_bank(SEED, 210)
    demos = [(e["input"], e["expected"]) for e in question_bank(SEED + 1, 6)]
    plain = sum(world.answer(body("", e["input"])) == e["expected"] for e in bank)
    shown = sum(world.answer(body("", e["input"], demos=demos)) == e["expected"] for e in bank)
    assert shown - plain > 20


async def test_the_aa_world_makes_every_prompt_equally_good() -> None:
    world = SimWorld(seed=SEED, aa=True)
    demos = [(e["input"], e["expected"]) for e in question_bank(SEED + 1, 6)]
    prompts = [("", (), ""), (HELPS, (), ""), (HURTS, demos, "sim-small"), ("You are an expert.", demos, "sim-large")]
    qualities = {world.hidden_quality(*p) for p in prompts}
    assert len(qualities) == 1
    assert qualities == {hidden_quality("", aa=True)}
    assert hidden_quality(HELPS) != hidden_quality("")
    with world.serve() as server:
        bank = question_bank(SEED, 210)
        measured = [await accuracy(server.url, i, bank, demos=d, model=m) for i, d, m in prompts]
    assert max(measured) - min(measured) < 0.15
    assert all(abs(m - hidden_quality("", aa=True)) < 0.12 for m in measured)


def test_it_judges_answers_mostly_right() -> None:
    world = SimWorld(seed=SEED)
    spec = METRIC.validate_python({"type": "judge", "rubric": "The answer is correct."})
    bank = question_bank(SEED, 150)
    agree = 0
    for i, example in enumerate(bank):
        output = example["expected"] if i % 2 else "nonsense"
        prompt = judge_prompt(spec, input=example["input"], output=output, expected=example["expected"])
        scored = parse_judge_answer(world.answer({"model": "judge", "messages": [{"role": "user", "content": prompt}]}))
        assert scored.value in (0.0, 1.0)
        assert scored.reason
        agree += scored.value == (1.0 if i % 2 else 0.0)
    assert 0.8 < agree / len(bank) < 0.98, "right about 90% of the time"


REFLECT = (
    "I gave an assistant these instructions:\n```\n{current}\n```\n"
    "Here are inputs, its answers and feedback: ...\n"
    "Write new instructions for the assistant. Put them in a ``` block."
)


def reflect(world: SimWorld, current: str, seed: int, **extra: Any) -> str:
    request = {"model": "sim-large", "messages": [{"role": "user", "content": REFLECT.format(current=current)}]}
    return world.answer(request | {"seed": seed} | extra)


def test_reflection_toggles_one_feature_and_is_right_only_some_of_the_time() -> None:
    world = SimWorld(seed=SEED)
    current = "You are an expert. Be creative."
    before = Prompt(current).features()
    better = 0
    for seed in range(60):
        reply = reflect(world, current, seed)
        reason, _, fenced = reply.partition("\n\n```\n")
        new = fenced.removesuffix("\n```")
        assert reason.startswith("Failures cluster on ")
        assert len(before ^ Prompt(new).features()) == 1, reply
        better += world.hidden_quality(new) > world.hidden_quality(current)
    assert 0.5 < better / 60 < 0.95


def test_reflection_removes_a_feature_cleanly_and_answers_json_when_asked() -> None:
    world = SimWorld(seed=SEED)
    current = "Be creative. Think step by step."
    reply = json.loads(reflect(world, current, 0, response_format={"type": "json_object"}))
    assert set(reply) == {"reason", "instructions"}
    outcomes = {reflect(world, current, seed) for seed in range(40)}
    assert any(o.endswith("```\nThink step by step.\n```") for o in outcomes), "'Be creative.' removed"
    assert all(s in SLICES for s in [o.split()[3] for o in outcomes])
