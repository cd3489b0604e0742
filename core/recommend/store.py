"""Recommendations of one tenant in the database: a pass's findings saved, listed, applied, dismissed, measured.

Saving a pass (:func:`save_findings`) holds a per-tenant transaction lock, so two passes of a
tenant (a scheduled one and a refresh) never interleave. A finding is matched to the newest
recommendation with its fingerprint:

- none, or a ``stale`` one → a new ``open`` recommendation;
- an ``open`` one on the same basis → its evidence, title, gain and action are brought up to
  date; on another basis (its target changed) it turns ``stale`` and a new one opens;
- a ``dismissed`` one → suppressed unless the evidence changed materially: the new headline
  value lies outside the 95% interval recorded when it was dismissed (:func:`materially_changed`);
- an ``applied`` one → suppressed on the same basis (the change has not reached it yet), a new
  one on another basis (the problem persists in the version the apply made).

``open`` recommendations of the kinds mined that the pass did not find turn ``stale``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, text
from sqlalchemy.dialects.postgresql import distinct_on
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from core.contracts.recommend import Finding, RecommendationStatus, Saved
from core.db.models import Recommendation, utcnow
from core.db.repos import Keyset, newest_first
from core.ids import new_id
from core.recommend.findings import fingerprint

_LOCK_PASS = 0x5245_0001
NOT_OBSERVED = "no longer observed: the latest pass did not find it in the window"


def materially_changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether ``after``'s headline value lies outside the interval of ``before``'s (or measures something else)."""
    old, new = before.get("metric") or {}, after.get("metric") or {}
    if old.get("name") != new.get("name"):
        return True
    low, high = (old.get("ci") or [None, None])[:2]
    value = new.get("value")
    if low is None or high is None or value is None:
        return True
    return not float(low) <= float(value) <= float(high)


def _row(tenant_id: str, found: Finding, fp: str, now: datetime, previous: str | None) -> Recommendation:
    return Recommendation(
        id=new_id("rec"),
        tenant_id=tenant_id,
        kind=found.kind,
        rule=found.rule,
        target=found.target,
        target_key=found.target_key[:400],
        fingerprint=fp,
        title=found.title[:500],
        evidence=found.evidence,
        expected_gain=found.expected_gain,
        action=found.action,
        basis=found.basis,
        status=RecommendationStatus.OPEN.value,
        previous_id=previous,
        seen_at=now,
        created_at=now,
        updated_at=now,
    )


def _refresh(row: Recommendation, found: Finding, now: datetime) -> None:
    row.title, row.evidence, row.expected_gain = found.title[:500], found.evidence, found.expected_gain
    row.action, row.seen_at, row.updated_at = found.action, now, now


def _stale(row: Recommendation, reason: str, now: datetime) -> None:
    row.status, row.status_reason, row.updated_at = RecommendationStatus.STALE.value, reason, now


def _basis_change(before: dict[str, Any], after: dict[str, Any]) -> str:
    changed = [
        f"{name} {before.get(name)} → {after.get(name)}"
        for name in sorted(before.keys() | after.keys())
        if before.get(name) != after.get(name)
    ]
    return "its target changed since the evidence was computed: " + ", ".join(changed)


