"""schemathesis hooks (``SCHEMATHESIS_HOOKS``): rules the OpenAPI document states but no schema can decide.

A schema-valid request that the API refuses (422) is forgiven only when every invalid
field the problem names is one of these rules, none of them a matter of shape:

- ``cursor``: an opaque token the list issued (its alphabet is in the schema; which
  values the server issued is not);
- an agent's tools and its model's ``api_key_secret`` must name tools and secrets the
  tenant has, each tool once (server state; names unique across the string and object forms);
  so must a tool header's ``{{secret:NAME}}`` references;
- an ``Idempotency-Key`` already used with another body (server state: the fuzzer reuses
  short keys such as ``0`` across bodies);
- the strings inside free JSON (``metadata``, ``model.params``, ``parameters``, a pipeline
  run's ``input``) contain no NUL: the document says so in words, since a recursive schema for it deepens the fuzzer's
  strategies into the CPython bug below;
- a pipeline ``definition`` is an object the document describes in words: its language
  (step types and fields, ids, ``needs``, expressions, the agents, tools and pipelines it
  names) is checked by the pipeline validator, which names each problem at a JSON pointer
  under ``/definition``;
- a pipeline run's ``input`` must match the ``inputs`` schema of the pipeline's definition
  (errors at ``/input/...``) and a ``version`` must be one the pipeline has (server state);
- a re-run's ``from_step`` must be a step of the version it runs, and that version one the
  pipeline has (server state); a schedule's ``cron`` (a pipeline's, or an agent's optimizer
  schedule's) is a five-field cron expression (its syntax is described in words) and a
  backfill's ``to`` must follow ``from`` within a bounded range of the schedule's fires (a
  rule across fields and server state);
- a dataset needs a source (``examples``, ``from_runs`` or both) giving at least 3 distinct
  examples (runs matched: server state; distinct: a rule over the examples' content) and at
  most ``AIMPACT_DATASET_MAX_EXAMPLES`` (a setting); ``from_runs.min_score`` not above
  ``max_score``, ``since`` before ``until`` and ``limit`` within the room the uploaded examples
  leave (rules across fields);
- an optimizer run needs a dataset of the agent (server state), a metric that can score its
  examples (``exact`` needs their ``expected``: server state) and a budget within the tenant's
  caps (``AIMPACT_OPTIMIZER_MAX_EVALS``, ``AIMPACT_OPTIMIZER_MAX_COST_USD``: settings);
- an experiment's ``candidate_version`` must be a version the agent has, other than its
  current one (server state);
- a replay's ``version`` must be a version the agent has, each of its ``run_ids`` a completed
  run of the agent (server state), without ``run_ids`` the agent needs a completed run to
  sample (server state), and ``run_ids`` and ``sample`` are not given together (a rule across fields);
- a voice session's ``agent_id`` must name an agent of the tenant (server state) and its
  ``idle_timeout_s`` be at most ``AIMPACT_VOICE_MAX_IDLE_TIMEOUT_S`` (a setting);
- a tool's ``parameters`` must pass the JSON Schema 2020-12 meta-schema (not embeddable
  offline) and its URL's ``{placeholders}`` must name its ``parameters.properties``
  (a rule across two fields).

Every other refusal, and every other check, fails the run.

A voice turn's body is a WAV file (``audio/wav``): its bytes are sent as generated, as
``application/octet-stream`` bodies are (schemathesis has no serializer of its own for audio).

CPython 3.11.7's ``ast.parse`` raises ``SystemError: AST constructor recursion depth
mismatch`` when called deep in a recursion; hypothesis calls it to describe the lambdas of
a strategy (only for its ``repr``), so such a description falls back to ``<unknown>``.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis
from hypothesis.internal import lambda_sources
from schemathesis import HookContext

_UNDECIDABLE = (
    (re.compile(r"^cursor$"), re.compile(r"^not a cursor of this list")),
    (re.compile(r"^tools(\[\d+\]\.name)?$"), re.compile(r"^(unknown tool|each tool may appear once)")),
    (re.compile(r"^model\.api_key_secret$"), re.compile(r".")),
    (re.compile(r"^headers\..+$"), re.compile(r"^unknown secret ")),
    (re.compile(r"^idempotency-key$", re.IGNORECASE), re.compile(r".")),
    (re.compile(r"^/definition(/.*)?$"), re.compile(r".")),
    (
        re.compile(r"^(metadata|model\.params|parameters|definition|input)$"),
        re.compile(r"^must not contain NUL characters$"),
    ),
    (re.compile(r"^/input(/.*)?$"), re.compile(r".")),
    (re.compile(r"^/?version$"), re.compile(r"^pipeline .* has no version \d+$")),
    (re.compile(r"^/from_step$"), re.compile(r"^version \d+ of the pipeline has no top-level step ")),
    (re.compile(r"^/?cron$"), re.compile(r".")),
    (re.compile(r"^/to$"), re.compile(r".")),
    (
        re.compile(r"^(examples|from_runs)$"),
        re.compile(r"^(a dataset needs at least \d+ distinct examples|give examples, from_runs or both|at most \d+ )"),
    ),
    (
        re.compile(r"^from_runs\.(min_score|since|limit)$"),
        re.compile(r"^(must not be above from_runs\.max_score|must be before from_runs\.until|at most \d+ runs fit)"),
    ),
    (re.compile(r"^dataset_id$"), re.compile(r"^required: the agent has no dataset yet$")),
    (
        re.compile(r"^metric(\.type|\.rubric)?$"),
        re.compile(r"^(required|`\w+` compares with `expected`|the `judge` metric has no rubric)"),
    ),
    (re.compile(r"^budget\.(max_evals|max_cost_usd)$"), re.compile(r"^at most [\d.e+]+ \(AIMPACT_OPTIMIZER_MAX_")),
    (  # a run id is any string of 1-40 characters, whitespace and control characters included
        re.compile(r"^run_ids\[\d+\]$"),
        re.compile(r"^run .+ (of agent \S+ not found|is \w+: only completed)", re.DOTALL),
    ),
    (re.compile(r"^sample$"), re.compile(r"^(agent \S+ has no completed runs|give run_ids or sample, not both)")),
    (
        re.compile(r"^(candidate_version|version)$"),
        re.compile(r"^(version \d+ is already current|agent \S+ has no version \d+)"),
    ),
    (re.compile(r"^agent_id$"), re.compile(r"^no agent .+ in this workspace$", re.DOTALL)),
    (re.compile(r"^idle_timeout_s$"), re.compile(r"^at most [\d.e+]+ \(AIMPACT_VOICE_MAX_IDLE_TIMEOUT_S\)$")),
    (re.compile(r"^parameters$"), re.compile(r"^(not a valid JSON Schema|\$ref|only local \$ref)")),
    (re.compile(r"^url$"), re.compile(r"^placeholders .* are not declared in parameters\.properties$")),
)


schemathesis.serializer.alias(["audio/wav", "audio/x-wav"], "application/octet-stream")

_describe_lambda = lambda_sources._lambda_description


def _lambda_description(f: Any) -> str:
    try:
        return _describe_lambda(f)
    except SystemError:  # the CPython ast bug of the module docstring
        return "lambda: <unknown>"


lambda_sources._lambda_description = _lambda_description


def _undecidable(error: Any) -> bool:
    if not isinstance(error, dict):
        return False
    field, message = str(error.get("field", "")), str(error.get("message", ""))
    return any(where.match(field) and what.match(message) for where, what in _UNDECIDABLE)


@schemathesis.hook
def filter_failure(ctx: HookContext, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure except a 422 to schema-valid data that names only undecidable rules."""
    if getattr(failure, "code", None) != "ST202" or response.status_code != 422:
        return True
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return True
    return not (errors and all(_undecidable(error) for error in errors))
