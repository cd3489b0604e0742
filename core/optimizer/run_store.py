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

from core.contracts.optimizer import CandidateRecord, Evaluation, Spent
from core.db.engine import statement
from core.db.models import OptimizerEval, OptimizerRun
from core.db.repos import Keyset
from core.optimizer.datasets import canonical_json
from core.optimizer.live_rows import LiveRows, when_given

_run = OptimizerRun.__table__  # type: ignore[attr-defined]
_eval = OptimizerEval.__table__  # type: ignore[attr-defined]
_LOCK_LIVE_RUNS = 0x4F50_0002
"""Advisory lock kind of a tenant's capped optimizer-run inserts (``dataset_store`` uses 0x4F50_0001)."""


def content_hash(value: Any) -> str:
    """SHA-256 of the canonical JSON of ``value``: a configuration's or a metric's identity in the cache."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def metric_key(metric: dict[str, Any], evaluation: str) -> str:
    """The cache's metric hash: the metric's, with the evaluation unless ``safe`` (a replay answers tools otherwise)."""
    if evaluation == Evaluation.SAFE:
        return content_hash(metric)
    return content_hash({"metric": metric, "evaluation": evaluation})


def run_seed(dataset_hash: str, baseline_version: int) -> int:
    """A run's seed: the same dataset and baseline draw the same proposals, so a re-run reads their scores cached."""
    return int(content_hash(f"{dataset_hash}:{baseline_version}")[:8], 16)


class OptimizerRunStore(LiveRows[OptimizerRun]):
    """The optimizer-run projection; ``insert`` with a cap bounds a tenant's live runs (see ``live_rows``)."""

    def __init__(self, engine: AsyncEngine):
        super().__init__(engine, OptimizerRun, _LOCK_LIVE_RUNS)

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
        where = [_run.c.agent_id == agent_id] if agent_id is not None else []
        if schedule_id is not None:
            where.append(_run.c.schedule_id == schedule_id)
        return await self.newest(tenant_id, *where, limit=limit, after=after)

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
        }
        await self.update_live(tenant_id, run_id, values | when_given(winner=winner, reason=reason, error=error))

    async def set_status(self, tenant_id: str, run_id: str, status: str, *, reason: str | None = None) -> None:
        """Move a run that is not final to ``status`` (``running``, ``cancelled``)."""
        await self.update_live(tenant_id, run_id, {"status": status} | when_given(reason=reason))

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
