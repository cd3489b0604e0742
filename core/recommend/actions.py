"""What apply changes: a recommendation's action turned into the fields of an agent or pipeline update.

An action names the version its evidence was computed on (``from_version``) and a list of
``ops``. :func:`stale_reason` says why the target no longer is what the evidence saw; the
``*_changes`` functions compute, from the target's current configuration, exactly what a
person would send to ``PATCH /v1/agents/{id}`` or ``PUT /v1/pipelines/{id}``, so apply goes
through the same checks as those routes.
"""

from __future__ import annotations

import copy
from typing import Any


class ActionConflict(Exception):  # noqa: N818 - reported as 409 with its message
    """The action cannot be performed on the target as it is now."""


def stale_reason(
    kind: str, target_id: str, basis_version: int | None, current: int | None, archived: bool
) -> str | None:
    """Why the target changed since the evidence (``None``: it did not); ``current`` ``None``: it is gone."""
    if current is None:
        return f"{kind} {target_id} no longer exists"
    if archived:
        return f"{kind} {target_id} is archived"
    if basis_version is not None and basis_version != current:
        return (
            f"{kind} {target_id} is at version {current}; the evidence was computed on version {basis_version}:"
            " the next pass recomputes it"
        )
    return None


def _tool_specs(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": item} if isinstance(item, str) else dict(item) for item in config.get("tools", [])]


def _tool_op(tools: list[dict[str, Any]], op: dict[str, Any]) -> list[dict[str, Any]]:
    names = [t["name"] for t in tools]
    if op["tool"] not in names:
        raise ActionConflict(f"tool {op['tool']} is no longer attached to the agent")
    if op["op"] == "remove_tool":
        return [t for t in tools if t["name"] != op["tool"]]
    return [t | op["values"] if t["name"] == op["tool"] else t for t in tools]


def agent_changes(config: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """The fields of ``PATCH /v1/agents/{id}`` that perform ``ops`` on the agent's current ``config``."""
    changes: dict[str, Any] = {}
    for op in ops:
        kind = op.get("op")
        if kind in ("set_tool", "remove_tool"):
            changes["tools"] = _tool_op(changes.get("tools", _tool_specs(config)), op)
        elif kind == "set_model":
            changes["model"] = copy.deepcopy(op["model"])
        elif kind == "set_model_param":
            model = copy.deepcopy(changes.get("model", config.get("model", {})))
            model["params"] = {**model.get("params", {}), op["param"]: op["value"]}
            changes["model"] = model
        else:
            raise ActionConflict(f"unknown operation {kind!r}")
    return changes


def pipeline_definition(definition: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """The pipeline's current ``definition`` with ``ops`` performed on its top-level steps."""
    changed = copy.deepcopy(definition)
    steps = {step.get("id"): step for step in changed.get("steps", [])}
    for op in ops:
        step = steps.get(op.get("step_id"))
        if step is None:
            raise ActionConflict(f"step {op.get('step_id')} is no longer in the pipeline")
        if op.get("op") == "set_step":
            step.update(copy.deepcopy(op["values"]))
        elif op.get("op") == "remove_need":
            if op["need"] not in step.get("needs", []):
                raise ActionConflict(f"step {op['step_id']} no longer needs {op['need']}")
            step["needs"] = [n for n in step["needs"] if n != op["need"]]
        else:
            raise ActionConflict(f"unknown operation {op.get('op')!r}")
    return changed
