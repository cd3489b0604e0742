"""``/v1/pipelines``: tenant-defined pipelines, their immutable versions, and validation.

A definition is validated on every save against the tenant's catalog (its live agents,
the built-in and tenant tools, its live pipelines). Validation is CPU-bound (up to about a
second for the largest definitions), so it runs in a worker thread. A save with an invalid
definition answers 422 ``validation-error``; each error's ``field`` is a JSON pointer into
the request body (``/definition/steps/3/if``). ``POST /v1/pipelines/validate`` answers 200
with the errors' pointers into the definition itself (``/steps/3/if``) and, when valid, the plan.
"""

from __future__ import annotations

from typing import Annotated, Any, NoReturn

import anyio
from fastapi import APIRouter, Depends, Path, Response
from starlette.exceptions import HTTPException

from api.audit import audit
from api.deps import Principal, SessionDep, StateDep
from api.pagination import BySeq, Limit, NewestFirst
from api.permissions import PipelinesRead, PipelinesWrite
from api.pipeline_schemas import (
    PipelineCreate,
    PipelinePublic,
    PipelineUpdate,
    PipelineValidate,
    PipelineVersionPublic,
    ValidationPublic,
)
from api.problem_types import ProblemType, problems
from api.problems import ProblemError
from api.routes.pipeline_schedules import schedules_of
from api.schemas import Page
from api.temporal_problems import temporal_answers
from api.version_schemas import AuthorPublic
from core.db.models import Pipeline, PipelineVersion
from core.db.repos import Author, Keyset
from core.pipelines.definition import Definition, PipelineStep, walk_steps
from core.pipelines.estimate import agent_costs, agent_ids, with_cost_estimate
from core.pipelines.repository import PipelineRepository, load_catalog, references
from core.pipelines.validation import ValidationResult, validate

router = APIRouter(prefix="/v1/pipelines", tags=["pipelines"])
PIPELINES = NewestFirst("pipelines")
VERSIONS = BySeq("pipeline-versions", lambda row: row.version)
"""Version numbers; the list is newest first, so a cursor's version is an upper bound."""
MAX_VERSION = 2**31 - 1
VersionPath = Annotated[int, Path(ge=1, le=MAX_VERSION, description="A version number of the pipeline.")]
BODY_POINTER = "/definition"
"""Where the definition sits in the bodies of ``POST`` and ``PUT``: the prefix of their errors' pointers."""


def pipeline_public(pipeline: Pipeline, version: PipelineVersion) -> PipelinePublic:
    """The public view of a pipeline at ``version``."""
    return PipelinePublic(
        id=pipeline.id,
        name=pipeline.name,
        version=version.version,
        definition=version.definition,
        archived=pipeline.deleted_at is not None,
        archived_at=pipeline.deleted_at,
        created_at=pipeline.created_at,
        updated_at=pipeline.updated_at,
    )


def version_public(pipeline: Pipeline, version: PipelineVersion) -> PipelineVersionPublic:
    """The public view of one version."""
    return PipelineVersionPublic(
        pipeline_id=pipeline.id,
        version=version.version,
        definition=version.definition,
        current=version.version == pipeline.version,
        created_at=version.created_at,
        created_by=AuthorPublic(kind=version.created_by_kind, id=version.created_by_id),
    )


async def _validated(
    session: SessionDep, tenant_id: str, definition: dict[str, Any], *, pipeline_id: str | None = None
) -> ValidationResult:
    """``definition`` validated against the tenant's catalog (a pipeline may not name itself)."""
    wanted = await anyio.to_thread.run_sync(references, definition)
    catalog = await load_catalog(session, tenant_id, wanted, exclude_pipeline=pipeline_id)
    return await anyio.to_thread.run_sync(validate, definition, catalog)


async def _checked(
    session: SessionDep, tenant_id: str, definition: dict[str, Any], *, pipeline_id: str | None = None
) -> None:
    """422 ``validation-error`` naming every problem of ``definition`` at its pointer into the body."""
    result = await _validated(session, tenant_id, definition, pipeline_id=pipeline_id)
    errors = [{"field": BODY_POINTER + e.field, "message": e.message} for e in result.errors]
    if result.definition is not None and pipeline_id is not None:
        errors += await _cycles(PipelineRepository(session, tenant_id), pipeline_id, result.definition)
    if not errors:
        return
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    detail = f"invalid pipeline definition — {first['field']}: {first['message']}{more}"
    raise ProblemError(422, detail, slug=ProblemType.VALIDATION_ERROR, errors=errors)