async def save_findings(
    session: AsyncSession, tenant_id: str, findings: Sequence[Finding], kinds: Sequence[str]
) -> Saved:
    """Save a pass's findings (see the module docstring) and commit."""
    await session.exec(select(func.pg_advisory_xact_lock(_LOCK_PASS, func.hashtext(tenant_id))))
    now = utcnow()
    keyed = {fingerprint(f.kind, f.target_key, f.rule, f.finding_key): f for f in findings}
    newest = (
        select(Recommendation)
        .where(Recommendation.tenant_id == tenant_id, col(Recommendation.fingerprint).in_(list(keyed)))
        .order_by(col(Recommendation.fingerprint), col(Recommendation.created_at).desc(), col(Recommendation.id).desc())
        .ext(distinct_on(col(Recommendation.fingerprint)))
    )
    latest = {row.fingerprint: row for row in (await session.exec(newest)).all()}
    saved = Saved()
    for fp, found in keyed.items():
        row = latest.get(fp)
        status = row.status if row is not None else None
        if row is not None and status == RecommendationStatus.OPEN and row.basis == found.basis:
            _refresh(row, found, now)
            saved.updated += 1
            continue
        if (
            row is not None
            and status == RecommendationStatus.DISMISSED
            and not materially_changed(row.evidence, found.evidence)
        ):
            saved.suppressed += 1
            continue
        if row is not None and status == RecommendationStatus.APPLIED and row.basis == found.basis:
            saved.suppressed += 1
            continue
        if row is not None and status == RecommendationStatus.OPEN:
            _stale(row, _basis_change(row.basis, found.basis), now)
            session.add(row)
            saved.stale += 1
            await session.flush()  # the open row leaves the unique index before its successor enters it
        session.add(_row(tenant_id, found, fp, now, row.id if row is not None else None))
        saved.opened += 1
    gone = (
        update(Recommendation)
        .where(
            col(Recommendation.tenant_id) == tenant_id,
            col(Recommendation.status) == RecommendationStatus.OPEN.value,
            col(Recommendation.kind).in_(list(kinds)),
            col(Recommendation.fingerprint).not_in(list(keyed)),
        )
        .values(status=RecommendationStatus.STALE.value, status_reason=NOT_OBSERVED, updated_at=now)
    )
    result: Any = await session.exec(gone)
    saved.stale += int(result.rowcount or 0)
    await session.commit()
    return saved


@dataclass(frozen=True, kw_only=True)
class Decision:
    """Who applied or dismissed a recommendation, and why."""

    by: str
    reason: str | None = None
    result: dict[str, Any] | None = None


class RecommendationStore:
    """Recommendations of one tenant; the caller commits."""

    def __init__(self, session: AsyncSession, tenant_id: str):
        if not tenant_id:
            raise ValueError("a tenant-scoped store needs a tenant id")
        self._session = session
        self._tenant_id = tenant_id

    async def get(self, recommendation_id: str, *, lock: bool = False) -> Recommendation | None:
        """The recommendation of this tenant (``lock``: FOR UPDATE, so one apply or dismiss wins)."""
        query = select(Recommendation).where(
            Recommendation.id == recommendation_id, Recommendation.tenant_id == self._tenant_id
        )
        return (await self._session.exec(query.with_for_update() if lock else query)).first()

    async def list(
        self, *, status: str | None, kind: str | None, limit: int, after: Keyset | None = None
    ) -> Sequence[Recommendation]:
        """Newest first, of one status and one kind when given."""
        query = select(Recommendation).where(Recommendation.tenant_id == self._tenant_id)
        if status is not None:
            query = query.where(Recommendation.status == status)
        if kind is not None:
            query = query.where(Recommendation.kind == kind)
        query = newest_first(query, col(Recommendation.created_at), col(Recommendation.id), after)
        rows: Sequence[Recommendation] = (await self._session.exec(query.limit(limit))).all()
        return rows

    def decide(self, row: Recommendation, status: RecommendationStatus, decision: Decision) -> None:
        """Record ``applied`` or ``dismissed`` (or ``stale`` found at apply) with who and why."""
        now = utcnow()
        row.status, row.decided_by, row.decided_at, row.updated_at = status.value, decision.by, now, now
        if decision.reason is not None:
            row.status_reason = decision.reason[:2000]
        if decision.result is not None:
            row.result = decision.result
        self._session.add(row)

    def mark_stale(self, row: Recommendation, reason: str) -> None:
        """Record that ``row``'s target changed since its evidence (``reason`` says how)."""
        _stale(row, reason[:2000], utcnow())
        self._session.add(row)

    async def awaiting_outcome(self, *, limit: int = 200) -> Sequence[Recommendation]:
        """Applied recommendations whose outcome is not final yet, oldest applied first."""
        query = (
            select(Recommendation)
            .where(
                Recommendation.tenant_id == self._tenant_id,
                Recommendation.status == RecommendationStatus.APPLIED.value,
                text("coalesce((outcome->>'final')::boolean, false) = false"),
            )
            .order_by(col(Recommendation.decided_at))
            .limit(limit)
        )
        rows: Sequence[Recommendation] = (await self._session.exec(query)).all()
        return rows
