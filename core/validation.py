"""Input hygiene shared by every request model: no NUL bytes, no lone surrogates, no booleans as numbers.

PostgreSQL text cannot hold NUL and UTF-8 cannot encode lone surrogates, so such
strings would fail at the database; they are refused at the boundary instead,
with the field named.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

SPACE = r"\s\x1c-\x1f\x85\ufeff"
"""Whitespace for a regex character class, alike in Python, ECMAScript and Rust (their ``\\s`` differ on these)."""


@dataclass(frozen=True, kw_only=True)
class FieldError:
    """One problem, at a JSON pointer into the submitted document."""

    field: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


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


def _numeric_only(annotation: Any) -> bool:
    """Whether a field's type admits numbers (and ``None``) and nothing else."""
    members = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    kinds = [member for member in members if member is not NoneType]
    return bool(kinds) and all(kind in (int, float) for kind in kinds)


class CleanModel(BaseModel):
    """A request model that refuses unknown fields, unstorable text in any field and ``true`` for a number."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and _numeric_only(field.annotation):
            raise ValueError("must be a number, not true or false")  # pydantic would read it as 1 or 0
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        _check(value)
        return value
