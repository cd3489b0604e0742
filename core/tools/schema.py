"""Validation of tool arguments against the tool's JSON schema."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from core.contracts.llm import ToolSchema

INVALID_JSON = "__invalid_json__"
"""Key a provider puts in ``arguments`` when the model's argument text was not JSON."""


def argument_errors(schema: ToolSchema, arguments: dict[str, Any]) -> list[str]:
    """Why ``arguments`` do not fit the tool's parameters (empty when they do)."""
    if INVALID_JSON in arguments:
        return [f"arguments are not valid JSON: {str(arguments[INVALID_JSON])[:200]!r}"]
    if not schema.parameters:
        return []
    validator = Draft202012Validator(schema.parameters)
    return [
        f"{'/'.join(str(p) for p in error.path) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(arguments), key=lambda e: list(e.path))[:5]
    ]
