"""Each miner on a bulk-written history with one planted problem finds it, with its evidence; a clean history gives
nothing."""

from __future__ import annotations

import random
from functools import partial
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import recommend_history as bh
from core.contracts.recommend import Finding
from core.db.engine import make_sessionmaker
from core.db.models import Replay, ReplayResult
from core.ids import new_id
from tests.conftest import TenantCtx
from tests.recommend.support import agent, findings, history, pipeline, tools


def _only(found: list[Finding], rule: str) -> Finding:
    matching = [f for f in found if f.rule == rule]
    assert len(matching) == 1, [(f.rule, f.target_key, f.title) for f in found]
    return matching[0]


def _contains(metric: dict[str, Any], true_value: float) -> None:
    low, high = metric["ci"]
    assert low <= metric["value"] <= high
    assert low <= true_value <= high, metric


CALC = {"type": "tool", "tool": "calculator", "args": {"expression": "1 + 1"}}


async def _clean_tenant(tenant: TenantCtx, engine: AsyncEngine) -> None:
    await tools(tenant.http, "lookup", "send")
    one = await agent(tenant.http, ["lookup", {"name": "send", "requires_approval": True}])
    reader = [CALC | {"id": "a"}, CALC | {"id": "b", "needs": ["a"], "args": {"expression": "${steps.a.output}"}}]
    readers = await pipeline(tenant.http, "reads", reader)
    small_map = [{"id": "each", "type": "map", "over": "[1, 2]", "step": CALC, "max_concurrency": 5}]
    mapped = await pipeline(tenant.http, "small map", small_map)
    await history(
        engine,
        tenant.id,
        [
            (one["id"], 1, bh.clean_run, 400),
            (one["id"], 1, partial(bh.approved_run, reject=0.1), 120),
            (one["id"], 1, partial(bh.cluster_run, bad_topic=None), 400),
        ],
        [(readers["id"], 1, bh.ordered_run, 80), (mapped["id"], 1, partial(bh.map_run, items=4), 80)],
    )


async def test_a_clean_history_gives_nothing(tenant: TenantCtx, engine: AsyncEngine) -> None:
    await _clean_tenant(tenant, engine)
    assert [(f.rule, f.title) for f in await findings(engine, tenant.id)] == []


async def test_a_failing_tool(tenant: TenantCtx, engine: AsyncEngine) -> None:
    await tools(tenant.http, "lookup")
    mostly, always = await agent(tenant.http, ["lookup"]), await agent(tenant.http, ["lookup"])
    await history(
        engine,
        tenant.id,
        [
            (mostly["id"], 1, partial(bh.failing_tool_run, rate=0.4), 300),
            (always["id"], 1, partial(bh.failing_tool_run, rate=0.85), 200),
        ],
    )
    found = await findings(engine, tenant.id, "calls")
    assert {f.rule for f in found} == {"tool.failure_rate"}
    by_agent = {f.target["agent_id"]: f for f in found}
    gated = by_agent[mostly["id"]]
    assert gated.target == {"type": "agent", "agent_id": mostly["id"], "tool": "lookup"}
    _contains(gated.evidence["metric"], 0.4)
    assert gated.evidence["metric"]["n"] == 300
    assert gated.evidence["metric"]["name"] == "failure_rate"
    assert {e["message"] for e in gated.evidence["numbers"]["top_errors"]} == {
        "error: upstream returned 502",
        "error: invalid account id",
    }
    assert len(gated.evidence["example_run_ids"]) == 5
    assert gated.action["ops"] == [{"op": "set_tool", "tool": "lookup", "values": {"requires_approval": True}}]
    assert gated.basis == {"agent_version": 1}
    assert 300 <= gated.expected_gain["quantity"] <= 500  # failed calls per 1,000 runs
    removed = by_agent[always["id"]]
    _contains(removed.evidence["metric"], 0.85)
    assert removed.action["ops"] == [{"op": "remove_tool", "tool": "lookup"}]


async def test_retry_policies(tenant: TenantCtx, engine: AsyncEngine) -> None:
    await tools(tenant.http, "flaky", "legacy")
    raising, failing_fast = await agent(tenant.http, ["flaky"]), await agent(tenant.http, ["legacy"])
    await history(
        engine,
        tenant.id,
        [(raising["id"], 1, bh.exhausted_run, 500), (failing_fast["id"], 1, bh.useless_retry_run, 300)],
    )
    found = await findings(engine, tenant.id, "calls")
    more = _only(found, "retry_policy.raise_attempts")
    assert more.target == {"type": "agent", "agent_id": raising["id"], "tool": "flaky"}
    assert more.kind == "retry_policy"
    _contains(more.evidence["metric"], 0.08)
    assert more.evidence["numbers"]["attempt_limit"] == 3
    assert more.action["ops"] == [{"op": "set_tool", "tool": "flaky", "values": {"max_attempts": 5}}]
    fewer = _only(found, "retry_policy.lower_attempts")
    assert fewer.target["agent_id"] == failing_fast["id"]
    assert fewer.evidence["metric"]["value"] == 0.0
    assert fewer.evidence["metric"]["ci"][1] < 0.05
    assert fewer.action["ops"] == [{"op": "set_tool", "tool": "legacy", "values": {"max_attempts": 1}}]
    assert {f.rule for f in found} == {"retry_policy.raise_attempts", "retry_policy.lower_attempts"}


