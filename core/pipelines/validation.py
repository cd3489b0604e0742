"""Validation of a pipeline definition (at save and ``POST /v1/pipelines/validate``) and of a run's input.

``validate(definition_json, catalog)`` answers ``ValidationResult(valid, errors, plan)``;
every error names its place as an RFC 6901 JSON pointer into the submitted definition
(``/steps/3/if``, ``/steps/0/needs/1``, ``/steps/2/step/args/x``; ``""`` for the whole).

Checks, in order (a definition that does not parse gets only the parse errors):

1. Shape: a JSON object of at most ``MAX_DEFINITION_BYTES`` nested at most ``MAX_JSON_DEPTH``.
2. Parse (``core.pipelines.definition``): known step types and fields, per-field bounds.
3. Steps: top-level ids present and unique; a map's step has no ``needs``; maps nest at most
   ``MAX_NESTING_DEPTH``; at most ``MAX_STEPS`` steps counting maps' steps; ``retry`` only on
   steps that can be retried (not approval, wait), ``timeout_s`` not on wait.
4. Graph: ``needs`` name known steps, not the step itself, once each; no cycles (the message
   names the cycle, ``a → b → a``).
5. Catalog: ``agent_id``, ``tool`` and ``pipeline_id`` exist for the tenant.
6. Expressions (``if``, ``over``, ``output``, ``${…}`` in ``input``/``args``/``prompt``): they
   parse; they use only ``input``, ``steps`` (and ``item``/``index`` inside a map's step) and
   standard functions; ``steps.<id>`` names a known step that is *upstream* of the step (a
   transitive ``needs``; ``output`` may read any step). Reads are not turned into implicit
   dependencies: the graph stays exactly what ``needs`` says, and the plan shows it.
   Expression text is bounded per step and per definition.
7. Run bounds: ``max_concurrent_runs`` 1–1000, ``on_concurrency_limit`` (``queue`` |
   ``reject``, only with ``max_concurrent_runs``), ``budget_usd`` > 0.
8. ``inputs``: a valid JSON Schema (Draft 2020-12) with local ``$ref`` only, ``pattern``
   in RE2 syntax (matched by RE2: linear time) and no ``patternProperties``.

``validate_input(schema, value)`` checks a run input against ``inputs`` with pointers
under ``/input``. Both are pure: the catalog is passed in (``StaticCatalog`` holds sets
loaded beforehand). They are CPU-bound (up to about a second for the largest definitions):
call them off the event loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import re2
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError
from jsonschema.exceptions import ValidationError as SchemaValidationError
from pydantic import ValidationError
from referencing.exceptions import Unresolvable

from core.contracts.pipelines import StepType
from core.pipelines.definition import (
    CEL_RESERVED,
    MAX_DEFINITION_BYTES,
    MAX_DEFINITION_EXPRESSION_CHARS,
    MAX_JSON_DEPTH,
    MAX_NESTING_DEPTH,
    MAX_STEP_EXPRESSION_CHARS,
    MAX_STEPS,
    REF_PATTERN,
    STEP_ID_PATTERN,
    TOOL_PATTERN,
    AgentStep,
    AnyStep,
    ApprovalStep,
    Definition,
    PipelineStep,
    ToolStep,
    WaitStep,
    expression_fields,
    json_depth,
    pointer,
    walk_steps,
)
from core.pipelines.expressions import (
    MAP_NAMES,
    ROOT_NAMES,
    Compiled,
    ExpressionError,
    compile_expression,
    json_size,
    template_expressions,
    unknown_names,
)
from core.pipelines.plan import Graph, find_cycle
from core.validation import FieldError


@dataclass(frozen=True, kw_only=True)
class ValidationResult:
    """The answer of ``validate``: errors (empty when valid), the plan and the parsed definition when valid."""

    errors: tuple[FieldError, ...] = ()
    plan: dict[str, Any] | None = None
    definition: Definition | None = None

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        """The body of ``POST /v1/pipelines/validate``."""
        return {"valid": self.valid, "errors": [e.to_json() for e in self.errors], "plan": self.plan}


class Catalog(Protocol):
    """What the tenant has that a definition may name (the API builds one from the database)."""

    def agent_exists(self, agent_id: str) -> bool: ...

    def tool_exists(self, name: str) -> bool: ...

    def pipeline_exists(self, pipeline_id: str) -> bool: ...


@dataclass(frozen=True, kw_only=True)
class StaticCatalog:
    """A ``Catalog`` over sets loaded beforehand (keeps validation pure)."""

    agents: frozenset[str] = frozenset()
    tools: frozenset[str] = frozenset()
    pipelines: frozenset[str] = frozenset()

    def agent_exists(self, agent_id: str) -> bool:
        return agent_id in self.agents

    def tool_exists(self, name: str) -> bool:
        return name in self.tools

    def pipeline_exists(self, pipeline_id: str) -> bool:
        return pipeline_id in self.pipelines


def validate(definition: Any, catalog: Catalog) -> ValidationResult:
    """Every problem of ``definition`` (submitted JSON), and its plan when there is none."""
    shape = _shape_errors(definition)
    if shape:
        return ValidationResult(errors=tuple(shape))
    try:
        model = Definition.model_validate(definition)
    except ValidationError as exc:
        return ValidationResult(errors=tuple(_parse_errors(exc, definition)))
    errors = _Checker(model, catalog).run()
    if errors:
        return ValidationResult(errors=tuple(sorted(errors, key=_document_order)))
    return ValidationResult(plan=Graph.from_definition(model).plan(), definition=model)


def load_definition(snapshot: dict[str, Any]) -> Definition:
    """A saved (validated) definition parsed again, as the workflow does; raises ``pydantic.ValidationError``."""
    return Definition.model_validate(snapshot)


def _document_order(error: FieldError) -> list[tuple[int, int | str]]:
    """Sort key: ``inputs``, ``steps``, ``output``, then places in order (array indexes numerically)."""
    tokens = error.field.split("/")[1:]
    rank = {"inputs": 0, "steps": 1, "output": 2}.get(tokens[0], -1) if tokens else -1
    return [(rank, ""), *((0, int(t)) if t.isdigit() else (1, t) for t in tokens[1:])]


# --- shape and parse errors -----------------------------------------------------------------


def _shape_errors(definition: Any) -> list[FieldError]:
    if not isinstance(definition, dict):
        return [FieldError(field="", message="must be an object with steps")]
    if json_depth(definition) > MAX_JSON_DEPTH:
        return [FieldError(field="", message=f"nested more than {MAX_JSON_DEPTH} levels deep")]
    try:
        size = json_size(definition)
    except (TypeError, ValueError):
        return [FieldError(field="", message="must be JSON")]
    if size > MAX_DEFINITION_BYTES:
        return [FieldError(field="", message=f"larger than {MAX_DEFINITION_BYTES} bytes of JSON")]
    return []


_STEP_TYPES = f"expected one of {', '.join(StepType)}"
_PATTERN_MESSAGES = {
    STEP_ID_PATTERN: "must be a step id: a letter or _, then letters, digits or _ (at most 64 characters)",
    REF_PATTERN: "must be an id: letters, digits, _ or - (at most 100 characters)",
    TOOL_PATTERN: "must be a tool name: a letter, then letters, digits or _ (at most 64 characters)",
}


def _parse_errors(exc: ValidationError, data: Any) -> Iterator[FieldError]:
    for error in exc.errors(include_url=False):
        tokens, node = _loc_tokens(error["loc"], data)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "step_type":
            if not isinstance(node, dict):
                message = "must be an object (a step)"
            else:
                tokens.append("type")
                found = node.get("type")
                message = "is required" if found is None else f"unknown step type {found!r} ({_STEP_TYPES})"
        elif error["type"] == "string_pattern_mismatch":
            message = _PATTERN_MESSAGES.get(str((error.get("ctx") or {}).get("pattern")), message)
        elif error["type"] == "missing":
            message = "is required"
        elif error["type"] == "extra_forbidden":
            message = "is not a known field"
        yield FieldError(field=pointer("", *tokens), message=message)


def _loc_tokens(loc: tuple[int | str, ...], data: Any) -> tuple[list[str | int], Any]:
    """Pydantic's location as pointer tokens (dropping the union tags it inserts) and the node there."""
    tokens: list[str | int] = []
    node = data
    tag_next = False
    for part in loc:
        if tag_next and isinstance(node, dict) and part == node.get("type"):
            tag_next = False
            continue
        tokens.append(part)
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
        tag_next = (tokens == ["steps", tokens[-1]] and isinstance(part, int)) or part == "step"
    return tokens, node


