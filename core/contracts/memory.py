"""Contracts of the memory workflows (ingestion and consolidation) and their activities.

Workflows carry memory ids and tenant ids, never the remembered text.
New fields always get defaults so that recorded histories keep decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EMBED_BATCH = 64
"""Memories embedded per activity call."""

CONSOLIDATION_PAGE = 100
"""Tenants listed per page of a consolidation pass (one workflow run per page)."""
CONSOLIDATION_CONCURRENCY = 10
"""Tenants of a page consolidated at the same time."""
MAX_REPORTED_TENANTS = 100
"""Entries kept in ``ConsolidationResult.by_tenant`` and ``failed`` (the counts stay exact)."""
MAX_FAILURE_CHARS = 300
"""Characters kept of each failure message."""


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
class ConsolidationResult:
    """What consolidation changed.

    ``failed`` maps a tenant whose consolidation failed to the error (``"Type: message"``);
    it and ``by_tenant`` keep at most ``MAX_REPORTED_TENANTS`` entries, while
    ``tenants`` and ``failed_count`` count every tenant.
    """

    tenants: int = 0
    subjects: int = 0
    merged: int = 0
    decayed: int = 0
    evicted: int = 0
    by_tenant: dict[str, dict[str, int]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    failed_count: int = 0
    pages: int = 0


@dataclass
class ConsolidationInput:
    """Consolidate one tenant (``tenant_id``) or every tenant with memories (``None``).

    A pass over every tenant lists ``page_size`` tenants per workflow run, consolidates
    up to ``concurrency`` of them at a time, and continues as new after the page with
    ``after`` (the page's last tenant id) and the running ``totals``.
    """

    tenant_id: str | None = None
    duplicate_similarity: float | None = None
    subject_cap: int | None = None
    decay_after_s: float = 86_400.0
    decay_factor: float = 0.9
    page_size: int = CONSOLIDATION_PAGE
    concurrency: int = CONSOLIDATION_CONCURRENCY
    after: str | None = None
    totals: ConsolidationResult | None = None


@dataclass
class TenantPageInput:
    """One page of the tenants that hold memories, in tenant id order after ``after``."""

    limit: int
    after: str | None = None


@dataclass
class MemoryExtractInput:
    """The turn of a run whose salient facts are to be remembered."""

    tenant_id: str
    run_id: str
    thread_id: str
    turn: int
