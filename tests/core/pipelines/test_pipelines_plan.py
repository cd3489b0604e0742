"""The step graph: waves, upstream/downstream closures and the re-run split."""

from __future__ import annotations

from typing import Any

import pytest

from core.pipelines.definition import Definition
from core.pipelines.plan import Graph, find_cycle


def _wait(step_id: str, *needs: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "wait", "seconds": 1, "needs": list(needs), **extra}


#   a ─┬─ c ── e
#   b ─┘       │
#   d ─────────┴─ f        g (alone)
DIAMOND = Definition.model_validate(
    {
        "steps": [
            _wait("a"),
            _wait("b"),
            _wait("c", "a", "b"),
            _wait("d"),
            _wait("e", "c"),
            _wait("f", "e", "d"),
            _wait("g"),
        ]
    }
)


def test_waves_group_the_steps_that_can_start_together() -> None:
    assert Graph.from_definition(DIAMOND).waves() == [["a", "b", "d", "g"], ["c"], ["e"], ["f"]]


def test_closures() -> None:
    graph = Graph.from_definition(DIAMOND)
    assert graph.downstream_of("a") == {"c", "e", "f"}
    assert graph.downstream_of("d") == {"f"}
    assert graph.downstream_of("f") == frozenset()
    assert graph.upstream_of("f") == {"a", "b", "c", "d", "e"}
    assert graph.upstream_of("a") == frozenset()
    with pytest.raises(KeyError):
        graph.downstream_of("nope")


def test_a_rerun_reuses_every_step_that_does_not_depend_on_its_start() -> None:
    reused, rerun = Graph.from_definition(DIAMOND).rerun_split("c")
    assert rerun == {"c", "e", "f"}
    assert reused == {"a", "b", "d", "g"}


def test_expression_reads_count_as_dependencies_even_outside_needs() -> None:
    """Validation refuses such reads; the closures still never miss one."""
    definition = Definition.model_validate(
        {
            "steps": [
                _wait("a"),
                {"id": "b", "type": "tool", "tool": "calculator", "args": {"x": "${steps.a.output}"}},
                _wait("c", **{"if": "steps.b.status == 'completed'"}),
                {
                    "id": "m",
                    "type": "map",
                    "over": "[1]",
                    "step": {"type": "tool", "tool": "calculator", "args": {"x": "${steps.c.output}"}},
                },
            ]
        }
    )
    graph = Graph.from_definition(definition)
    assert graph.depends == {"a": (), "b": ("a",), "c": ("b",), "m": ("c",)}
    assert graph.downstream_of("a") == {"b", "c", "m"}
    assert Graph.from_definition(definition, references=False).downstream_of("a") == frozenset()


def test_find_cycle_names_the_loop() -> None:
    edges = {"a": ["b"], "b": ["c"], "c": ["a", "x"], "d": []}
    assert find_cycle(list(edges), edges) == ["a", "b", "c", "a"]
    assert find_cycle(["a", "b"], {"a": ["b"], "b": []}) is None
    assert find_cycle(["a"], {"a": ["a"]}) == ["a", "a"]