# --- semantic checks ----------------------------------------------------------------------


@dataclass
class _Checker:
    definition: Definition
    catalog: Catalog
    errors: list[FieldError] = field(default_factory=list)

    def error(self, at: str, message: str) -> None:
        self.errors.append(FieldError(field=at, message=message))

    def run(self) -> list[FieldError]:
        self.check_steps()
        ids = self.check_ids()
        needs = self.check_needs(ids)
        self.check_cycles(needs)
        self.check_expressions(ids, needs)
        if "on_concurrency_limit" in self.definition.model_fields_set and self.definition.max_concurrent_runs is None:
            self.error("/on_concurrency_limit", "applies only with max_concurrent_runs")
        if self.definition.inputs is not None:
            self.errors.extend(schema_errors(self.definition.inputs, "/inputs"))
        return self.errors

    def check_steps(self) -> None:
        total = 0
        for site in walk_steps(self.definition):
            total += 1
            step, at = site.step, site.pointer
            if site.depth and step.needs:
                self.error(pointer(at, "needs"), "a map's step runs once per item: it cannot have needs")
            if site.depth > MAX_NESTING_DEPTH:
                self.error(at, f"maps nest at most {MAX_NESTING_DEPTH} deep")
            if step.retry is not None and isinstance(step, ApprovalStep | WaitStep):
                self.error(pointer(at, "retry"), f"{step.type} steps are not retried")
            if step.timeout_s is not None and isinstance(step, WaitStep):
                self.error(pointer(at, "timeout_s"), "wait steps take seconds, not timeout_s")
            self.check_catalog(step, at)
        if total > MAX_STEPS:
            self.error("/steps", f"at most {MAX_STEPS} steps, counting the steps of maps ({total} given)")

    def check_catalog(self, step: AnyStep, at: str) -> None:
        if isinstance(step, AgentStep) and not self.catalog.agent_exists(step.agent_id):
            self.error(pointer(at, "agent_id"), f"unknown agent {step.agent_id!r}")
        elif isinstance(step, ToolStep) and not self.catalog.tool_exists(step.tool):
            self.error(pointer(at, "tool"), f"unknown tool {step.tool!r}")
        elif isinstance(step, PipelineStep) and not self.catalog.pipeline_exists(step.pipeline_id):
            self.error(pointer(at, "pipeline_id"), f"unknown pipeline {step.pipeline_id!r}")

    def check_ids(self) -> dict[str, int]:
        """Top-level ids → index of their first step."""
        ids: dict[str, int] = {}
        for index, step in enumerate(self.definition.steps):
            at = pointer("", "steps", index, "id")
            if not step.id:
                self.error(at, "is required")
            elif step.id in CEL_RESERVED:
                self.error(at, f"{step.id!r} is a reserved word in expressions")
            elif step.id in ids:
                self.error(at, f"duplicate step id {step.id!r} (also /steps/{ids[step.id]}/id)")
            else:
                ids[step.id] = index
        return ids

    def check_needs(self, ids: dict[str, int]) -> dict[str, list[str]]:
        """Each (first) step's known needs."""
        needs: dict[str, list[str]] = {}
        for index, step in enumerate(self.definition.steps):
            known: list[str] = []
            for position, need in enumerate(step.needs):
                at = pointer("", "steps", index, "needs", position)
                if need == step.id:
                    self.error(at, "a step cannot need itself")
                elif need not in ids:
                    self.error(at, f"unknown step {need!r}")
                elif need in known:
                    self.error(at, f"{need!r} is listed twice")
                else:
                    known.append(need)
            if step.id and ids.get(step.id) == index:
                needs[step.id] = known
        return needs

    def check_cycles(self, needs: dict[str, list[str]]) -> None:
        edges = {k: list(v) for k, v in needs.items()}
        while cycle := find_cycle(list(edges), edges):
            first, second = cycle[0], cycle[1]
            index = next(i for i, s in enumerate(self.definition.steps) if s.id == first)
            position = self.definition.steps[index].needs.index(second)
            self.error(
                pointer("", "steps", index, "needs", position), f"steps depend on each other: {' → '.join(cycle)}"
            )
            edges[first].remove(second)  # report each cycle once, then look for others

    def check_expressions(self, ids: dict[str, int], needs: dict[str, list[str]]) -> None:
        graph = Graph(order=tuple(needs), depends={k: tuple(v) for k, v in needs.items()})
        total = 0
        for site in walk_steps(self.definition):
            top = site.top.id
            upstream = graph.upstream_of(top) - {top} if top in needs else frozenset()
            names = ROOT_NAMES | MAP_NAMES if site.depth else ROOT_NAMES
            step_chars = 0
            for place in expression_fields(site.step, site.pointer):
                step_chars += len(place.text)
                for compiled in self.compile(place.pointer, place.text, place.template):
                    self.check_names(place.pointer, compiled, names)
                    self.check_reads(place.pointer, compiled, ids, upstream, top)
            total += step_chars
            if step_chars > MAX_STEP_EXPRESSION_CHARS:
                self.error(site.pointer, f"its expressions exceed {MAX_STEP_EXPRESSION_CHARS} characters in all")
        if self.definition.output is not None:
            total += len(self.definition.output)
            for compiled in self.compile("/output", self.definition.output, False):
                self.check_names("/output", compiled, ROOT_NAMES)
                self.check_reads("/output", compiled, ids, frozenset(ids), None)
        if total > MAX_DEFINITION_EXPRESSION_CHARS:
            self.error("", f"its expressions exceed {MAX_DEFINITION_EXPRESSION_CHARS} characters in all")

    def compile(self, at: str, text: str, template: bool) -> Iterator[Compiled]:
        try:
            texts = list(template_expressions(text)) if template else [text]
            for expression in texts:
                yield compile_expression(expression)
        except ExpressionError as exc:
            shown = "" if exc.expression == text else f" in ${{{exc.expression}}}"
            self.error(at, f"{exc.message}{shown}")

    def check_names(self, at: str, compiled: Compiled, allowed: frozenset[str]) -> None:
        unknown = unknown_names(compiled, allowed)
        if unknown:
            self.error(at, f"unknown name {unknown[0]!r} (expressions here may use {', '.join(sorted(allowed))})")

    def check_reads(
        self, at: str, compiled: Compiled, ids: dict[str, int], upstream: frozenset[str], reader: str | None
    ) -> None:
        for step_id in sorted(compiled.steps):
            if step_id not in ids:
                self.error(at, f"steps.{step_id}: unknown step {step_id!r}")
            elif step_id == reader:
                self.error(at, f"steps.{step_id}: a step cannot read its own output")
            elif step_id not in upstream:
                self.error(
                    at,
                    f"steps.{step_id}: step {step_id!r} is not upstream of step {reader!r}; "
                    f"add it to needs (directly or through a step it needs)",
                )


