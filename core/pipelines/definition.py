"""The pipeline definition language: pydantic models of ``{inputs?, steps, output?}`` and their limits.

A definition is JSON a tenant saves; a run interprets a snapshot of it. Besides its steps it
may bound its runs: ``max_concurrent_runs`` with ``on_concurrency_limit`` (``queue`` |
``reject``) and a cost ``budget_usd`` per run. Steps form a DAG
through ``needs``; each step has a ``type`` (the discriminator) and the fields of that type::

    agent    {agent_id, input}                  an agent run; its answer is the output
    tool     {tool, args}                       a built-in or tenant tool
    approval {prompt?, timeout_s?, on_timeout?} waits for a human decision
    wait     {seconds}                          a durable timer
    map      {over, step, max_concurrency?}     runs ``step`` once per item of the list ``over``
    pipeline {pipeline_id, input}               a sub-pipeline run

Common fields: ``id`` (a CEL identifier, so ``steps.<id>`` works), ``needs``, ``if`` (CEL),
``retry {max_attempts, backoff_s}``, ``timeout_s``, ``on_error`` (``fail`` | ``continue``).
The step inside a ``map`` has no ``needs`` (it runs once per item as soon as the map starts)
and its ``id`` is optional (a label). Inside it, expressions may also use ``item`` (the
current element) and ``index`` (its position); in nested maps they name the innermost one.
Per-field bounds are enforced here; the rules that span steps (ids, graph, expressions,
catalog, nesting, totals) are in ``core.pipelines.validation``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from core.contracts.pipelines import OnConcurrencyLimit, OnError, OnTimeout, StepType
from core.validation import CleanModel

MAX_STEPS = 100
"""Steps of one definition, counting the steps inside ``map`` steps."""
MAX_NESTING_DEPTH = 3
"""``map`` steps nested inside one another (a top-level map is depth 1)."""
MAX_DEFINITION_BYTES = 256 * 1024
"""Size of a definition's JSON text."""
MAX_JSON_DEPTH = 48
"""Nesting of a definition's JSON (objects and arrays), checked before parsing."""
MAX_ID_CHARS = 64
MAX_REF_CHARS = 100
"""Length of ``agent_id``, ``pipeline_id`` and ``tool``."""
MAX_PROMPT_CHARS = 4000
MAX_MAP_CONCURRENCY = 50
DEFAULT_MAP_CONCURRENCY = 10
MAX_ATTEMPTS = 10
MAX_BACKOFF_S = 3600.0
MAX_TIMEOUT_S = 7 * 24 * 3600.0
"""``timeout_s`` of an agent, tool, map or pipeline step (one attempt)."""
MAX_APPROVAL_TIMEOUT_S = 30 * 24 * 3600.0
MAX_WAIT_S = 30 * 24 * 3600.0
MAX_CONCURRENT_RUNS = 1000
"""``max_concurrent_runs`` of a pipeline."""
MAX_BUDGET_USD = 1_000_000.0
"""``budget_usd`` of one run."""
MAX_EXPRESSION_FIELD_CHARS = 2000
"""Length of an ``if``, ``over`` or ``output`` expression (see ``core.pipelines.expressions``)."""

CEL_RESERVED = frozenset(
    {
        "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function",
        "if", "import", "let", "loop", "package", "namespace", "return", "var", "void", "while",
    }
)  # fmt: skip
"""Words CEL reserves: not usable as step ids (``steps.if`` would not parse)."""

STEP_ID_PATTERN = rf"^[A-Za-z_][A-Za-z0-9_]{{0,{MAX_ID_CHARS - 1}}}$"
REF_PATTERN = rf"^[A-Za-z0-9_\-]{{1,{MAX_REF_CHARS}}}$"
TOOL_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"

StepId = Annotated[str, Field(pattern=STEP_ID_PATTERN)]
Expression = Annotated[str, Field(min_length=1, max_length=MAX_EXPRESSION_FIELD_CHARS)]
JsonValue = Any
"""Any JSON value; strings in it may embed ``${<CEL>}`` templates."""


