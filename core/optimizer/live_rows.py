"""What the projections of optimizer runs and counterfactual replays share: tenant-scoped rows that live while
``queued`` or ``running`` and then end in a final status they keep.

- ``insert`` records a row; with a :class:`~core.quotas.LiveCap` it first takes a transaction-scoped
  advisory lock on (kind, tenant) and counts the tenant's live rows, so concurrent inserts of one
  tenant are decided one at a time and never pass the cap (over it: the cap's ``QuotaExceededError``,
  nothing inserted). Other tenants take other locks.
- ``get``, ``newest`` (an agent's rows newest first, keyset-paginated) read within the tenant.
- ``update_live`` writes a row that is not final yet: a final row keeps its status.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel

from core.contracts.optimizer import FINAL_STATUSES, OptimizerRunStatus
from core.db.engine import statement
from core.db.models import utcnow
from core.db.repos import Keyset
from core.quotas import LiveCap

M = TypeVar("M", bound=SQLModel)
FINAL = [s.value for s in FINAL_STATUSES]
LIVE = [OptimizerRunStatus.QUEUED.value, OptimizerRunStatus.RUNNING.value]


class LiveRows(Generic[M]):
    """The rows of one table of run-like objects (``id``, ``tenant_id``, ``agent_id``, ``status``, ``created_at``)."""

    def __init__(self, engine: AsyncEngine, model: type[M], lock_kind: int):
        """``lock_kind`` is the first key of the advisory lock that serialises a tenant's capped inserts."""
        self._engine = engine
        self._model = model
        self._table = model.__table__  # type: ignore[attr-defined]
        self._lock_kind = lock_kind

    def _row(self, found: Any) -> M:
        return self._model(**found._asdict())

    async def insert(self, row: M, *, cap: LiveCap | None = None) -> None:
        """Record ``row`` (a row of that id already recorded stays as it is).

        Raises:
            QuotaExceededError: ``cap`` is given and the tenant already has ``cap.limit`` live rows.
        """
        values = {c.name: getattr(row, c.name) for c in self._table.columns}
        async with self._engine.begin() as conn:
            if cap is not None:
                await conn.execute(
                    select(func.pg_advisory_xact_lock(self._lock_kind, func.hashtext(values["tenant_id"])))
                )
                live = await self.live(values["tenant_id"], conn)
                if live >= cap.limit:
                    raise cap.refusal(live)
            await conn.execute(insert(self._table).values(values).on_conflict_do_nothing())

    async def live(self, tenant_id: str, conn: AsyncConnection | None = None) -> int:
        """How many of the tenant's rows are ``queued`` or ``running``."""
        t = self._table
        query = select(func.count()).where(t.c.tenant_id == tenant_id, t.c.status.in_(LIVE))
        async with statement(self._engine, conn) as own:
            return int((await own.execute(query)).scalar_one())

    async def get(self, tenant_id: str, row_id: str) -> M | None:
        """The tenant's row ``row_id``."""
        t = self._table
        async with statement(self._engine) as conn:
            found = (await conn.execute(select(t).where(t.c.tenant_id == tenant_id, t.c.id == row_id))).first()
        return self._row(found) if found is not None else None

    async def newest(
        self,
        tenant_id: str,
        *where: ColumnElement[bool],
        limit: int,
        after: Keyset | None = None,
    ) -> list[M]:
        """The tenant's rows matching ``where``, newest first, after the keyset ``after``."""
        t = self._table
        query = select(t).where(t.c.tenant_id == tenant_id, *where).order_by(t.c.created_at.desc(), t.c.id.desc())
        if after is not None:
            moment, last = after
            query = query.where((t.c.created_at < moment) | ((t.c.created_at == moment) & (t.c.id < last)))
        async with statement(self._engine) as conn:
            rows = (await conn.execute(query.limit(limit))).all()
        return [self._row(found) for found in rows]

    async def update_live(self, tenant_id: str, row_id: str, values: dict[str, Any]) -> None:
        """Write ``values`` (and ``updated_at``) to the row unless it is final already."""
        t = self._table
        async with statement(self._engine) as conn:
            await conn.execute(
                update(t)
                .where(t.c.tenant_id == tenant_id, t.c.id == row_id, t.c.status.not_in(FINAL))
                .values({**values, "updated_at": utcnow()})
            )


def when_given(**values: Any) -> dict[str, Any]:
    """The keyword arguments that are not ``None``."""
    return {name: value for name, value in values.items() if value is not None}
