"""Candidate strategies: few-shot demos, reflective rewrites and model swaps, on the simulated world."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from core.agents import AgentConfig, ModelSpec
from core.contracts.llm import ChatMessage, LlmRequest, ModelConfig
from core.llm.openai_provider import OpenAIProvider
from core.optimizer.strategies import STRATEGIES, strategy
from core.optimizer.strategies.base import Candidate, ScoredExample, StrategyContext
from core.optimizer.strategies.few_shot import DEMO_HEADER, FewShot, with_demos
from core.optimizer.strategies.few_shot import Demo as FewShotDemo
from core.optimizer.strategies.model_swap import ModelSwap
from core.optimizer.strategies.reflective import Reflective, parse_instructions, reflection_prompt
from simulated.scripted_server import ScriptedServer
from simulated.world import Prompt, SimWorld, question_bank, solve

SEED = 11
BASELINE_TEXT = "Be creative."
BASELINE = AgentConfig(
    name="quiz", instructions=BASELINE_TEXT, model=ModelSpec(provider="openai", name="sim-base", params={})
)


@pytest.fixture
def world() -> SimWorld:
    return SimWorld(seed=SEED)


def scored(world: SimWorld, n: int = 30, instructions: str = BASELINE_TEXT) -> list[ScoredExample]:
    """The baseline's answers to ``n`` bank questions, scored by exact match."""
    examples = []
    for i, item in enumerate(question_bank(SEED, n)):
        messages = [{"role": "system", "content": instructions}, {"role": "user", "content": item["input"]}]
        output = world.answer({"model": "sim-base", "messages": messages})
        right = output == item["expected"]
        reason = None if right else f"expected {item['expected']!r}, got {output!r}"
        examples.append(ScoredExample(f"ex{i}", item["input"], item["expected"], output, float(right), reason))
    return examples


def context(train: Sequence[ScoredExample], count: int = 3, seed: int = 0, **extra: object) -> StrategyContext:
    return StrategyContext(baseline=BASELINE, train=train, count=count, seed=seed, **extra)  # type: ignore[arg-type]


def assert_distinct_and_new(candidates: list[Candidate], name: str) -> None:
    configs = [c.config.model_dump_json() for c in candidates]
    assert len(set(configs)) == len(configs)
    assert BASELINE.model_dump_json() not in configs
    assert all(c.strategy == name and c.note for c in candidates)


def test_the_registry_names_every_strategy() -> None:
    assert set(STRATEGIES) == {"few_shot", "reflective", "model_swap"}
    assert all(strategy(name).name == name for name in STRATEGIES)
    with pytest.raises(KeyError, match="unknown strategy 'genetic'; known: few_shot, model_swap, reflective"):
        strategy("genetic")


async def test_few_shot_is_deterministic_by_seed_and_respects_count(world: SimWorld) -> None:
    train = scored(world)
    first = await FewShot().propose(context(train, count=5, seed=1))
    again = await FewShot().propose(context(train, count=5, seed=1))
    other = await FewShot().propose(context(train, count=5, seed=2))
    assert first == again
    assert [c.config for c in first] != [c.config for c in other]
    assert len(first) == 5
    assert_distinct_and_new(first, "few_shot")
    for count in (0, 1, 2):
        assert len(await FewShot().propose(context(train, count=count))) == count


async def test_few_shot_demos_are_high_scoring_examples_the_world_reads(world: SimWorld) -> None:
    train = scored(world)
    good = {e.input: e.expected for e in train if e.score == 1.0}
    assert 3 < len(good) < len(train)
    candidates = await FewShot().propose(context(train, count=3))
    assert [len(Prompt(c.config.instructions).all_demos()) for c in candidates] == [2, 4, 8]
    for candidate in candidates:
        instructions = candidate.config.instructions
        assert instructions.startswith(f"{BASELINE_TEXT}\n\n{DEMO_HEADER}\n\nInput: ")
        demos = Prompt(instructions).all_demos()
        assert all(good.get(question) == answer for question, answer in demos)
        assert f"{len(demos)} demos" in candidate.note
        assert world.hidden_quality(instructions) > world.hidden_quality(BASELINE_TEXT)
    four = Prompt(candidates[1].config.instructions).all_demos()
    assert {solve(question)[0] for question, _ in four if solve(question)} == {"math", "geo", "words"}  # type: ignore[index]


async def test_few_shot_uses_the_output_without_a_text_expected_and_needs_a_good_example() -> None:
    train = [
        ScoredExample("a", "Name a colour.", None, "Blue.", 1.0),
        ScoredExample("b", "Give a JSON pet.", {"kind": "cat"}, '{"kind": "cat", "age": 2}', 0.9),
        ScoredExample("c", "Name a fruit.", "Apple", "Pear", 0.0),
    ]
    (candidate,) = await FewShot(sizes=(3,)).propose(context(train, count=1))
    demos = Prompt(candidate.config.instructions).all_demos()
    assert sorted(demos) == [("Give a JSON pet.", '{"kind": "cat", "age": 2}'), ("Name a colour.", "Blue.")]
    assert await FewShot().propose(context(train[2:], count=3)) == []


def test_demo_sections_replace_earlier_ones_and_indent_further_lines() -> None:
    demo = FewShotDemo("a", "Sum:\n1 + 1", "2")
    once = with_demos("Be brief.", [demo])
    assert once == f"Be brief.\n\n{DEMO_HEADER}\n\nInput: Sum:\n  1 + 1\nOutput: 2"
    assert with_demos(once, [FewShotDemo("b", "x", "y")]) == f"Be brief.\n\n{DEMO_HEADER}\n\nInput: x\nOutput: y"
    assert with_demos("", [FewShotDemo("b", "x", "y")]) == f"{DEMO_HEADER}\n\nInput: x\nOutput: y"


