"""Contracts of ``RunReconciliationWorkflow``: runs the API shows open, checked against Temporal.

A pass lists the runs (agent runs and pipeline runs, one stream ordered by ``updated_at``
and id) whose projection is ``queued``, ``running`` or ``waiting_approval`` and was not
updated for a grace period, a page per workflow run, and closes those whose workflow has
ended in Temporal without writing its outcome (terminated, timed out, …).
New fields always get defaults so that recorded histories keep decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WORKFLOW_NAME = "RunReconciliationWorkflow"
PAGE_ACTIVITY = "run_reconciliation.page"

RECONCILE_PAGE = 100
"""Runs checked per page (one activity, one workflow run)."""
RECONCILE_CONCURRENCY = 10
"""Runs of a page checked against Temporal at the same time."""
RECONCILE_GRACE_S = 120.0
"""Runs updated more recently than this are left alone (a run whose workflow is being started)."""
MAX_REPORTED_RUNS = 100
"""Entries kept in ``ReconcileResult.runs`` and ``failed`` (the counts stay exact)."""
MAX_ERROR_CHARS = 300
"""Characters kept of each error message."""

TERMINATED = "terminated"
"""Error type of a run whose workflow was terminated in Temporal (UI, CLI or API)."""
TIMED_OUT = "timed_out"
"""Error type of a run whose workflow hit its execution or run timeout."""
WORKFLOW_FAILED = "workflow_failed"
"""Error type of a run whose workflow failed without a typed application error."""
WORKFLOW_NOT_FOUND = "workflow_not_found"
"""Error type of a run that Temporal has no workflow for (never started, or past retention)."""


@dataclass(kw_only=True)
class ReconcileCursor:
    """Keyset position in the open runs: the last page's last ``(updated_at, run id)``."""

    updated_at: str
    run_id: str


@dataclass(kw_only=True)
class ReconcilePageInput:
    """One page of open runs to check: ``limit`` runs after ``after``, not updated since ``before``.

    ``before`` (ISO time) is ``None`` on the first page: the activity takes now minus ``grace_s``.
    """

    limit: int = RECONCILE_PAGE
    grace_s: float = RECONCILE_GRACE_S
    concurrency: int = RECONCILE_CONCURRENCY
    before: str | None = None
    after: ReconcileCursor | None = None
    tenant_id: str | None = None


@dataclass(kw_only=True)
class ReconcilePage:
    """What one page found: runs closed (id → status written), runs that could not be checked (id → error)."""

    before: str
    examined: int = 0
    closed: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    next: ReconcileCursor | None = None
    """Where the next page starts; ``None`` after the last page."""


@dataclass(kw_only=True)
class ReconcileResult:
    """Totals of a pass. ``runs`` and ``failed`` keep at most ``MAX_REPORTED_RUNS`` entries."""

    pages: int = 0
    examined: int = 0
    closed: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    runs: dict[str, str] = field(default_factory=dict)
    failed_count: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    """Why the pass stopped early (a page that failed all its attempts); the next pass starts over."""

    def add(self, page: ReconcilePage) -> None:
        """Count one page in."""
        self.pages += 1
        self.examined += page.examined
        self.closed += len(page.closed)
        self.failed_count += len(page.failed)
        for run_id, status in page.closed.items():
            self.by_status[status] = self.by_status.get(status, 0) + 1
            if len(self.runs) < MAX_REPORTED_RUNS:
                self.runs[run_id] = status
        for run_id, error in page.failed.items():
            if len(self.failed) < MAX_REPORTED_RUNS:
                self.failed[run_id] = error


@dataclass(kw_only=True)
class ReconcileInput:
    """A pass over every tenant's open runs (or one tenant's, with ``tenant_id``).

    The pass continues as new after each full page with ``before`` (the cutoff its first
    page took), ``after`` (where the next page starts) and the running ``totals``.
    """

    tenant_id: str | None = None
    grace_s: float = RECONCILE_GRACE_S
    page_size: int = RECONCILE_PAGE
    concurrency: int = RECONCILE_CONCURRENCY
    before: str | None = None
    after: ReconcileCursor | None = None
    totals: ReconcileResult | None = None
