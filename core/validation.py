"""Input hygiene shared by every request model: no NUL bytes, no lone surrogates.

PostgreSQL text cannot hold NUL and UTF-8 cannot encode lone surrogates, so such
strings would fail at the database; they are refused at the boundary instead,
with the field named.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored, or ``None`` if it can."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (no lone surrogates)"
    return None


def _check(value: Any, depth: int = 0) -> None:
    if depth > 32:
        raise ValueError("nested too deeply")
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise ValueError(problem)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, depth + 1)
            _check(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check(item, depth + 1)


class CleanModel(BaseModel):
    """A request model that refuses unknown fields and unstorable text in any field."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        _check(value)
        return value
