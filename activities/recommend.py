"""Activities of a recommendation pass: mine one part of the history, save the findings, measure outcomes.

``recommend.mine`` only reads (SQL over the projections, then statistics; it heartbeats while
clustering). ``recommend.save`` writes the pass's findings under the tenant's pass lock, so a
retried attempt finds its own rows and updates them (``core.recommend.store``).
``recommend.outcomes`` rewrites the outcome of each applied recommendation not yet final.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import classify_database_errors
from activities.heartbeat import heartbeating
from core.contracts.recommend import MINERS, MINING_FAILED, Measured, Mined, MineInput, OutcomesInput, Saved, SaveInput
from core.db.engine import make_sessionmaker
from core.recommend.mining import mine
from core.recommend.outcomes import measure
from core.recommend.store import RecommendationStore, save_findings
from core.recommend.thresholds import DEFAULT, Thresholds

log = structlog.get_logger(__name__)


class RecommendationActivities:
    """A pass's activities over the database."""

    def __init__(self, engine: AsyncEngine, *, thresholds: Thresholds = DEFAULT):
        self._engine = engine
        self._thresholds = thresholds

    def all(self) -> list[Any]:
        """Every activity callable, for the worker."""
        return [self.mine, self.save, self.outcomes]

    @activity.defn(name="recommend.mine")
    @classify_database_errors
    async def mine(self, inp: MineInput) -> Mined:
        """Run one miner over the tenant's window; its findings."""
        if inp.miner not in MINERS:
            raise ApplicationError(f"unknown miner {inp.miner!r}", type=MINING_FAILED, non_retryable=True)
        structlog.contextvars.bind_contextvars(tenant_id=inp.tenant_id, miner=inp.miner)
        async with heartbeating():
            mined = await mine(
                self._engine, inp.tenant_id, inp.miner, window_days=inp.window_days, thresholds=self._thresholds
            )
        log.info("recommendations mined", findings=len(mined.findings), runs=mined.scanned)
        return mined

    @activity.defn(name="recommend.save")
    @classify_database_errors
    async def save(self, inp: SaveInput) -> Saved:
        """Turn the pass's findings into recommendations (dedupe, suppression, staleness)."""
        async with make_sessionmaker(self._engine)() as session:
            return await save_findings(session, inp.tenant_id, inp.findings, inp.kinds)

    @activity.defn(name="recommend.outcomes")
    @classify_database_errors
    async def outcomes(self, inp: OutcomesInput) -> Measured:
        """Measure each applied recommendation whose outcome is not final."""
        measured = Measured()
        async with heartbeating(), make_sessionmaker(self._engine)() as session:
            rows = await RecommendationStore(session, inp.tenant_id).awaiting_outcome()
            conn = await session.connection()
            for row in rows:
                row.outcome = await measure(conn, row, self._thresholds, window_days=inp.window_days)
                session.add(row)
                measured.measured += 1
                measured.final += 1 if row.outcome.get("final") else 0
            await session.commit()
        return measured
