"""The step graph of a definition: start order in waves, and upstream/downstream closures.

Edges: a step depends on the steps in its ``needs`` and on the steps its expressions read
(``steps.<id>``), its map's step's included. Validation requires every such read to be
upstream through ``needs`` already, so for a valid definition both give the same graph;
the reads are still included so that a closure never misses a dependency.

``waves()``: the first wave holds the steps that need nothing; each next wave the steps
whose dependencies are all in earlier waves. Steps of one wave can run concurrently; a
step may start before its whole wave does (as soon as its own needs have finished).

Re-runs: ``rerun_split(from_step)`` gives the steps whose recorded outcome a new run reuses
(everything not downstream of ``from_step``) and the steps it runs again (``from_step`` and
everything downstream of it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.pipelines.definition import Definition, MapStep, expression_fields, pointer
from core.pipelines.expressions import compile_expression, template_expressions


def step_references(definition: Definition, index: int) -> frozenset[str]:
    """Step ids read by the expressions of top-level step ``index`` (its map's steps included)."""
    found: set[str] = set()
    step = definition.steps[index]
    at = pointer("", "steps", index)
    while True:
        for field in expression_fields(step, at):
            texts = template_expressions(field.text) if field.template else (field.text,)
            for text in texts:
                found |= compile_expression(text).steps
        if not isinstance(step, MapStep):
            return frozenset(found)
        step, at = step.step, at + "/step"


def find_cycle(order: Sequence[str], edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as ``[a, b, …, a]`` (``a`` depends on ``b`` …), or ``None``; ignores unknown ids."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in order:
        if state.get(root):
            continue
        path: list[str] = [root]
        iterators = [iter(edges.get(root, ()))]
        state[root] = 1
        while iterators:
            nxt = next(iterators[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iterators.pop()
            elif nxt not in edges:
                continue
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                iterators.append(iter(edges.get(nxt, ())))
    return None


@dataclass(frozen=True)
class Graph:
    """Dependencies between the top-level steps of an acyclic definition."""

    order: tuple[str, ...]
    """Step ids in definition order."""
    depends: Mapping[str, tuple[str, ...]]
    """Each step's direct dependencies (``needs``, then expression reads not among them)."""

    @classmethod
    def from_definition(cls, definition: Definition, *, references: bool = True) -> Graph:
        """The graph of a valid definition (with ``references=False``, of ``needs`` alone)."""
        depends: dict[str, tuple[str, ...]] = {}
        for index, step in enumerate(definition.steps):
            extra = sorted(step_references(definition, index) - set(step.needs)) if references else []
            depends[step.id] = (*dict.fromkeys(step.needs), *extra)
        return cls(order=tuple(s.id for s in definition.steps), depends=depends)

    def waves(self) -> list[list[str]]:
        """Steps grouped by the earliest wave they can start in (definition order within a wave)."""
        wave_of: dict[str, int] = {}
        remaining = list(self.order)
        while remaining:
            placed = [s for s in remaining if all(d in wave_of for d in self.depends[s])]
            if not placed:
                raise ValueError(f"the steps {remaining} depend on each other in a cycle")
            for step_id in placed:
                wave_of[step_id] = 1 + max((wave_of[d] for d in self.depends[step_id]), default=-1)
            remaining = [s for s in remaining if s not in wave_of]
        waves: list[list[str]] = [[] for _ in range(1 + max(wave_of.values(), default=-1))]
        for step_id in self.order:
            waves[wave_of[step_id]].append(step_id)
        return waves

    def upstream_of(self, step_id: str) -> frozenset[str]:
        """The steps ``step_id`` depends on, directly or transitively (not itself)."""
        return self._closure(step_id, self.depends)

    def downstream_of(self, step_id: str) -> frozenset[str]:
        """The steps that depend on ``step_id``, directly or transitively (not itself)."""
        dependents: dict[str, list[str]] = {s: [] for s in self.order}
        for step, deps in self.depends.items():
            for dep in deps:
                dependents[dep].append(step)
        return self._closure(step_id, dependents)

    def rerun_split(self, from_step: str) -> tuple[frozenset[str], frozenset[str]]:
        """``(reused, rerun)``: steps whose outcome a re-run from ``from_step`` keeps, and those it runs."""
        if from_step not in self.depends:
            raise KeyError(from_step)
        rerun = self.downstream_of(from_step) | {from_step}
        return frozenset(self.order) - rerun, rerun

    def _closure(self, start: str, edges: Mapping[str, Iterable[str]]) -> frozenset[str]:
        if start not in self.depends:
            raise KeyError(start)
        seen: set[str] = set()
        stack = list(edges[start])
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(edges[node])
        return frozenset(seen)

    def plan(self) -> dict[str, Any]:
        """The plan ``POST /v1/pipelines/validate`` answers: waves, and each step's direct dependencies."""
        return {
            "waves": self.waves(),
            "steps": [{"id": s, "needs": list(self.depends[s])} for s in self.order],
        }
