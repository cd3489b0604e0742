"""Contracts of the memory workflows (ingestion and consolidation) and their activities.

Workflows carry memory ids and tenant ids, never the remembered text.
New fields always get defaults so that recorded histories keep decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EMBED_BATCH = 64
"""Memories embedded per activity call."""


@dataclass
class MemoryIngestInput:
    """Memories stored as ``pending`` that the workflow embeds and marks ``ready``."""

    tenant_id: str
    memory_ids: list[str]
    retry_initial_interval_s: float = 1.0
    retry_maximum_interval_s: float = 300.0


@dataclass
class EmbedBatchInput:
    """One batch of pending memories to embed."""

    tenant_id: str
    memory_ids: list[str]


@dataclass
class MemoryIngestResult:
    """How many memories were embedded (already-embedded ones count zero)."""

    embedded: int = 0


@dataclass
class ConsolidationInput:
    """Consolidate one tenant (``tenant_id``) or every tenant with memories (``None``)."""

    tenant_id: str | None = None
    duplicate_similarity: float | None = None
    subject_cap: int | None = None
    decay_after_s: float = 86_400.0
    decay_factor: float = 0.9


@dataclass
class ConsolidationResult:
    """What consolidation changed."""

    tenants: int = 0
    subjects: int = 0
    merged: int = 0
    decayed: int = 0
    evicted: int = 0
    by_tenant: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class MemoryExtractInput:
    """The turn of a run whose salient facts are to be remembered."""

    tenant_id: str
    run_id: str
    thread_id: str
    turn: int
