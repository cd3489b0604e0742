"""Counterfactual replays in the database, tenant-scoped.

The API inserts a replay ``queued`` with the runs it replays; the worker marks it ``running``,
writes one ``replay_result`` per run as soon as it is replayed (a retried activity writes the
same row again, the last write wins) and finally its status and summary. A final replay keeps
its status.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core.contracts.optimizer import FINAL_STATUSES
from core.db.engine import statement
from core.db.models import Replay, ReplayResult, utcnow
from core.db.repos import Keyset

_replay = Replay.__table__  # type: ignore[attr-defined]
_result = ReplayResult.__table__  # type: ignore[attr-defined]
_FINAL = [s.value for s in FINAL_STATUSES]


class ReplayStore:
    """Replays and their per-run results."""

    def __init__(self, engine: AsyncEngine):
        self._engine = engine

    async def insert(self, replay: Replay) -> None:
        """Record a new replay."""
        values = {c.name: getattr(replay, c.name) for c in _replay.columns}
        async with statement(self._engine) as conn:
            await conn.execute(insert(_replay).values(values).on_conflict_do_nothing())

    async def get(self, tenant_id: str, replay_id: str) -> Replay | None:
        """The tenant's replay ``replay_id``."""
        query = select(_replay).where(_replay.c.tenant_id == tenant_id, _replay.c.id == replay_id)
        async with statement(self._engine) as conn:
            row = (await conn.execute(query)).first()
        return Replay(**row._asdict()) if row is not None else None

    async def of_agent(self, tenant_id: str, agent_id: str, *, limit: int, after: Keyset | None = None) -> list[Replay]:
        """The agent's replays, newest first, after the keyset ``after``."""
        query = select(_replay).where(_replay.c.tenant_id == tenant_id, _replay.c.agent_id == agent_id)
        query = query.order_by(_replay.c.created_at.desc(), _replay.c.id.desc())
        if after is not None:
            moment, last = after
            query = query.where(
                (_replay.c.created_at < moment) | ((_replay.c.created_at == moment) & (_replay.c.id < last))
            )
        async with statement(self._engine) as conn:
            rows = (await conn.execute(query.limit(limit))).all()
        return [Replay(**row._asdict()) for row in rows]

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
        values: dict[str, Any] = {"status": status, "updated_at": utcnow()}
        if summary is not None:
            values["summary"] = summary
        if error is not None:
            values["error"] = error
        async with statement(self._engine) as conn:
            await conn.execute(
                update(_replay)
                .where(_replay.c.tenant_id == tenant_id, _replay.c.id == replay_id, _replay.c.status.not_in(_FINAL))
                .values(values)
            )