async def test_reflective_rewrites_through_the_worlds_reflection_model(world: SimWorld, server: ScriptedServer) -> None:
    provider = OpenAIProvider(timeout_s=10)
    prompts: list[str] = []

    async def reflect(prompt: str) -> str:
        prompts.append(prompt)
        model = ModelConfig(provider="openai", name="sim-large", base_url=f"{server.url}/v1")
        request = LlmRequest(model=model, messages=[ChatMessage("user", prompt)], api_key="sk-sim")
        return (await provider.complete(request)).content

    try:
        train = scored(world)
        first = await Reflective().propose(context(train, count=3, seed=4, reflect=reflect))
        again = await Reflective().propose(context(train, count=3, seed=4, reflect=reflect))
    finally:
        await provider.aclose()
    assert first == again
    assert len(first) == 3
    assert_distinct_and_new(first, "reflective")
    for candidate in first:
        changed = Prompt(candidate.config.instructions).features() ^ Prompt(BASELINE_TEXT).features()
        assert len(changed) == 1, candidate.config.instructions
        assert "Failures cluster on" in candidate.note
    assert max(world.hidden_quality(c.config.instructions) for c in first) > world.hidden_quality(BASELINE_TEXT)
    failed = {e.input for e in train if e.score < 1}
    assert all(f"```\n{BASELINE_TEXT}\n```" in p for p in prompts)
    assert all(any(question in p for question in failed) for p in prompts)
    assert not any(e.input in p for p in prompts for e in train if e.score == 1)


async def test_reflective_proposes_nothing_without_a_model_or_a_failure(world: SimWorld) -> None:
    calls: list[str] = []

    async def reflect(prompt: str) -> str:
        calls.append(prompt)
        return "```\nAnswer carefully.\n```"

    train = scored(world)
    assert Reflective().needs_reflect
    assert await Reflective().propose(context(train)) == []
    assert await Reflective().propose(context([e for e in train if e.score == 1], reflect=reflect)) == []
    assert calls == []


async def test_reflective_drops_repeats_and_bounds_its_calls(world: SimWorld) -> None:
    calls: list[str] = []

    async def reflect(prompt: str) -> str:
        calls.append(prompt)
        return "Keep it.\n```\nAnswer carefully.\n```" if len(calls) % 2 else f"```\n{BASELINE_TEXT}\n```"

    candidates = await Reflective().propose(context(scored(world), count=3, reflect=reflect))
    assert [c.config.instructions for c in candidates] == ["Answer carefully."]
    assert len(calls) == 6
    assert "Rewrites already proposed (propose a different one):\n- Answer carefully." in calls[-1]


@pytest.mark.parametrize(
    ("answer", "parsed"),
    [
        ("Because.\n\n```\nBe brief.\nCite the source.\n```", "Be brief.\nCite the source."),
        ("```text\nBe brief.\n```\nand ```other```", "Be brief."),
        ("~~~\nBe brief.\n~~~", "Be brief."),
        ("```Be brief.```", "Be brief."),
        ("Reasoning first.\n```\nBe brief.", "Be brief."),
        ("Be brief. Answer in one word.", "Be brief. Answer in one word."),
        ("Here are the improved instructions:\nBe brief.", "Be brief."),
        ("New instructions:  \n\nBe brief.", "Be brief."),
        ("Follow these rules:\nBe brief.", "Follow these rules:\nBe brief."),
        (json.dumps({"reason": "r", "instructions": " Be brief. "}), "Be brief."),
        (json.dumps({"reason": "r"}), None),
        ("Drop them all.\n```\n\n```", ""),
        ("   ", None),
    ],
)
def test_parse_is_tolerant_of_fenced_plain_and_json_answers(answer: str, parsed: str | None) -> None:
    assert parse_instructions(answer) == parsed


def test_the_reflection_prompt_fences_instructions_that_hold_a_fence() -> None:
    failure = ScoredExample("a", "q", None, "out", 0.0, None)
    prompt = reflection_prompt("Reply as ```json```.", [failure])
    assert "````\nReply as ```json```.\n````" in prompt
    assert "## Feedback (score 0)\nno reason given" in prompt
    assert "## Expected answer" not in prompt
    assert parse_instructions(prompt.split("\n\n", 1)[1]) == "Reply as ```json```."


async def test_model_swap_tries_each_other_model_in_order_then_a_lower_temperature() -> None:
    models = ["sim-small", "sim-base", "sim-large", "sim-small"]
    candidates = await ModelSwap().propose(context([], count=5, models=models))
    assert [(c.config.model.name, c.config.model.params) for c in candidates] == [
        ("sim-small", {}),
        ("sim-large", {}),
        ("sim-base", {"temperature": 0.0}),
    ]
    assert [c.note for c in candidates] == [
        "model sim-base → sim-small",
        "model sim-base → sim-large",
        "temperature the provider's default → 0 on sim-base",
    ]
    assert all(c.config.instructions == BASELINE_TEXT for c in candidates)
    assert_distinct_and_new(candidates, "model_swap")
    assert len(await ModelSwap().propose(context([], count=1, models=models))) == 1
    assert await ModelSwap(temperature=False).propose(context([], models=[])) == []


async def test_model_swap_skips_the_temperature_variant_at_zero() -> None:
    cold = BASELINE.model_copy(update={"model": BASELINE.model.model_copy(update={"params": {"temperature": 0}})})
    swap = StrategyContext(baseline=cold, train=[], count=3, seed=0, models=["sim-large"])
    candidates = await ModelSwap().propose(swap)
    assert [(c.config.model.name, c.config.model.params) for c in candidates] == [("sim-large", {"temperature": 0})]
