"""Datasets of one tenant in the database: built once, never changed; and the runs they are built from.

``DatasetStore`` is tenant-scoped like the repositories of ``core.db.repos``: every query
is filtered by the tenant given at construction. A tenant keeps at most a given number of
datasets, counted under a per-tenant transaction lock so concurrent builds cannot pass it
(:class:`DatasetLimitReached`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.contracts.agent_run import RunStatus
from core.db.models import Dataset, DatasetExample, Run, RunFeedback, ThreadMessage
from core.db.repos import Author, Keyset, newest_first
from core.ids import new_id
from core.optimizer.datasets import BuiltDataset, Example, Source, Split

_LOCK_DATASETS = 0x4F50_0001
_example = DatasetExample.__table__  # type: ignore[attr-defined]


class DatasetLimitReached(Exception):  # noqa: N818 - a limit, reported as 409
    """The tenant already keeps as many datasets as it may."""

    def __init__(self, limit: int):
        super().__init__(f"a tenant may keep at most {limit} datasets")
        self.limit = limit


@dataclass(frozen=True, kw_only=True)
class RunFilter:
    """Which completed single-turn runs of an agent become examples; the run's mean feedback score is its score.

    A run of several turns is left out: its ``input`` is the first message, its ``output`` the last answer.

    With a score bound or a label, only runs with feedback count; ``label`` matches any of a run's
    feedback entries. ``since`` is inclusive, ``until`` exclusive (the run's creation time).
    """

    min_score: float | None = None
    max_score: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    label: str | None = None
    limit: int


class DatasetStore:
    """Datasets and their examples of one tenant; the caller commits."""

    def __init__(self, session: AsyncSession, tenant_id: str):
        if not tenant_id:
            raise ValueError("a tenant-scoped store needs a tenant id")
        self._session = session
        self._tenant_id = tenant_id

    async def run_examples(self, agent_id: str, wanted: RunFilter) -> list[Example]:
        """The newest ``wanted.limit`` matching runs of the agent as examples, oldest first.

        A run's recorded answer is its ``output``; it is also ``expected`` when ``min_score`` is
        set (the run scored at or above it).
        """
        score = func.avg(RunFeedback.score)
        questions = (
            select(func.count())
            .where(
                col(ThreadMessage.tenant_id) == self._tenant_id,
                col(ThreadMessage.thread_id) == col(Run.thread_id),
                col(ThreadMessage.run_id) == col(Run.id),
                col(ThreadMessage.role) == "user",
            )
            .scalar_subquery()
        )
        feedback = and_(col(RunFeedback.run_id) == col(Run.id), col(RunFeedback.tenant_id) == self._tenant_id)
        query: Any = (
            sa_select(col(Run.id), col(Run.input), col(Run.output), col(Run.created_at), score.label("score"))
            .join(RunFeedback, feedback, isouter=True)
            .where(
                col(Run.tenant_id) == self._tenant_id,
                col(Run.agent_id) == agent_id,
                col(Run.status) == RunStatus.COMPLETED.value,
                col(Run.output).is_not(None),
                questions <= 1,
            )
            .group_by(col(Run.id))
        )
        if wanted.since is not None:
            query = query.where(col(Run.created_at) >= wanted.since)
        if wanted.until is not None:
            query = query.where(col(Run.created_at) < wanted.until)
        if wanted.min_score is not None:
            query = query.having(score >= wanted.min_score)
        if wanted.max_score is not None:
            query = query.having(score <= wanted.max_score)
        if wanted.label is not None:
            query = query.having(func.bool_or(col(RunFeedback.label) == wanted.label))
        query = query.order_by(col(Run.created_at).desc(), col(Run.id).desc()).limit(wanted.limit)
        rows = list((await (await self._session.connection()).execute(query)).all())
        labelled = wanted.min_score is not None
        return [
            Example(
                input=row.input,
                expected=row.output if labelled else None,
                output=row.output,
                source_run_id=row.id,
                feedback_score=None if row.score is None else float(row.score),
            )
            for row in reversed(rows)
        ]

    async def count(self) -> int:
        """How many datasets the tenant keeps."""
        query = select(func.count()).where(col(Dataset.tenant_id) == self._tenant_id)
        return int((await self._session.exec(query)).one())

    async def create(
        self,
        agent_id: str,
        name: str,
        built: BuiltDataset,
        *,
        source: Source,
        filters: dict[str, Any] | None,
        author: Author,
        limit: int | None = None,
    ) -> Dataset:
        """Store ``built`` as a new dataset of the agent.

        Raises:
            DatasetLimitReached: ``limit`` is set and the tenant already keeps that many datasets.
        """
        if limit is not None:
            await self._session.exec(select(func.pg_advisory_xact_lock(_LOCK_DATASETS, func.hashtext(self._tenant_id))))
            if await self.count() >= limit:
                raise DatasetLimitReached(limit)
        dataset = Dataset(
            id=new_id("dst"),
            tenant_id=self._tenant_id,
            agent_id=agent_id,
            name=name,
            size=len(built.examples),
            hash=built.hash,
            source=source.value,
            filters=filters,
            created_by_kind=author.kind,
            created_by_id=author.id,
            train=built.splits[Split.TRAIN],
            validation=built.splits[Split.VALIDATION],
            test=built.splits[Split.TEST],
        )
        self._session.add(dataset)
        await self._session.flush()
        rows = [
            {
                "dataset_id": dataset.id,
                "tenant_id": self._tenant_id,
                "position": placed.position,
                "example_id": placed.id,
                "split": placed.split.value,
                "input": placed.example.input,
                "expected": placed.example.expected,
                "rubric": placed.example.rubric,
                "output": placed.example.output,
                "source_run_id": placed.example.source_run_id,
                "feedback_score": placed.example.feedback_score,
            }
            for placed in built.examples
        ]
        await (await self._session.connection()).execute(insert(_example), rows)
        return dataset

    async def get(self, dataset_id: str) -> Dataset | None:
        """The dataset ``dataset_id`` of this tenant."""
        query = select(Dataset).where(Dataset.id == dataset_id, Dataset.tenant_id == self._tenant_id)
        return (await self._session.exec(query)).first()

    async def of_agent(self, agent_id: str, *, limit: int, after: Keyset | None = None) -> Sequence[Dataset]:
        """Datasets of one agent, newest first."""
        query = select(Dataset).where(Dataset.tenant_id == self._tenant_id, Dataset.agent_id == agent_id)
        query = newest_first(query, col(Dataset.created_at), col(Dataset.id), after)
        rows: Sequence[Dataset] = (await self._session.exec(query.limit(limit))).all()
        return rows

    async def examples(
        self, dataset_id: str, *, split: str | None = None, limit: int, after: int | None = None
    ) -> Sequence[DatasetExample]:
        """Examples of one dataset in position order, of one split or all, after position ``after``."""
        query = select(DatasetExample).where(
            DatasetExample.tenant_id == self._tenant_id, DatasetExample.dataset_id == dataset_id
        )
        if split is not None:
            query = query.where(DatasetExample.split == split)
        if after is not None:
            query = query.where(col(DatasetExample.position) > after)
        rows: Sequence[DatasetExample] = (
            await self._session.exec(query.order_by(col(DatasetExample.position)).limit(limit))
        ).all()
        return rows