class RetryPolicy(CleanModel):
    """Attempts of a step and the pause between them (``backoff_s`` doubles after each attempt)."""

    max_attempts: int = Field(default=1, ge=1, le=MAX_ATTEMPTS)
    backoff_s: float = Field(default=1.0, ge=0, le=MAX_BACKOFF_S)


class StepBase(CleanModel):
    """Fields every step has."""

    id: str = Field(default="", pattern=STEP_ID_PATTERN)
    """Required on top-level steps (checked by validation); optional label on a map's step."""
    needs: list[StepId] = Field(default_factory=list, max_length=MAX_STEPS)
    if_: Expression | None = Field(default=None, alias="if")
    retry: RetryPolicy | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT_S)
    on_error: OnError = OnError.FAIL


class AgentStep(StepBase):
    """Runs an agent of the tenant with ``input`` (templated); the agent's answer is the output."""

    type: Literal[StepType.AGENT]
    agent_id: str = Field(pattern=REF_PATTERN)
    input: JsonValue = None


class ToolStep(StepBase):
    """Calls a built-in or tenant tool with ``args`` (templated); the tool's result is the output."""

    type: Literal[StepType.TOOL]
    tool: str = Field(pattern=TOOL_PATTERN)
    args: dict[str, JsonValue] = Field(default_factory=dict)


class ApprovalStep(StepBase):
    """Waits for a decision; ``timeout_s`` bounds the wait and ``on_timeout`` decides then."""

    type: Literal[StepType.APPROVAL]
    prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    timeout_s: float | None = Field(default=None, gt=0, le=MAX_APPROVAL_TIMEOUT_S)
    on_timeout: OnTimeout = OnTimeout.REJECT


class WaitStep(StepBase):
    """A durable timer of ``seconds``."""

    type: Literal[StepType.WAIT]
    seconds: float = Field(ge=0, le=MAX_WAIT_S)


class MapStep(StepBase):
    """Runs ``step`` once per element of the list ``over`` evaluates to; the output is the list of outputs."""

    type: Literal[StepType.MAP]
    over: Expression
    step: Step
    max_concurrency: int = Field(default=DEFAULT_MAP_CONCURRENCY, ge=1, le=MAX_MAP_CONCURRENCY)


class PipelineStep(StepBase):
    """Runs another pipeline of the tenant (its current version) with ``input`` (templated)."""

    type: Literal[StepType.PIPELINE]
    pipeline_id: str = Field(pattern=REF_PATTERN)
    input: JsonValue = None


def _step_type(value: Any) -> str | None:
    """The discriminator of a step: its ``type`` (a callable, as ``CleanModel`` validates every field first)."""
    found = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return str(found) if isinstance(found, str) else None


Step = Annotated[
    Annotated[AgentStep, Tag(StepType.AGENT)]
    | Annotated[ToolStep, Tag(StepType.TOOL)]
    | Annotated[ApprovalStep, Tag(StepType.APPROVAL)]
    | Annotated[WaitStep, Tag(StepType.WAIT)]
    | Annotated[MapStep, Tag(StepType.MAP)]
    | Annotated[PipelineStep, Tag(StepType.PIPELINE)],
    Discriminator(
        _step_type,
        custom_error_type="step_type",
        custom_error_message=f"unknown step type (expected one of {', '.join(StepType)})",
    ),
]
MapStep.model_rebuild()


class Definition(CleanModel):
    """A whole pipeline definition."""

    inputs: dict[str, JsonValue] | None = None
    """A JSON Schema (Draft 2020-12) the run input must match."""
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    output: Expression | None = None
    """The run's output; without it the output is ``null``."""
    max_concurrent_runs: int | None = Field(default=None, ge=1, le=MAX_CONCURRENT_RUNS)
    """Live runs (``queued``, ``running``, ``waiting_approval``) of the pipeline at once; ``None``: no limit."""
    on_concurrency_limit: OnConcurrencyLimit = OnConcurrencyLimit.QUEUE
    """What starting a run at the limit does: wait ``queued`` for a slot, or refuse the start (429)."""
    budget_usd: float | None = Field(default=None, gt=0, le=MAX_BUDGET_USD)
    """The run fails (``PipelineBudgetExceeded``) once its agent steps cost more than this."""


