"""Optimizer runs and the evaluation cache in the database.

``OptimizerRunStore`` writes the run projection (the API inserts a run ``queued``, the worker
records progress and outcome; a final run keeps its status) and reads it, tenant-scoped.
``EvalCache`` keeps every paid evaluation under ``(tenant, config hash, example id, metric
hash)``: a retried activity or a later run over the same configuration, example and metric
reads the score instead of paying for it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from core.contracts.optimizer import FINAL_STATUSES, CandidateRecord, Spent
from core.db.engine import statement
from core.db.models import OptimizerEval, OptimizerRun, utcnow
from core.db.repos import Keyset
from core.optimizer.datasets import canonical_json

_run = OptimizerRun.__table__  # type: ignore[attr-defined]
_eval = OptimizerEval.__table__  # type: ignore[attr-defined]
_FINAL = [s.value for s in FINAL_STATUSES]


def content_hash(value: Any) -> str:
    """SHA-256 of the canonical JSON of ``value``: a configuration's or a metric's identity in the cache."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def run_seed(dataset_hash: str, baseline_version: int) -> int:
    """A run's seed: the same dataset and baseline draw the same proposals, so a re-run reads their scores cached."""
    return int(content_hash(f"{dataset_hash}:{baseline_version}")[:8], 16)


class OptimizerRunStore:
    """The optimizer-run projection."""

    def __init__(self, engine: AsyncEngine):
        self._engine = engine

    async def insert(self, run: OptimizerRun) -> None:
        """Record a new run."""
        values = {c.name: getattr(run, c.name) for c in _run.columns}
        async with statement(self._engine) as conn:
            await conn.execute(insert(_run).values(values).on_conflict_do_nothing())

    async def get(self, tenant_id: str, run_id: str) -> OptimizerRun | None:
        """The tenant's run ``run_id``."""
        async with statement(self._engine) as conn:
            row = (await conn.execute(select(_run).where(_run.c.tenant_id == tenant_id, _run.c.id == run_id))).first()
        return OptimizerRun(**row._asdict()) if row is not None else None

    async def of_agent(
        self,
        tenant_id: str,
        agent_id: str | None,
        *,
        schedule_id: str | None = None,
        limit: int,
        after: Keyset | None = None,
    ) -> list[OptimizerRun]:
        """The tenant's runs (of one agent, of one schedule when given), newest first, after the keyset ``after``."""
        query = select(_run).where(_run.c.tenant_id == tenant_id)
        if agent_id is not None:
            query = query.where(_run.c.agent_id == agent_id)
        if schedule_id is not None:
            query = query.where(_run.c.schedule_id == schedule_id)
        query = query.order_by(_run.c.created_at.desc(), _run.c.id.desc())
        if after is not None:
            moment, last = after
            query = query.where((_run.c.created_at < moment) | ((_run.c.created_at == moment) & (_run.c.id < last)))
        async with statement(self._engine) as conn:
            rows = (await conn.execute(query.limit(limit))).all()
        return [OptimizerRun(**row._asdict()) for row in rows]

    async def record(
        self,
        tenant_id: str,
        run_id: str,
        *,
        status: str,
        progress: dict[str, Any],
        candidates: Sequence[CandidateRecord],
        spent: Spent,
        winner: int | None = None,
        reason: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        """Write the run's progress, candidates, spending and (when final) its outcome; a final run keeps it."""
        values: dict[str, Any] = {
            "status": status,
            "progress": progress,
            "candidates": [asdict(c) for c in candidates],
            "evals_used": spent.evals,
            "input_tokens": spent.input_tokens,
            "output_tokens": spent.output_tokens,
            "cost_usd": spent.cost_usd,
            "updated_at": utcnow(),
        }
        if winner is not None:
            values["winner"] = winner
        if reason is not None:
            values["reason"] = reason
        if error is not None:
            values["error"] = error
        async with statement(self._engine) as conn:
            await conn.execute(
                update(_run)
                .where(_run.c.tenant_id == tenant_id, _run.c.id == run_id, _run.c.status.not_in(_FINAL))
                .values(values)
            )

    async def set_status(self, tenant_id: str, run_id: str, status: str, *, reason: str | None = None) -> None:
        """Move a run that is not final to ``status`` (``running``, ``cancelled``)."""
        values: dict[str, Any] = {"status": status, "updated_at": utcnow()}
        if reason is not None:
            values["reason"] = reason
        async with statement(self._engine) as conn:
            await conn.execute(
                update(_run)
                .where(_run.c.tenant_id == tenant_id, _run.c.id == run_id, _run.c.status.not_in(_FINAL))
                .values(values)
            )

    async def mark_promoted(self, tenant_id: str, run_id: str) -> None:
        """The run's winner became the agent's current version."""
        async with statement(self._engine) as conn:
            await conn.execute(
                update(_run).where(_run.c.tenant_id == tenant_id, _run.c.id == run_id).values(promoted=True)
            )


class EvalCache:
    """Paid evaluations of one tenant, by configuration hash, example id and metric hash."""

    def __init__(self, engine: AsyncEngine, tenant_id: str):
        if not tenant_id:
            raise ValueError("a tenant-scoped cache needs a tenant id")
        self._engine = engine
        self._tenant_id = tenant_id

    async def get(self, config_hash: str, metric_hash: str, example_ids: Sequence[str]) -> dict[str, OptimizerEval]:
        """The cached evaluations of ``example_ids`` (those there are), by example id."""
        if not example_ids:
            return {}
        query = select(_eval).where(
            _eval.c.tenant_id == self._tenant_id,
            _eval.c.config_hash == config_hash,
            _eval.c.metric_hash == metric_hash,
            col(_eval.c.example_id).in_(list(example_ids)),
        )
        async with statement(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return {row.example_id: OptimizerEval(**row._asdict()) for row in rows}

    async def put(self, rows: Sequence[OptimizerEval]) -> None:
        """Keep evaluations; one already kept (a concurrent or retried evaluation) stays as it was."""
        if not rows:
            return
        values = [
            {c.name: getattr(row, c.name) for c in _eval.columns if c.name not in ("id", "created_at")}
            | {"tenant_id": self._tenant_id}
            for row in rows
        ]
        async with statement(self._engine) as conn:
            await conn.execute(insert(_eval).values(values).on_conflict_do_nothing())
