"""``/v1/agents/{id}/datasets``, ``/v1/datasets/{id}``: the optimizer's datasets, immutable once built.

A dataset holds an agent's examples: its completed runs selected by feedback score, time
and label (``from_runs``), uploaded examples, or both. It is hashed and split into train,
validation and test by a rule over its content only (``core.optimizer.datasets``), so the
same examples always hash and split the same way. There is no route that changes one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.audit import audit
from api.dataset_schemas import DatasetCreate, DatasetPublic, ExamplePublic, RunSelection, SplitCounts
from api.deps import SessionDep, StateDep
from api.lookups import agent_of, found
from api.pagination import BySeq, Limit, NewestFirst
from api.permissions import OptimizerRead, OptimizerWrite
from api.problem_types import ProblemType, problems
from api.problems import ProblemError, invalid
from api.schemas import Page
from api.version_schemas import AuthorPublic
from core.db.models import Dataset, DatasetExample
from core.db.repos import AgentRepository, Author, Keyset
from core.optimizer.dataset_store import DatasetLimitReached, DatasetStore, RunFilter
from core.optimizer.datasets import MIN_EXAMPLES, Example, Source, Split, build, source_of
from core.settings import Settings

router = APIRouter(tags=["optimizer"])
DATASETS = NewestFirst("datasets")
EXAMPLES = BySeq("dataset-examples", lambda row: row.position)


def dataset_public(row: Dataset) -> DatasetPublic:
    """The public view of one dataset."""
    return DatasetPublic(
        id=row.id,
        agent_id=row.agent_id,
        name=row.name,
        size=row.size,
        hash=row.hash,
        splits=SplitCounts(train=row.train, validation=row.validation, test=row.test),
        source=Source(row.source),
        filters=row.filters,
        created_by=AuthorPublic(kind=row.created_by_kind, id=row.created_by_id),
        created_at=row.created_at,
    )


def example_public(row: DatasetExample) -> ExamplePublic:
    """The public view of one example."""
    return ExamplePublic(
        id=row.example_id,
        position=row.position,
        split=Split(row.split),
        input=row.input,
        expected=row.expected,
        rubric=row.rubric,
        output=row.output,
        source_run_id=row.source_run_id,
        feedback_score=row.feedback_score,
    )


def _invalid(errors: list[dict[str, str]]) -> ProblemError:
    return invalid("dataset", errors)


def _selection_problems(selection: RunSelection, *, room: int) -> list[dict[str, str]]:
    """Rules across the fields of ``from_runs``; ``room`` is what the dataset can still hold."""
    errors = []
    low, high = selection.min_score, selection.max_score
    if low is not None and high is not None and low > high:
        errors.append({"field": "from_runs.min_score", "message": "must not be above from_runs.max_score"})
    if selection.since is not None and selection.until is not None and selection.since >= selection.until:
        errors.append({"field": "from_runs.since", "message": "must be before from_runs.until"})
    if selection.limit is not None and selection.limit > room:
        message = f"at most {room} runs fit beside the uploaded examples (AIMPACT_DATASET_MAX_EXAMPLES)"
        errors.append({"field": "from_runs.limit", "message": message})
    return errors


def _check(body: DatasetCreate, settings: Settings) -> None:
    """422 naming each field that breaks a rule no schema states (caps, ranges, a source)."""
    cap = settings.dataset_max_examples
    uploaded = len(body.examples or [])
    errors: list[dict[str, str]] = []
    if body.examples is None and body.from_runs is None:
        message = "give examples, from_runs or both: a dataset needs at least one source"
        errors += [{"field": "examples", "message": message}, {"field": "from_runs", "message": message}]
    if uploaded > cap:
        errors.append({"field": "examples", "message": f"at most {cap} examples (AIMPACT_DATASET_MAX_EXAMPLES)"})
    elif body.from_runs is not None:
        errors += _selection_problems(body.from_runs, room=cap - uploaded)
    if errors:
        raise _invalid(errors)


def _too_few(body: DatasetCreate, *, uploaded: int, from_runs: int, size: int) -> ProblemError:
    """422 naming the sources given: together they gave fewer distinct examples than the split needs."""
    need = f"a dataset needs at least {MIN_EXAMPLES} distinct examples (one per split), these give {size}"
    errors = []
    if body.examples is not None:
        errors.append({"field": "examples", "message": f"{need}: {uploaded} uploaded"})
    if body.from_runs is not None:
        errors.append({"field": "from_runs", "message": f"{need}: {from_runs} completed runs matched"})
    return _invalid(errors)


def _filters(selection: RunSelection | None, limit: int) -> dict[str, Any] | None:
    if selection is None:
        return None
    return selection.model_dump(mode="json", exclude_none=True) | {"limit": limit}


@router.post("/v1/agents/{agent_id}/datasets", status_code=201, response_model=DatasetPublic, responses=problems(409))
async def create_dataset(
    agent_id: str, body: DatasetCreate, state: StateDep, session: SessionDep, principal: OptimizerWrite
) -> DatasetPublic:
    """Build an immutable dataset from the agent's runs (``from_runs``), uploaded ``examples``, or both.

    Identical examples are kept once; the result needs at least 3 (one per split), else 422
    naming the sources. An archived agent answers 409 ``agent-archived``; a tenant keeps at most
    ``AIMPACT_DATASETS_PER_TENANT`` datasets (one more: 409 ``dataset-limit``).
    """
    await agent_of(AgentRepository(session, principal.tenant_id), agent_id, live_for="it takes no new datasets")
    settings = state.settings
    _check(body, settings)
    store = DatasetStore(session, principal.tenant_id)
    uploaded = [Example(input=e.input, expected=e.expected, rubric=e.rubric) for e in body.examples or []]
    limit = 0
    from_runs: list[Example] = []
    if body.from_runs is not None:
        selection = body.from_runs
        limit = selection.limit or settings.dataset_max_examples - len(uploaded)
        wanted = RunFilter(
            min_score=selection.min_score,
            max_score=selection.max_score,
            since=selection.since,
            until=selection.until,
            label=selection.label,
            limit=limit,
        )
        from_runs = await store.run_examples(agent_id, wanted) if limit else []
    built = build([*uploaded, *from_runs])
    if len(built.examples) < MIN_EXAMPLES:
        raise _too_few(body, uploaded=len(uploaded), from_runs=len(from_runs), size=len(built.examples))
    try:
        dataset = await store.create(
            agent_id,
            body.name,
            built,
            source=source_of(uploaded=len(uploaded), from_runs=len(from_runs)),
            filters=_filters(body.from_runs, limit),
            author=Author(kind="user", id=principal.subject_id),
            limit=settings.datasets_per_tenant,
        )
    except DatasetLimitReached as exc:
        raise ProblemError(
            409, f"{exc} (AIMPACT_DATASETS_PER_TENANT={exc.limit})", slug=ProblemType.DATASET_LIMIT
        ) from None
    audit(
        session,
        principal,
        action="dataset.created",
        target_type="dataset",
        target_id=dataset.id,
        data={"agent_id": agent_id, "size": dataset.size, "hash": dataset.hash},
    )
    await session.commit()
    return dataset_public(dataset)


@router.get("/v1/agents/{agent_id}/datasets", response_model=Page[DatasetPublic])
async def list_datasets(
    agent_id: str,
    session: SessionDep,
    principal: OptimizerRead,
    after: Annotated[Keyset | None, Depends(DATASETS.after)],
    limit: Limit = 50,
) -> Page[DatasetPublic]:
    """Datasets of one agent (archived agents' too), newest first."""
    await agent_of(AgentRepository(session, principal.tenant_id), agent_id)
    rows = await DatasetStore(session, principal.tenant_id).of_agent(agent_id, limit=limit + 1, after=after)
    page, next_cursor = DATASETS.page(rows, limit)
    return Page(items=[dataset_public(r) for r in page], next_cursor=next_cursor)


async def _dataset(store: DatasetStore, dataset_id: str) -> Dataset:
    return found(await store.get(dataset_id), f"dataset {dataset_id}")


@router.get("/v1/datasets/{dataset_id}", response_model=DatasetPublic)
async def get_dataset(dataset_id: str, session: SessionDep, principal: OptimizerRead) -> DatasetPublic:
    """One dataset with its hash and split counts."""
    return dataset_public(await _dataset(DatasetStore(session, principal.tenant_id), dataset_id))


@router.get("/v1/datasets/{dataset_id}/examples", response_model=Page[ExamplePublic])
async def list_examples(
    dataset_id: str,
    session: SessionDep,
    principal: OptimizerRead,
    after: Annotated[int | None, Depends(EXAMPLES.after)],
    split: Annotated[Split | None, Query(description="Only the examples of this split.")] = None,
    limit: Limit = 50,
) -> Page[ExamplePublic]:
    """A dataset's examples in position order, of one split or all."""
    store = DatasetStore(session, principal.tenant_id)
    await _dataset(store, dataset_id)
    rows = await store.examples(dataset_id, split=split, limit=limit + 1, after=after)
    page, next_cursor = EXAMPLES.page(rows, limit)
    return Page(items=[example_public(r) for r in page], next_cursor=next_cursor)
