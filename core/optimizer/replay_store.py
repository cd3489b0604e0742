"""Counterfactual replays in the database, tenant-scoped.

The API inserts a replay ``queued`` with the runs it replays; the worker marks it ``running``,
writes one ``replay_result`` per run as soon as it is replayed (a retried activity writes the
same row again, the last write wins) and finally its status and summary. A final replay keeps
its status.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db.engine import statement
from core.db.models import Replay, ReplayResult
from core.db.repos import Keyset
from core.optimizer.live_rows import LiveRows, when_given

_replay = Replay.__table__  # type: ignore[attr-defined]
_result = ReplayResult.__table__  # type: ignore[attr-defined]
_LOCK_LIVE_REPLAYS = 0x4F50_0003
"""Advisory lock kind of a tenant's capped replay inserts."""


class ReplayStore(LiveRows[Replay]):
    """Replays and their per-run results; ``insert`` with a cap bounds a tenant's live replays (see ``live_rows``)."""

    def __init__(self, engine: AsyncEngine):
        super().__init__(engine, Replay, _LOCK_LIVE_REPLAYS)

    async def of_agent(self, tenant_id: str, agent_id: str, *, limit: int, after: Keyset | None = None) -> list[Replay]:
        """The agent's replays, newest first, after the keyset ``after``."""
        return await self.newest(tenant_id, _replay.c.agent_id == agent_id, limit=limit, after=after)

    async def results(self, tenant_id: str, replay_id: str) -> list[ReplayResult]:
        """The replay's per-run results written so far."""
        query = select(_result).where(_result.c.tenant_id == tenant_id, _result.c.replay_id == replay_id)
        async with statement(self._engine) as conn:
            rows = (await conn.execute(query.order_by(_result.c.id))).all()
        return [ReplayResult(**row._asdict()) for row in rows]

    async def put_result(self, result: ReplayResult) -> None:
        """Write one run's result (again, on a retry)."""
        values = {c.name: getattr(result, c.name) for c in _result.columns if c.name not in ("id", "created_at")}
        changed = {k: v for k, v in values.items() if k not in ("tenant_id", "replay_id", "run_id")}
        async with statement(self._engine) as conn:
            await conn.execute(
                insert(_result)
                .values(values)
                .on_conflict_do_update(index_elements=["replay_id", "run_id"], set_=changed)
            )

    async def set_status(
        self,
        tenant_id: str,
        replay_id: str,
        status: str,
        *,
        summary: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        """Move a replay that is not final to ``status``, with its summary or error when given."""
        await self.update_live(tenant_id, replay_id, {"status": status} | when_given(summary=summary, error=error))
