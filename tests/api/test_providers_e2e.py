"""Agent runs on the `openai` and `anthropic` providers, end to end, against local servers speaking their protocols."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from simulated.scripted_server import (
    ScriptedServer,
    an_end,
    an_start,
    an_stream,
    an_text,
    an_tool,
    oa_chunk,
    oa_error,
    oa_stream,
    oa_tool_delta,
    oa_usage,
)
from tests.conftest import TenantCtx
from tests.support.runs import create_agent, wait_run


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    fake = ScriptedServer().start()
    yield fake
    fake.stop()


async def _allow_loopback(engine: AsyncEngine, tenant_id: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("""update tenant set egress_allowlist = '["127.0.0.1"]' where id = :t"""), {"t": tenant_id}
        )


async def test_openai_tool_loop_with_secret_key_and_429(
    tenant: TenantCtx, engine: AsyncEngine, server: ScriptedServer, temporal_client: Client
) -> None:
    await _allow_loopback(engine, tenant.id)
    canary = "sk-test-canary-0123456789"
    await tenant.http.post("/v1/secrets", json={"name": "OPENAI_KEY", "value": canary})
    server.push(
        oa_error(429, "slow down", headers={"Retry-After": "1"}),
        oa_stream(
            oa_chunk({"role": "assistant", "content": None}),
            oa_chunk(oa_tool_delta(0, id="call_1", name="calculator", args='{"expres')),
            oa_chunk(oa_tool_delta(0, args='sion": "6*7"}')),
            oa_chunk({}, finish="tool_calls"),
            oa_usage(50, 10),
        ),
        oa_stream(
            oa_chunk({"role": "assistant", "content": "The answer "}),
            oa_chunk({"content": "is 42."}),
            oa_chunk({}, finish="stop"),
            oa_usage(80, 6),
        ),
    )
    agent = await create_agent(
        tenant.http,
        model={
            "provider": "openai",
            "name": "gpt-4o-mini",
            "base_url": f"{server.url}/v1",
            "api_key_secret": "OPENAI_KEY",
        },
    )
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "what is 6*7?"})).json()
    done = await wait_run(tenant.http, run["id"], timeout_s=60)

    assert done["status"] == "completed", done
    assert done["output"] == "The answer is 42."
    assert done["steps"][0]["attempts"] == 2, "the 429 was retried"
    assert done["usage"] == {
        "input_tokens": 130,
        "output_tokens": 16,
        "cost_usd": pytest.approx(done["usage"]["cost_usd"]),
    }
    assert done["usage"]["cost_usd"] > 0
    calls = [r for r in server.received if r.path.endswith("/chat/completions")]
    assert len(calls) == 3
    assert calls[1].headers["authorization"] == f"Bearer {canary}"
    assert calls[1].body["tools"][0]["function"]["name"] == "calculator"
    assert calls[1].body["stream"] is True
    tool_message = calls[2].body["messages"][-1]
    assert (tool_message["role"], tool_message["tool_call_id"], tool_message["content"]) == ("tool", "call_1", "42")
    history = await temporal_client.get_workflow_handle(done["temporal"]["workflow_id"]).fetch_history()
    assert canary not in history.to_json()
    assert canary not in json.dumps(done)


async def test_openai_malformed_arguments_go_back_to_the_model(
    tenant: TenantCtx, engine: AsyncEngine, server: ScriptedServer
) -> None:
    await _allow_loopback(engine, tenant.id)
    server.push(
        oa_stream(
            oa_chunk(oa_tool_delta(0, id="call_1", name="calculator", args="{not json")),
            oa_chunk({}, finish="tool_calls"),
        ),
        oa_stream(oa_chunk(oa_tool_delta(0, id="call_2", name="rm_rf", args="{}")), oa_chunk({}, finish="tool_calls")),
        oa_stream(oa_chunk({"content": "sorry"}), oa_chunk({}, finish="stop")),
    )
    agent = await create_agent(
        tenant.http, model={"provider": "openai", "name": "gpt-4o-mini", "base_url": f"{server.url}/v1"}
    )
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "x"})).json()
    done = await wait_run(tenant.http, run["id"], timeout_s=60)
    assert done["status"] == "completed"
    assert [(s["kind"], s["status"]) for s in done["steps"]] == [
        ("llm", "completed"),
        ("tool", "failed"),
        ("llm", "completed"),
        ("tool", "failed"),
        ("llm", "completed"),
    ]
    assert "not valid JSON" in done["steps"][1]["error"]["message"]
    assert "unknown tool" in done["steps"][3]["error"]["message"]
    results = [m for m in server.received[2].body["messages"] if m["role"] == "tool"]
    assert [r["tool_call_id"] for r in results] == ["call_1", "call_2"]


async def test_provider_down_fails_with_a_typed_error(
    tenant: TenantCtx, engine: AsyncEngine, server: ScriptedServer
) -> None:
    await _allow_loopback(engine, tenant.id)
    server.push(*[oa_error(500, "boom") for _ in range(2)])
    agent = await create_agent(
        tenant.http,
        model={
            "provider": "openai",
            "name": "gpt-4o-mini",
            "base_url": f"{server.url}/v1",
            "params": {"max_attempts": 2},
        },
    )
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "x"})).json()
    done = await wait_run(tenant.http, run["id"], timeout_s=60)
    assert done["status"] == "failed"
    assert done["error"]["type"] == "ProviderUnavailable"
    assert "openai" in done["error"]["message"]
    assert done["steps"][0]["attempts"] == 2

    server.push(oa_error(401, "bad key"))
    agent = await create_agent(
        tenant.http, model={"provider": "openai", "name": "gpt-4o-mini", "base_url": f"{server.url}/v1"}
    )
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "x"})).json()
    done = await wait_run(tenant.http, run["id"], timeout_s=60)
    assert done["error"]["type"] == "ProviderRejected"
    assert done["steps"][0]["attempts"] == 1


async def test_anthropic_tool_loop(tenant: TenantCtx, engine: AsyncEngine, server: ScriptedServer) -> None:
    await _allow_loopback(engine, tenant.id)
    server.push(
        an_stream(
            an_start(20), an_tool(0, "toolu_1", "calculator", '{"expression"', ': "2+2"}'), an_end("tool_use", 5)
        ),
        an_stream(an_start(40), an_text(0, "It is ", "4."), an_end("end_turn", 4)),
    )
    agent = await create_agent(
        tenant.http, model={"provider": "anthropic", "name": "claude-sonnet-4-6", "base_url": server.url}
    )
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "2+2?"})).json()
    done = await wait_run(tenant.http, run["id"], timeout_s=60)
    assert done["status"] == "completed", done
    assert done["output"] == "It is 4."
    assert done["usage"]["input_tokens"] == 60
    second = server.received[1].body["messages"]
    assert second[-1]["content"][0]["type"] == "tool_result"
    assert second[-1]["content"][0]["tool_use_id"] == "toolu_1"