async def test_timeouts(tenant: TenantCtx, engine: AsyncEngine) -> None:
    await tools(tenant.http, "report", "ping")
    slow, quick = await agent(tenant.http, ["report"]), await agent(tenant.http, [{"name": "ping", "timeout_s": 120}])
    await history(
        engine, tenant.id, [(slow["id"], 1, bh.timeout_run, 300), (quick["id"], 1, bh.loose_timeout_run, 300)]
    )
    found = await findings(engine, tenant.id, "calls")
    assert {f.rule for f in found} == {"timeout.raise", "timeout.lower"}
    longer = _only(found, "timeout.raise")
    _contains(longer.evidence["metric"], 0.12)
    assert longer.evidence["numbers"]["timeout_s"] == 30.0
    assert longer.action["ops"] == [{"op": "set_tool", "tool": "report", "values": {"timeout_s": 60.0}}]
    shorter = _only(found, "timeout.lower")
    assert shorter.evidence["metric"]["name"] == "p99_duration_s"
    assert shorter.evidence["metric"]["value"] <= 0.3
    assert shorter.action["ops"] == [{"op": "set_tool", "tool": "ping", "values": {"timeout_s": 1.0}}]
    assert shorter.expected_gain["quantity"] == 119.0


async def test_approvals_always_granted(tenant: TenantCtx, engine: AsyncEngine) -> None:
    await tools(tenant.http, "send")
    gated = await agent(tenant.http, [{"name": "send", "requires_approval": True}])
    await history(engine, tenant.id, [(gated["id"], 1, bh.approved_run, 60)])
    found = _only(await findings(engine, tenant.id, "calls"), "tool.approval_always_approved")
    assert found.evidence["metric"]["value"] == 0.0
    assert found.evidence["metric"]["n"] == 60
    assert 0.0 < found.evidence["metric"]["ci"][1] < 0.07
    assert found.action["ops"] == [{"op": "set_tool", "tool": "send", "values": {"requires_approval": False}}]
    assert found.expected_gain["unit"] == "minutes of waiting for approval per 1,000 runs"


@pytest.mark.parametrize(("cheap_mean", "expected"), [(0.80, True), (0.55, False)])
async def test_a_cheaper_model_whose_score_holds(
    tenant: TenantCtx, engine: AsyncEngine, cheap_mean: float, expected: bool
) -> None:
    await tools(tenant.http, "lookup")
    made = await agent(tenant.http, ["lookup"], model={"provider": "local", "name": "gpt-4o-mini"})
    switched = await tenant.http.patch(
        f"/v1/agents/{made['id']}", json={"model": {"provider": "local", "name": "gpt-4o"}}
    )
    assert switched.status_code == 200
    assert switched.json()["version"] == 2
    cheap = partial(bh.model_run, cost=0.001, mean=cheap_mean, model="local:gpt-4o-mini")
    dear = partial(bh.model_run, cost=0.01, mean=0.81, model="local:gpt-4o")
    await history(engine, tenant.id, [(made["id"], 1, cheap, 150), (made["id"], 2, dear, 150)])
    found = [f for f in await findings(engine, tenant.id, "model")]
    if not expected:
        assert found == []
        return
    (switch,) = found
    assert switch.kind == "model"
    assert switch.rule == "model.cheaper"
    assert switch.action["ops"] == [
        {
            "op": "set_model",
            "model": {
                "provider": "local",
                "name": "gpt-4o-mini",
                "base_url": None,
                "api_key_secret": None,
                "params": {},
            },
        }
    ]
    assert switch.evidence["metric"]["ci"][0] > -0.05
    assert switch.evidence["numbers"]["candidate"]["version"] == 1
    assert switch.evidence["check"]["body"]["version"] == 1  # no replay yet: the replay to run first
    assert 8.0 <= switch.expected_gain["quantity"] <= 10.0
    assert switch.expected_gain["unit"] == "USD saved per 1,000 runs"


