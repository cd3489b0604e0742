"""Candidate runs: one configuration on one input, tool calls answered from a recording, live when pure, or refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.agents import AgentConfig
from core.contracts.llm import ToolCall, Usage
from core.db.projection import RunProjection
from core.llm.local import LocalProvider
from core.llm.openai_provider import OpenAIProvider
from core.llm.pricing import PriceTable
from core.optimizer.candidate_run import CandidateToolCall, run_candidate
from core.optimizer.recordings import RecordedCall, Recording, read_recording
from core.optimizer.tool_answers import RecordingAnswerer, SafeToolAnswerer, canonical_arguments
from core.tools.base import ToolRegistry
from core.tools.builtin import builtin_registry
from core.tools.calculator import CalculatorTool
from core.tools.http_request import HttpRequestTool
from simulated.scripted_server import Received, Reply, ScriptedServer, oa_chunk, oa_stream, oa_tool_delta, oa_usage
from simulated.world import SimWorld, question_bank
from tests.conftest import TenantCtx
from tests.support.runs import create_agent, wait_run

TENANT = "ten_candidate"
CALC_RECORDED = RecordedCall("calculator", {"expression": "2 + 40"}, "42", step_id="s2")


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    running = ScriptedServer().start()
    yield running
    running.stop()


def openai_config(
    server: ScriptedServer, *tools: str, instructions: str = "", model: str = "gpt-4o-mini"
) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "name": "candidate",
            "instructions": instructions,
            "model": {"provider": "openai", "name": model, "base_url": f"{server.url}/v1"},
            "tools": list(tools),
        }
    )


def tool_call_reply(name: str, arguments: dict[str, Any], *, call_id: str = "call_1", usage: Usage) -> Reply:
    return oa_stream(
        oa_chunk(oa_tool_delta(0, id=call_id, name=name, args=json.dumps(arguments))),
        oa_chunk({}, finish="tool_calls"),
        oa_usage(usage.input_tokens, usage.output_tokens),
    )


def text_reply(text: str, *, usage: Usage) -> Reply:
    return oa_stream(
        oa_chunk({"content": text}), oa_chunk({}, finish="stop"), oa_usage(usage.input_tokens, usage.output_tokens)
    )


def tool_messages(received: Received) -> list[dict[str, Any]]:
    return [m for m in received.body["messages"] if m["role"] == "tool"]


async def test_a_replay_answers_the_recorded_calculator_call_from_the_recording(
    tenant: TenantCtx, other_tenant: TenantCtx, engine: AsyncEngine
) -> None:
    agent = await create_agent(tenant.http)
    started = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "what is 2 + 40"})).json()
    run = await wait_run(tenant.http, started["id"])
    assert run["status"] == "completed", run

    recording = await read_recording(engine, tenant.id, run["id"])
    assert recording is not None
    assert (recording.input, recording.output, recording.status) == ("what is 2 + 40", run["output"], "completed")
    assert recording.tool_calls == [CALC_RECORDED]
    assert (recording.agent_id, recording.agent_version) == (agent["id"], agent["version"])
    assert recording.usage == Usage(run["usage"]["input_tokens"], run["usage"]["output_tokens"], 0.0)
    assert await read_recording(engine, other_tenant.id, run["id"]) is None

    raw = await RunProjection(engine).agent_config(tenant.id, agent["id"], agent["version"])
    config = AgentConfig.model_validate(raw)
    tools = await builtin_registry().schemas(tenant.id, [t.name for t in config.tools])

    async def replay(recorded: Recording) -> tuple[str, RecordingAnswerer, list[CandidateToolCall]]:
        answerer = RecordingAnswerer(recorded.tool_calls)
        out = await run_candidate(
            config, recorded.input, provider=LocalProvider(), answerer=answerer, tools=tools, max_steps=12
        )
        assert (out.outcome, out.steps) == ("completed", 2)
        return out.output, answerer, out.tool_calls

    output, answerer, calls = await replay(recording)
    assert output == recording.output == "Result — calculator: 42"
    assert calls == [CandidateToolCall("calculator", {"expression": "2 + 40"}, "recording", "42")]
    assert answerer.unmatched == []

    # The calculator does not run: an altered recorded answer is what the model reads.
    altered = replace(recording, tool_calls=[replace(CALC_RECORDED, result="4200")])
    output, _, calls = await replay(altered)
    assert output == "Result — calculator: 4200"
    assert [c.answered_from for c in calls] == ["recording"]


async def test_a_call_not_in_the_recording_is_answered_with_an_error_and_counted(server: ScriptedServer) -> None:
    server.push(
        tool_call_reply("calculator", {"expression": "2 * 21"}, usage=Usage(20, 10)),
        text_reply("I could not compute it.", usage=Usage(30, 5)),
    )
    config = openai_config(server, "calculator")
    answerer = RecordingAnswerer([CALC_RECORDED])
    tools = await builtin_registry().schemas(TENANT, ["calculator"])

    out = await run_candidate(
        config, "what is 2 + 40", provider=OpenAIProvider(), answerer=answerer, tools=tools, max_steps=5, api_key="sk"
    )

    missing = 'error: not in recording: calculator({"expression":"2 * 21"})'
    assert (out.outcome, out.output, out.steps) == ("completed", "I could not compute it.", 2)
    assert out.tool_calls == [CandidateToolCall("calculator", {"expression": "2 * 21"}, "refused", missing, True)]
    assert (out.count("refused"), out.count("recording")) == (1, 0)
    assert [c.arguments for c in answerer.unmatched] == [{"expression": "2 * 21"}]
    sent = tool_messages(server.received[1])
    assert [(m["tool_call_id"], m["content"]) for m in sent] == [("call_1", missing)]
    # usage and cost are summed over both model steps, priced by the table
    assert (out.usage.input_tokens, out.usage.output_tokens) == (50, 15)
    assert out.usage.cost_usd == pytest.approx(PriceTable().cost_usd("gpt-4o-mini", Usage(50, 15)))
    assert out.usage.cost_usd == pytest.approx((50 * 0.15 + 15 * 0.60) / 1_000_000)


async def test_recorded_answers_are_used_in_order_then_the_last_is_reused() -> None:
    first, second = replace(CALC_RECORDED, result="42"), replace(CALC_RECORDED, result="forty-two", step_id="s4")
    answerer = RecordingAnswerer([first, second])
    call = ToolCall("c", "calculator", {"expression": "2 + 40"})
    texts = [(await answerer.answer(call)).text for _ in range(3)]
    assert texts == ["42", "forty-two", "forty-two"]
    assert canonical_arguments({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == canonical_arguments(
        {"a": [1, {"c": 3, "d": 2}], "b": 1}
    )
    assert answerer.unmatched == []


def safe_tools(allowlist_calls: list[str]) -> ToolRegistry:
    async def allowlist_for(tenant_id: str) -> list[str]:
        allowlist_calls.append(tenant_id)
        return ["*"]

    return ToolRegistry([CalculatorTool(), HttpRequestTool(allowlist_for=allowlist_for)])


@pytest.mark.parametrize("chained", [False, True])
async def test_the_safe_answerer_runs_the_calculator_live_and_refuses_http_request(
    server: ScriptedServer, chained: bool
) -> None:
    fetch = {"method": "POST", "url": "https://example.com/orders", "json": {"item": 1}}
    server.push(
        oa_stream(
            oa_chunk(oa_tool_delta(0, id="call_1", name="calculator", args='{"expression": "6 * 7"}')),
            oa_chunk(oa_tool_delta(1, id="call_2", name="http_request", args=json.dumps(fetch))),
            oa_chunk({}, finish="tool_calls"),
        ),
        text_reply("done", usage=Usage(1, 1)),
    )
    allowlist_calls: list[str] = []
    registry = safe_tools(allowlist_calls)
    safe = SafeToolAnswerer(registry, TENANT, run_id="eval_1")
    answerer = RecordingAnswerer([], fallback=safe) if chained else safe
    tools = await registry.schemas(TENANT, ["calculator", "http_request"])

    out = await run_candidate(
        openai_config(server, "calculator", "http_request"),
        "order one, and 6 * 7?",
        provider=OpenAIProvider(),
        answerer=answerer,
        tools=tools,
        max_steps=3,
        api_key="sk",
    )

    refusal = "http_request is not run here: it may act on or read the outside world"
    if chained:
        refusal = f"not in recording: http_request({canonical_arguments(fetch)}); {refusal}"
    assert out.tool_calls == [
        CandidateToolCall("calculator", {"expression": "6 * 7"}, "live", "42"),
        CandidateToolCall("http_request", fetch, "refused", f"error: {refusal}", True),
    ]
    assert [m["content"] for m in tool_messages(server.received[1])] == ["42", f"error: {refusal}"]
    assert allowlist_calls == [], "http_request never ran"
    assert (out.outcome, out.output) == ("completed", "done")


@pytest.mark.parametrize(
    ("offered", "arguments", "error"),
    [
        ([], {"expression": "1 + 1"}, "error: unknown tool 'calculator'; use one of the tools offered"),
        (["calculator"], {"expr": "1 + 1"}, "error: invalid arguments for calculator: (root): "),
    ],
)
async def test_a_call_of_a_tool_not_offered_or_with_bad_arguments_gets_the_real_runs_error(
    server: ScriptedServer, offered: list[str], arguments: dict[str, Any], error: str
) -> None:
    server.push(tool_call_reply("calculator", arguments, usage=Usage(1, 1)), text_reply("ok", usage=Usage(1, 1)))
    answerer = RecordingAnswerer([replace(CALC_RECORDED, arguments=arguments)])
    out = await run_candidate(
        openai_config(server, *offered),
        "1 + 1",
        provider=OpenAIProvider(),
        answerer=answerer,
        tools=await builtin_registry().schemas(TENANT, offered),
        max_steps=3,
        api_key="sk",
    )
    [call] = out.tool_calls
    assert (call.answered_from, call.is_error) == ("refused", True)
    assert call.result.startswith(error), call.result
    assert answerer.unmatched == [], "the answerer is not asked"


async def test_a_failed_tool_call_is_recorded_and_replayed_with_its_error(
    tenant: TenantCtx, engine: AsyncEngine
) -> None:
    agent = await create_agent(tenant.http)
    started = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "what is 1 / 0"})).json()
    run = await wait_run(tenant.http, started["id"])
    recording = await read_recording(engine, tenant.id, run["id"])
    assert recording is not None
    failed = RecordedCall("calculator", {"expression": "1 / 0"}, "error: division by zero", is_error=True, step_id="s2")
    assert recording.tool_calls == [failed]

    config = AgentConfig.model_validate(await RunProjection(engine).agent_config(tenant.id, agent["id"], 1))
    out = await run_candidate(
        config,
        recording.input,
        provider=LocalProvider(),
        answerer=RecordingAnswerer(recording.tool_calls),
        tools=await builtin_registry().schemas(tenant.id, ["calculator"]),
        max_steps=4,
    )
    assert out.output == recording.output == "Result — calculator: error: division by zero"
    assert [(c.answered_from, c.is_error) for c in out.tool_calls] == [("recording", True)]


async def test_the_step_bound_ends_the_loop_with_step_limit(server: ScriptedServer) -> None:
    step = 0

    def always_a_tool_call(received: Received) -> Reply:
        nonlocal step
        step += 1
        return tool_call_reply("calculator", {"expression": f"{step} + 1"}, call_id=f"call_{step}", usage=Usage(3, 2))

    server.respond = always_a_tool_call
    out = await run_candidate(
        openai_config(server, "calculator"),
        "count",
        provider=OpenAIProvider(),
        answerer=SafeToolAnswerer(builtin_registry(), TENANT),
        tools=await builtin_registry().schemas(TENANT, ["calculator"]),
        max_steps=3,
        api_key="sk",
    )
    assert (out.outcome, out.steps, len(server.received)) == ("step_limit", 3, 3)
    assert [c.result for c in out.tool_calls] == ["2", "3", "4"]
    assert (out.usage.input_tokens, out.usage.output_tokens) == (9, 6)


async def test_a_provider_that_is_not_the_configurations_is_refused(server: ScriptedServer) -> None:
    with pytest.raises(ValueError, match="provider 'local' given for a 'openai' model"):
        await run_candidate(
            openai_config(server),
            "hi",
            provider=LocalProvider(),
            answerer=SafeToolAnswerer(builtin_registry(), TENANT),
            tools=[],
            max_steps=1,
        )


async def test_in_the_simulated_world_the_instructions_decide_how_often_the_answer_is_right() -> None:
    world = SimWorld(seed=11)
    examples = question_bank(11, 90)
    helps, hurts = "Think step by step. Double-check your answer.", "Be creative."
    assert world.hidden_quality(helps, model="sim-base") > 0.7 > 0.31 > world.hidden_quality(hurts, model="sim-base")

    with world.serve() as server:
        provider = OpenAIProvider()

        async def accuracy(instructions: str) -> float:
            config = openai_config(server, instructions=instructions, model="sim-base")
            limit = asyncio.Semaphore(10)

            async def right(example: dict[str, str]) -> bool:
                async with limit:
                    out = await run_candidate(
                        config,
                        example["input"],
                        provider=provider,
                        answerer=SafeToolAnswerer(builtin_registry(), TENANT),
                        tools=[],
                        max_steps=2,
                        api_key="sk-sim",
                    )
                assert (out.outcome, out.steps) == ("completed", 1)
                return out.output == example["expected"]

            return sum(await asyncio.gather(*(right(e) for e in examples))) / len(examples)

        good, bad = await accuracy(helps), await accuracy(hurts)
        sent = server.received[0].body["messages"]
    assert sent[0] == {"role": "system", "content": helps}
    assert good - bad > 0.25, (good, bad)
    for instructions, measured in ((helps, good), (hurts, bad)):
        assert abs(measured - world.hidden_quality(instructions, model="sim-base")) < 0.15, (instructions, measured)
