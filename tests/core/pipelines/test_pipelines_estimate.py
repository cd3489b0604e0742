"""The validate plan's cost estimate from the agents' mean recent costs (pure part)."""

from __future__ import annotations

from typing import Any

from core.pipelines.estimate import agent_ids, with_cost_estimate
from core.pipelines.validation import StaticCatalog, validate

CATALOG = StaticCatalog(
    agents=frozenset({"agt_a", "agt_b"}), tools=frozenset({"calculator"}), pipelines=frozenset({"pip_s"})
)


def _plan(steps: list[dict[str, Any]], costs: dict[str, float]) -> dict[str, Any]:
    result = validate({"steps": steps}, CATALOG)
    assert result.plan is not None, result.errors
    assert result.definition is not None
    return with_cost_estimate(result.plan, result.definition, costs)


def test_steps_are_estimated_by_type_and_maps_per_item() -> None:
    steps = [
        {"id": "a", "type": "agent", "agent_id": "agt_a"},
        {"id": "t", "type": "tool", "tool": "calculator", "args": {"expression": "1"}},
        {"id": "w", "type": "wait", "seconds": 1},
        {"id": "ok", "type": "approval"},
        {"id": "m", "type": "map", "over": "[1]", "step": {"type": "agent", "agent_id": "agt_b"}},
        {
            "id": "mm",
            "type": "map",
            "over": "[1]",
            "step": {"type": "map", "over": "[2]", "step": {"type": "wait", "seconds": 0}},
        },
    ]
    plan = _plan(steps, {"agt_a": 0.25, "agt_b": 0.5})
    assert [s["cost_estimate_usd"] for s in plan["steps"]] == [0.25, 0.0, 0.0, 0.0, None, None]
    assert plan["steps"][4]["cost_estimate_per_item_usd"] == 0.5
    assert plan["steps"][5]["cost_estimate_per_item_usd"] is None  # an inner map: unknown per outer item
    assert plan["cost_estimate_usd"] == 0.25
    assert "cost_estimate_per_item_usd" not in plan["steps"][0]


def test_an_agent_without_history_or_a_sub_pipeline_leaves_the_total_unknown() -> None:
    agent = {"id": "a", "type": "agent", "agent_id": "agt_a"}
    assert _plan([agent], {})["cost_estimate_usd"] is None
    sub = {"id": "s", "type": "pipeline", "pipeline_id": "pip_s"}
    assert _plan([agent, sub], {"agt_a": 0.1})["cost_estimate_usd"] is None
    assert _plan([{"id": "w", "type": "wait", "seconds": 0}], {})["cost_estimate_usd"] == 0.0


def test_agent_ids_include_map_steps() -> None:
    result = validate(
        {"steps": [{"id": "m", "type": "map", "over": "[1]", "step": {"type": "agent", "agent_id": "agt_b"}}]}, CATALOG
    )
    assert result.definition is not None
    assert agent_ids(result.definition) == {"agt_b"}