AnyStep = AgentStep | ToolStep | ApprovalStep | WaitStep | MapStep | PipelineStep


def escape_token(token: str | int) -> str:
    """One reference token of an RFC 6901 JSON pointer (``~`` → ``~0``, ``/`` → ``~1``)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(base: str, *tokens: str | int) -> str:
    """``base`` extended by ``tokens`` (each escaped)."""
    return base + "".join("/" + escape_token(t) for t in tokens)


@dataclass(frozen=True, kw_only=True)
class StepSite:
    """A step of a definition with where it is."""

    step: AnyStep
    pointer: str
    """``/steps/3`` for a top-level step, ``/steps/3/step`` for the step of that map."""
    top: AnyStep
    """The top-level step that holds it (itself at the top)."""
    depth: int
    """Maps around it: 0 for a top-level step."""


def walk_steps(definition: Definition) -> Iterator[StepSite]:
    """Every step, top-level and inside maps, in definition order (each map before its step)."""
    for index, top in enumerate(definition.steps):
        step: AnyStep = top
        at = pointer("", "steps", index)
        depth = 0
        while True:
            yield StepSite(step=step, pointer=at, top=top, depth=depth)
            if not isinstance(step, MapStep):
                break
            step, at, depth = step.step, at + "/step", depth + 1


MAX_STEP_EXPRESSION_CHARS = 4000
"""Characters of all the expressions of one step (``if``, ``over``, templates), not counting a map's step."""
MAX_DEFINITION_EXPRESSION_CHARS = 20_000
"""Characters of all the expressions of a definition (parsing costs about 0.1 ms per token)."""


@dataclass(frozen=True, kw_only=True)
class ExpressionField:
    """A place in a step that holds CEL: an expression field or a string that may hold templates."""

    pointer: str
    text: str
    template: bool
    """``True``: ``text`` is a string whose ``${…}`` parts are expressions."""


def expression_fields(step: AnyStep, at: str) -> Iterator[ExpressionField]:
    """The expressions and template strings of ``step`` itself (not of a map's step), in field order."""
    if step.if_ is not None:
        yield ExpressionField(pointer=pointer(at, "if"), text=step.if_, template=False)
    if isinstance(step, MapStep):
        yield ExpressionField(pointer=pointer(at, "over"), text=step.over, template=False)
    for name, value in templated_values(step):
        for where, text in string_leaves(value, pointer(at, name)):
            if "${" in text:
                yield ExpressionField(pointer=where, text=text, template=True)


def templated_values(step: AnyStep) -> Iterator[tuple[str, JsonValue]]:
    """The step's fields whose strings may hold ``${…}`` templates: ``(field name, value)``."""
    if isinstance(step, AgentStep | PipelineStep):
        yield "input", step.input
    elif isinstance(step, ToolStep):
        yield "args", step.args
    elif isinstance(step, ApprovalStep) and step.prompt is not None:
        yield "prompt", step.prompt


def string_leaves(value: JsonValue, at: str) -> Iterator[tuple[str, str]]:
    """Every string inside a JSON value with its pointer (object keys are not templates)."""
    stack: list[tuple[JsonValue, str]] = [(value, at)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            yield where, node
        elif isinstance(node, dict):
            stack.extend((item, pointer(where, key)) for key, item in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((item, pointer(where, i)) for i, item in reversed(list(enumerate(node))))


def json_depth(value: Any) -> int:
    """Nesting of objects and arrays in a JSON value (0 for a scalar), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            stack.extend((child, depth) for child in (node.values() if isinstance(node, dict) else node))
    return deepest