async def _cycles(repo: PipelineRepository, pipeline_id: str, definition: Definition) -> list[dict[str, str]]:
    """An error at each ``pipeline`` step naming a pipeline that would run ``pipeline_id`` again."""
    sites = [(s.pointer, s.step) for s in walk_steps(definition) if isinstance(s.step, PipelineStep)]
    callers = await repo.callers_of(pipeline_id, {step.pipeline_id for _, step in sites})
    message = "pipeline {} runs this pipeline again (through its sub-pipelines): pipelines cannot form a cycle"
    return [
        {"field": f"{BODY_POINTER}{at}/pipeline_id", "message": message.format(repr(step.pipeline_id))}
        for at, step in sites
        if step.pipeline_id in callers
    ]


def _author(principal: Principal) -> Author:
    return Author(kind="user", id=principal.subject_id)


def _not_found(pipeline_id: str) -> ProblemError:
    return ProblemError(404, f"pipeline {pipeline_id} not found", slug=ProblemType.NOT_FOUND)


async def _pipeline(repo: PipelineRepository, pipeline_id: str, *, live: bool = False, lock: bool = False) -> Pipeline:
    """The pipeline (archived too, unless ``live``: then an archived one answers 409)."""
    pipeline = await repo.get_any(pipeline_id, lock=lock)
    if pipeline is None:
        raise _not_found(pipeline_id)
    if live and pipeline.deleted_at is not None:
        raise ProblemError(409, f"pipeline {pipeline_id} is archived", slug=ProblemType.PIPELINE_ARCHIVED)
    return pipeline


async def _version(repo: PipelineRepository, pipeline_id: str, version: int) -> PipelineVersion:
    found = await repo.get_version(pipeline_id, version)
    if found is None:
        raise ProblemError(404, f"pipeline {pipeline_id} has no version {version}", slug=ProblemType.NOT_FOUND)
    return found


@router.post("/validate", response_model=ValidationPublic)
async def validate_pipeline(body: PipelineValidate, session: SessionDep, principal: PipelinesRead) -> ValidationPublic:
    """Check a definition against the tenant's agents, tools and pipelines; nothing is stored.

    The answer is 200 either way: ``valid``, the ``errors`` (each at a JSON pointer into the
    definition) and, when valid, the ``plan`` with its cost estimate (``core.pipelines.estimate``).
    """
    result = await _validated(session, principal.tenant_id, body.definition)
    answer = result.to_json()
    if result.plan is not None and result.definition is not None:
        costs = await agent_costs(session, principal.tenant_id, agent_ids(result.definition))
        answer["plan"] = with_cost_estimate(result.plan, result.definition, costs)
    return ValidationPublic.model_validate(answer)


@router.api_route("/validate", methods=["GET", "PUT", "DELETE"], include_in_schema=False, response_model=None)
async def _validate_other_methods(principal: PipelinesRead) -> NoReturn:
    """``validate`` is no pipeline id: other methods on it answer 405 instead of matching ``/{pipeline_id}``."""
    raise HTTPException(405, headers={"Allow": "POST"})


@router.post("", status_code=201, response_model=PipelinePublic)
async def create_pipeline(body: PipelineCreate, session: SessionDep, principal: PipelinesWrite) -> PipelinePublic:
    """Create a pipeline at version 1 (its definition must be valid)."""
    await _checked(session, principal.tenant_id, body.definition)
    pipeline, version = await PipelineRepository(session, principal.tenant_id).create(
        body.name, body.definition, _author(principal)
    )
    audit(session, principal, action="pipeline.created", target_type="pipeline", target_id=pipeline.id)
    await session.commit()
    return pipeline_public(pipeline, version)


@router.get("", response_model=Page[PipelinePublic])
async def list_pipelines(
    session: SessionDep,
    principal: PipelinesRead,
    after: Annotated[Keyset | None, Depends(PIPELINES.after)],
    limit: Limit = 50,
) -> Page[PipelinePublic]:
    """Live pipelines of the caller's tenant at their current versions, newest first."""
    rows = await PipelineRepository(session, principal.tenant_id).list(limit=limit + 1, after=after)
    page, next_cursor = PIPELINES.page([pipeline for pipeline, _ in rows], limit)
    versions = {pipeline.id: version for pipeline, version in rows}
    return Page(items=[pipeline_public(p, versions[p.id]) for p in page], next_cursor=next_cursor)


