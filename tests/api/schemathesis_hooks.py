"""schemathesis hooks (``SCHEMATHESIS_HOOKS``): skip generated requests whose validity no schema can state.

Each filter names a rule the OpenAPI document describes but cannot decide:

- a ``cursor`` is an opaque token the list issued (its alphabet is in the schema; which
  values the server issued is not), so a generated non-empty cursor is always refused;
- a tool's ``parameters`` must pass the JSON Schema 2020-12 meta-schema (not embeddable
  offline) and its URL's ``{placeholders}`` must name its ``parameters.properties``
  (a rule across two fields);
- an agent's tools and its model's ``api_key_secret`` must name tools and secrets the
  tenant has (server state, not shape): generated agents name built-in tools only and no secret.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis import HookContext

from core.tools.builtin import BUILTIN_TOOL_NAMES
from core.tools.tenant_http import parameters_problem, url_placeholders


@schemathesis.hook
def filter_query(ctx: HookContext, query: dict[str, Any] | None) -> bool:
    """Keep requests without a cursor (or with an empty one: the first page)."""
    return not (isinstance(query, dict) and query.get("cursor"))


@schemathesis.hook
def filter_body(ctx: HookContext, body: Any) -> bool:
    """Keep tool definitions whose parameters are a JSON Schema declaring every URL placeholder."""
    operation = ctx.operation
    if operation is None or not isinstance(body, dict):
        return True
    if operation.path in ("/v1/agents", "/v1/agents/{agent_id}"):
        return _names_existing(body)
    if (operation.method.upper(), operation.path) != ("POST", "/v1/tools"):
        return True
    if not isinstance(body.get("url"), str):
        return True
    parameters = body.get("parameters", {"type": "object", "properties": {}})
    if parameters_problem(parameters) is not None:
        return False
    properties = parameters.get("properties") or {}
    return all(name in properties for name in url_placeholders(body["url"]))


def _names_existing(agent: dict[str, Any]) -> bool:
    tools = agent.get("tools") or []
    names = [tool.get("name") if isinstance(tool, dict) else tool for tool in tools] if isinstance(tools, list) else []
    model = agent.get("model")
    secret = model.get("api_key_secret") if isinstance(model, dict) else None
    return all(name in BUILTIN_TOOL_NAMES for name in names if isinstance(name, str)) and not secret