# --- JSON Schema of inputs ------------------------------------------------------------------

_SCHEMA_MAPS = ("properties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_ONE = (
    "items", "additionalProperties", "contains", "propertyNames", "not", "if", "then", "else",
    "unevaluatedItems", "unevaluatedProperties", "additionalItems",
)  # fmt: skip
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


@lru_cache(maxsize=1024)
def _re2(pattern: str) -> Any:
    return re2.compile(pattern, _RE2_OPTIONS)


def _re2_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[SchemaValidationError]:
    """The ``pattern`` keyword matched by RE2 (linear time) instead of ``re``."""
    del schema
    if validator.is_type(instance, "string") and not _re2(pattern).search(instance):
        yield SchemaValidationError(f"{instance!r} does not match {pattern!r}")


InputValidator = validators.extend(Draft202012Validator, {"pattern": _re2_pattern})


def schema_errors(schema: Any, at: str) -> list[FieldError]:
    """Why ``schema`` cannot serve as an ``inputs`` schema (pointers under ``at``)."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return [FieldError(field=pointer(at, *exc.absolute_path), message=f"not a valid JSON Schema: {exc.message}")]
    return list(_schema_walk(schema, at))


def _schema_walk(schema: Any, at: str) -> Iterator[FieldError]:
    stack: list[tuple[Any, str]] = [(schema, at)]
    while stack:
        node, where = stack.pop()
        if not isinstance(node, dict):
            continue
        if "patternProperties" in node:
            yield FieldError(field=pointer(where, "patternProperties"), message="patternProperties is not supported")
        for key in ("$ref", "$dynamicRef"):
            ref = node.get(key)
            if isinstance(ref, str) and not ref.startswith("#"):
                yield FieldError(field=pointer(where, key), message="only local references (#…) are supported")
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            try:
                _re2(pattern)
            except re2.error as exc:
                detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else ""
                yield FieldError(field=pointer(where, "pattern"), message=f"not an RE2 regular expression: {detail}")
        for key in _SCHEMA_MAPS:
            if isinstance(node.get(key), dict):
                stack.extend((sub, pointer(where, key, name)) for name, sub in node[key].items())
        for key in _SCHEMA_ONE:
            if key in node:
                stack.append((node[key], pointer(where, key)))
        for key in _SCHEMA_LISTS:
            if isinstance(node.get(key), list):
                stack.extend((sub, pointer(where, key, i)) for i, sub in enumerate(node[key]))


def validate_input(schema: dict[str, Any] | None, value: Any, at: str = "/input") -> list[FieldError]:
    """Why ``value`` does not match ``schema`` (a valid ``inputs`` schema; ``None`` accepts anything)."""
    if schema is None:
        return []
    try:
        found = list(InputValidator(schema).iter_errors(value))
    except Unresolvable as exc:
        return [FieldError(field=at, message=f"the inputs schema has an unresolvable reference: {exc}")]
    errors: list[FieldError] = []
    for error in found:
        tokens: list[str | int] = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [p for p in error.validator_value if p not in error.instance]
            name = next((p for p in missing if repr(p) in error.message), missing[0] if missing else None)
            if name is not None:
                errors.append(FieldError(field=pointer(at, *tokens, name), message="is required"))
                continue
        errors.append(FieldError(field=pointer(at, *tokens), message=error.message[:300]))
    return sorted(errors, key=_document_order)
