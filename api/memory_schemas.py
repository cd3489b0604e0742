"""Request and response models of ``/v1/memories``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from core.validation import SPACE, CleanModel

MAX_METADATA_BYTES = 16 * 1024
SUBJECT_PATTERN = rf"^[^{SPACE}\x00-\x1f][^\x00-\x1f]{{0,199}}$"


class MemoryCreate(CleanModel):
    """``POST /v1/memories``: a fact about a subject (the end user an agent talks to)."""

    subject: str = Field(min_length=1, max_length=200, pattern=SUBJECT_PATTERN)
    text: str = Field(min_length=1, description="At most AIMPACT_MEMORY_MAX_TEXT_CHARS characters (4000).")
    metadata: dict[str, Any] = Field(default_factory=dict)
    importance: float = Field(default=0.5, ge=0, le=1)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("metadata")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value, default=str).encode()) > MAX_METADATA_BYTES:
            raise ValueError(f"must be at most {MAX_METADATA_BYTES} bytes as JSON")
        return value


class MemoryPublic(BaseModel):
    """A stored memory. ``status`` is ``pending`` until its embedding is stored, then ``ready``."""

    id: str
    subject: str
    text: str
    metadata: dict[str, Any]
    status: str
    importance: float
    use_count: int
    source_run_id: str | None
    created_at: datetime
    last_used_at: datetime | None


class MemoryHitPublic(BaseModel):
    """A search result; ``score`` is the cosine similarity to the query (higher is closer)."""

    id: str
    text: str
    score: float
    subject: str
    metadata: dict[str, Any]


class MemorySearchResult(BaseModel):
    """``GET /v1/memories/search``."""

    items: list[MemoryHitPublic]


class ErasureResult(BaseModel):
    """``DELETE /v1/memories?subject=``: what was removed."""

    subject: str
    deleted: dict[str, int]


class CompactionPublic(BaseModel):
    """A compaction of a thread: messages up to ``upto_seq`` are summarised in prompts by ``summary``."""

    upto_seq: int
    summary: str
    method: str
    messages: int
    tokens_before: int
    tokens_after: int
    run_id: str | None
    created_at: datetime