async def test_a_kind_of_request_that_goes_badly(tenant: TenantCtx, engine: AsyncEngine) -> None:
    made = await agent(tenant.http, [])
    ids = await history(engine, tenant.id, [(made["id"], 1, bh.cluster_run, 600)])
    (found,) = await findings(engine, tenant.id, "prompt")
    assert found.rule == "prompt.cluster"
    assert found.kind == "prompt"
    assert set(found.evidence["numbers"]["terms"]) & set(bh.TOPICS["refund"])
    assert not set(found.evidence["numbers"]["terms"][:3]) - set(bh.TOPICS["refund"]), found.evidence["numbers"]
    planted = found.evidence["metric"]  # 70% planted; this seed drew 80 bad of 136
    assert 0.5 <= planted["value"] <= 0.85
    assert found.evidence["numbers"]["other_bad_rate"] < 0.15
    assert planted["ci"][0] >= found.evidence["numbers"]["other_bad_rate"] + 0.15
    action = found.action
    assert action["type"] == "optimizer_run"
    assert action["metric"]["type"] == "judge"
    assert set(action["dataset"]["run_ids"]) <= set(ids)
    assert set(found.evidence["example_run_ids"]) <= set(action["dataset"]["run_ids"])


async def test_pipeline_steps(tenant: TenantCtx, engine: AsyncEngine) -> None:
    made = await agent(tenant.http, [])
    summarize = {
        "id": "summarize",
        "type": "agent",
        "agent_id": made["id"],
        "input": "${steps.fetch.output}",
        "needs": ["fetch"],
    }
    failing = await pipeline(tenant.http, "failing", [CALC | {"id": "fetch"}, summarize])
    ordered = await pipeline(tenant.http, "ordered", [CALC | {"id": "a"}, CALC | {"id": "b", "needs": ["a"]}])
    mapped = await pipeline(
        tenant.http, "map", [{"id": "each", "type": "map", "over": "[1]", "step": CALC, "max_concurrency": 5}]
    )
    await history(
        engine,
        tenant.id,
        pipeline_runs=[
            (failing["id"], 1, bh.failing_step_run, 200),
            (ordered["id"], 1, bh.ordered_run, 60),
            (mapped["id"], 1, bh.map_run, 40),
        ],
    )
    found = {f.rule: f for f in await findings(engine, tenant.id, "pipeline")}
    assert set(found) == {"pipeline.failing_step", "pipeline.concurrency", "pipeline.slow_map"}
    retry = found["pipeline.failing_step"]
    assert retry.target == {"type": "pipeline", "pipeline_id": failing["id"], "step_id": "fetch"}
    _contains(retry.evidence["metric"], 0.3)
    assert retry.action["ops"] == [
        {"op": "set_step", "step_id": "fetch", "values": {"retry": {"max_attempts": 3, "backoff_s": 2.0}}}
    ]
    overlap = found["pipeline.concurrency"]
    assert overlap.action["ops"] == [{"op": "remove_need", "step_id": "b", "need": "a"}]
    assert 2.0 <= overlap.evidence["metric"]["value"] <= 4.0  # the shorter of a (3-5 s) and b (2-4 s)
    wider = found["pipeline.slow_map"]
    assert wider.action["ops"] == [{"op": "set_step", "step_id": "each", "values": {"max_concurrency": 10}}]
    assert 3.5 <= wider.evidence["metric"]["value"] <= 4.5  # 8 rounds of 1 s become 4


async def test_a_replay_shows_the_cheaper_model_holds(tenant: TenantCtx, engine: AsyncEngine) -> None:
    """A version never run live: a completed, scored counterfactual replay on the current version's runs is the
    evidence (its cost per run from the replay), and no further check is proposed."""
    await tools(tenant.http, "lookup")
    made = await agent(tenant.http, ["lookup"], model={"provider": "local", "name": "gpt-4o-mini"})
    switched = await tenant.http.patch(
        f"/v1/agents/{made['id']}", json={"model": {"provider": "local", "name": "gpt-4o"}}
    )
    assert switched.status_code == 200
    dear = partial(bh.model_run, cost=0.01, mean=0.8, model="local:gpt-4o")
    recorded = await history(engine, tenant.id, [(made["id"], 2, dear, 60)])
    replay = Replay(
        id=new_id("rpl"),
        tenant_id=tenant.id,
        agent_id=made["id"],
        version=1,
        status="completed",
        run_ids=recorded[:30],
        workflow_id="w",
    )
    rng = random.Random(5)
    results = [
        ReplayResult(
            tenant_id=tenant.id,
            replay_id=replay.id,
            run_id=run_id,
            outcome="completed",
            recorded_score=0.8,
            candidate_score=round(0.8 + rng.uniform(-0.05, 0.04), 3),
            tool_calls=[],
            cost_usd=0.001,
        )
        for run_id in recorded[:30]
    ]
    async with make_sessionmaker(engine)() as session:
        session.add(replay)
        await session.flush()
        session.add_all(results)
        await session.commit()
    (found,) = await findings(engine, tenant.id, "model")
    assert found.evidence["numbers"]["source"] == "counterfactual replay"
    assert found.evidence["numbers"]["replay_ids"] == [replay.id]
    assert found.evidence["metric"]["n"] == 30
    assert found.evidence["metric"]["ci"][0] > -0.05
    assert "check" not in found.evidence
    assert found.action["ops"][0]["model"]["name"] == "gpt-4o-mini"
