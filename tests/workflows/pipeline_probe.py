"""A tiny workflow that runs the pipeline domain layer (CEL, templates, scheduler) inside the sandbox.

The domain modules are imported inside ``workflow.unsafe.imports_passed_through()``: the
sandbox then uses the worker's already-loaded celpy, lark, re2 and pendulum instead of
re-importing them for every run (the pipeline workflow must do the same, or list these
packages among the worker's pass-through modules).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from core.pipelines.expressions import ExpressionError, Scope, evaluate, render
    from core.pipelines.scheduler import Scheduler
    from core.pipelines.validation import load_definition


@dataclass(kw_only=True)
class ProbeInput:
    expression: str
    template: Any
    run_input: Any = None
    definition: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class ProbeResult:
    value: Any = None
    rendered: Any = None
    error: dict[str, Any] | None = None
    launches: dict[str, Any] = field(default_factory=dict)


@workflow.defn
class PipelineProbeWorkflow:
    """Evaluates ``expression`` and renders ``template`` over ``run_input``; starts ``definition``."""

    @workflow.run
    async def run(self, probe: ProbeInput) -> ProbeResult:
        scope = Scope({"input": probe.run_input, "steps": {}})
        result = ProbeResult(rendered=render(probe.template, scope))
        try:
            result.value = evaluate(probe.expression, scope)
        except ExpressionError as exc:
            result.error = exc.to_error()
        advance = Scheduler(load_definition(probe.definition), probe.run_input).advance({})
        result.launches = {launch.step_id: launch.arguments for launch in advance.launches}
        return result