@router.get("/{pipeline_id}", response_model=PipelinePublic)
async def get_pipeline(pipeline_id: str, session: SessionDep, principal: PipelinesRead) -> PipelinePublic:
    """One pipeline at its current version (archived pipelines stay readable)."""
    repo = PipelineRepository(session, principal.tenant_id)
    pipeline = await _pipeline(repo, pipeline_id)
    return pipeline_public(pipeline, await _version(repo, pipeline_id, pipeline.version))


async def new_version(
    session: SessionDep,
    principal: Principal,
    pipeline_id: str,
    definition: dict[str, Any],
    *,
    author: Author,
    name: str | None = None,
    from_version: int | None = None,
) -> tuple[Pipeline, PipelineVersion]:
    """A new current version of the pipeline with ``definition``, validated and audited (the caller commits).

    What ``PUT /v1/pipelines/{id}`` does (and a recommendation's apply): 422 naming each problem
    of the definition, 409 for an archived pipeline and, with ``from_version``, unless that is
    still the current version.
    """
    repo = PipelineRepository(session, principal.tenant_id)
    await _pipeline(repo, pipeline_id, live=True)
    await _checked(session, principal.tenant_id, definition, pipeline_id=pipeline_id)
    pipeline = await _pipeline(repo, pipeline_id, live=True, lock=True)  # archived meanwhile: still 409
    if from_version is not None and pipeline.version != from_version:
        message = f"pipeline {pipeline_id} is at version {pipeline.version}, not {from_version}"
        raise ProblemError(409, message, slug=ProblemType.CONFLICT)
    version = await repo.add_version(pipeline, definition, author)
    if name is not None:
        pipeline.name = name
    data: dict[str, Any] = {"version": version.version}
    if author.kind != "user":
        data["created_by"] = {"kind": author.kind, "id": author.id}
    audit(
        session, principal, action="pipeline.version_created", target_type="pipeline", target_id=pipeline.id, data=data
    )
    return pipeline, version


@router.put("/{pipeline_id}", response_model=PipelinePublic, responses=problems(409))
async def update_pipeline(
    pipeline_id: str, body: PipelineUpdate, session: SessionDep, principal: PipelinesWrite
) -> PipelinePublic:
    """A new immutable version with this definition, made current; runs in flight keep theirs."""
    pipeline, version = await new_version(
        session, principal, pipeline_id, body.definition, author=_author(principal), name=body.name
    )
    await session.commit()
    return pipeline_public(pipeline, version)


@router.delete("/{pipeline_id}", status_code=204, response_class=Response, responses=problems(503))
async def archive_pipeline(
    pipeline_id: str, state: StateDep, session: SessionDep, principal: PipelinesWrite
) -> Response:
    """Archive: edits answer 409; the pipeline and its versions stay readable; it leaves the list; its schedule is
    deleted (503 if Temporal does not answer: archived, send the DELETE again to delete the schedule)."""
    repo = PipelineRepository(session, principal.tenant_id)
    pipeline = await _pipeline(repo, pipeline_id, lock=True)
    if pipeline.deleted_at is None:
        repo.archive(pipeline)
        audit(session, principal, action="pipeline.archived", target_type="pipeline", target_id=pipeline.id)
        await session.commit()
    async with temporal_answers("archived, but its schedule could not be deleted"):
        await schedules_of(state, principal.tenant_id).delete(pipeline_id)
    return Response(status_code=204)


@router.get("/{pipeline_id}/versions", response_model=Page[PipelineVersionPublic])
async def list_versions(
    pipeline_id: str,
    session: SessionDep,
    principal: PipelinesRead,
    after: Annotated[int | None, Depends(VERSIONS.after)],
    limit: Limit = 50,
) -> Page[PipelineVersionPublic]:
    """Versions newest first, each with ``current``."""
    repo = PipelineRepository(session, principal.tenant_id)
    pipeline = await _pipeline(repo, pipeline_id)
    rows, next_cursor = VERSIONS.page(await repo.versions(pipeline_id, limit=limit + 1, before=after), limit)
    return Page(items=[version_public(pipeline, v) for v in rows], next_cursor=next_cursor)


@router.get("/{pipeline_id}/versions/{version}", response_model=PipelineVersionPublic)
async def get_version(
    pipeline_id: str, version: VersionPath, session: SessionDep, principal: PipelinesRead
) -> PipelineVersionPublic:
    """One version of a pipeline."""
    repo = PipelineRepository(session, principal.tenant_id)
    pipeline = await _pipeline(repo, pipeline_id)
    return version_public(pipeline, await _version(repo, pipeline_id, version))
