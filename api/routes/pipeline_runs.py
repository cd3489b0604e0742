"""Pipeline runs: start them (pinned to a version), read and list them from the projection, decide their
approval steps, cancel them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import RPCError, RPCStatusCode, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from api.deps import SessionDep, StateDep, tenant_quotas, too_many_requests
from api.pagination import Limit, NewestFirst
from api.permissions import RunsApprove, RunsCancel, RunsRead, RunsStart
from api.pipeline_run_schemas import PipelineApprovalCreate, PipelineRunCreate, PipelineRunPublic, PipelineStepPublic
from api.problem_types import ProblemType, problems
from api.problems import ProblemError
from api.routes.runs import temporal_link
from api.schemas import Page, UsagePublic
from api.state import AppState
from core.contracts.pipelines import PipelineApprovalDecision, PipelineRunStatus
from core.db.models import PipelineVersion
from core.db.reads import Keyset
from core.pipelines.reads import PipelineRunReads, PipelineRunRow, PipelineStepRow
from core.pipelines.repository import PipelineRepository
from core.pipelines.rerun import top_level
from core.pipelines.runs import IdempotencyKeyReusedError, Rerun, start_pipeline_run
from core.pipelines.validation import validate_input
from core.quotas import QuotaExceededError, check_run_quotas
from workflows.pipeline import PipelineWorkflow

router = APIRouter(tags=["pipeline runs"])
PIPELINE_RUNS = NewestFirst("pipeline-runs")
ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"description": "The run as it stands; the workflow acts on the request next."}
}


def pipeline_run_public(state: AppState, run: PipelineRunRow, steps: Sequence[PipelineStepRow]) -> PipelineRunPublic:
    """The public view of a pipeline run and its steps."""
    reused = frozenset(run.reused_steps or ())
    return PipelineRunPublic(
        id=run.id,
        pipeline_id=run.pipeline_id,
        version=run.version,
        status=run.status,
        input=run.input,
        output=run.output,
        steps=[
            PipelineStepPublic(
                id=s.step_id,
                type=s.type,
                status=s.status,
                started_at=s.started_at,
                ended_at=s.ended_at,
                attempts=s.attempts,
                output=s.output,
                error=s.error,
                reused=top_level(s.step_id) in reused,
            )
            for s in steps
        ],
        usage=UsagePublic(input_tokens=run.input_tokens, output_tokens=run.output_tokens, cost_usd=run.cost_usd),
        error=run.error,
        rerun_of=run.rerun_of,
        reused_steps=run.reused_steps or [],
        schedule_id=run.schedule_id,
        created_at=run.created_at,
        updated_at=run.updated_at,
        temporal=temporal_link(state, run.workflow_id, run.workflow_run_id),
    )


async def found_run(state: AppState, tenant_id: str, run_id: str) -> tuple[PipelineRunRow, list[PipelineStepRow]]:
    """The tenant's run ``run_id`` with its steps, or 404."""
    found = await PipelineRunReads(state.reads, tenant_id).get(run_id)
    if found is None:
        raise ProblemError(404, f"pipeline run {run_id} not found", slug=ProblemType.NOT_FOUND)
    return found


async def run_version(
    repo: PipelineRepository, pipeline_id: str, number: int | None, *, field: str = "version"
) -> PipelineVersion:
    """Version ``number`` (default: the current one) of a live pipeline; 404, 409 if archived, 422 naming ``field``."""
    pipeline = await repo.get_any(pipeline_id)
    if pipeline is None:
        raise ProblemError(404, f"pipeline {pipeline_id} not found", slug=ProblemType.NOT_FOUND)
    if pipeline.deleted_at is not None:
        message = f"pipeline {pipeline_id} is archived: it starts no new runs"
        raise ProblemError(409, message, slug=ProblemType.PIPELINE_ARCHIVED)
    number = number or pipeline.version
    version = await repo.get_version(pipeline_id, number)
    if version is None:
        message = f"pipeline {pipeline_id} has no version {number}"
        raise ProblemError(
            422, message, slug=ProblemType.VALIDATION_ERROR, errors=[{"field": field, "message": message}]
        )
    return version


async def start_run(
    state: AppState,
    session: AsyncSession,
    tenant_id: str,
    version: PipelineVersion,
    run_input: Any,
    idempotency_key: str | None,
    rerun: Rerun | None = None,
) -> PipelineRunPublic:
    """Check ``run_input`` and the tenant's run quota, then record and start a run of ``version``; its view."""
    refused = validate_input(version.definition.get("inputs"), run_input)
    if refused:
        errors = [{"field": e.field, "message": e.message} for e in refused]
        raise ProblemError(
            422,
            "the input does not match the pipeline's inputs schema",
            slug=ProblemType.VALIDATION_ERROR,
            errors=errors,
        )
    try:
        await check_run_quotas(session, tenant_id, await tenant_quotas(state, tenant_id))
    except QuotaExceededError as exc:
        raise too_many_requests(exc) from None
    try:
        run, _ = await start_pipeline_run(
            state.engine,
            state.temporal,
            state.settings,
            tenant_id=tenant_id,
            pipeline_id=version.pipeline_id,
            version=version.version,
            definition=version.definition,
            run_input=run_input,
            idempotency_key=idempotency_key,
            rerun=rerun,
        )
    except IdempotencyKeyReusedError as exc:
        errors = [{"field": "Idempotency-Key", "message": str(exc)}]
        raise ProblemError(422, str(exc), slug=ProblemType.IDEMPOTENCY_KEY_REUSED, errors=errors) from None
    except RPCError as exc:
        raise ProblemError(
            503,
            "the run was recorded but could not be started; retry with the same Idempotency-Key",
            slug=ProblemType.TEMPORAL_UNAVAILABLE,
            headers={"Retry-After": "2"},
        ) from exc
    return pipeline_run_public(state, *await found_run(state, tenant_id, run.id))


@router.post(
    "/v1/pipelines/{pipeline_id}/runs", status_code=202, response_model=PipelineRunPublic, responses=problems(409, 503)
)
async def start_pipeline(
    pipeline_id: str,
    body: PipelineRunCreate,
    state: StateDep,
    session: SessionDep,
    principal: RunsStart,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> PipelineRunPublic:
    """Start a run of the pipeline's current version (or ``version``); the run keeps that version's definition.

    The input is checked against the definition's ``inputs`` schema (422 naming ``/input/...``).
    ``Idempotency-Key`` dedupes like agent runs: the same key with the same request answers
    the run it started; with another pipeline, version or input it answers 422.
    """
    version = await run_version(PipelineRepository(session, principal.tenant_id), pipeline_id, body.version)
    return await start_run(state, session, principal.tenant_id, version, body.input, idempotency_key)


@router.get("/v1/pipeline-runs", response_model=Page[PipelineRunPublic])
async def list_pipeline_runs(
    state: StateDep,
    principal: RunsRead,
    after: Annotated[Keyset | None, Depends(PIPELINE_RUNS.after)],
    pipeline_id: Annotated[str | None, Query(max_length=40)] = None,
    status: PipelineRunStatus | None = None,
    schedule_id: Annotated[str | None, Query(max_length=200, description="Runs started by this schedule.")] = None,
    limit: Limit = 50,
) -> Page[PipelineRunPublic]:
    """Pipeline runs of the caller's tenant, newest first."""
    found = await PipelineRunReads(state.reads, principal.tenant_id).list(
        limit=limit + 1, after=after, pipeline_id=pipeline_id, status=status, schedule_id=schedule_id
    )
    steps = {run.id: run_steps for run, run_steps in found}
    page, next_cursor = PIPELINE_RUNS.page([run for run, _ in found], limit)
    return Page(items=[pipeline_run_public(state, r, steps[r.id]) for r in page], next_cursor=next_cursor)


@router.get("/v1/pipeline-runs/{pipeline_run_id}", response_model=PipelineRunPublic)
async def get_pipeline_run(pipeline_run_id: str, state: StateDep, principal: RunsRead) -> PipelineRunPublic:
    """A pipeline run with its steps (map items as ``<map id>[<index>]``)."""
    return pipeline_run_public(state, *await found_run(state, principal.tenant_id, pipeline_run_id))


@router.post(
    "/v1/pipeline-runs/{pipeline_run_id}/approvals/{step_id}",
    status_code=202,
    response_model=PipelineRunPublic,
    responses=ACCEPTED | problems(409),
)
async def decide_pipeline_approval(
    pipeline_run_id: str, step_id: str, body: PipelineApprovalCreate, state: StateDep, principal: RunsApprove
) -> PipelineRunPublic:
    """Approve or reject an approval step that waits; 409 if that step is not waiting."""
    run, _ = await found_run(state, principal.tenant_id, pipeline_run_id)
    if run.status in PipelineRunStatus.FINAL:
        raise ProblemError(409, f"pipeline run is {run.status}", slug=ProblemType.CONFLICT)
    handle = state.temporal.get_workflow_handle_for(PipelineWorkflow.run, run.workflow_id)
    decision = PipelineApprovalDecision(
        step_id=step_id, decision=body.decision, decided_by=principal.subject_id, comment=body.comment
    )
    try:
        _ = await handle.execute_update(PipelineWorkflow.decide_approval, decision)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        detail = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise ProblemError(409, detail, slug=ProblemType.CONFLICT) from None
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise ProblemError(409, "the pipeline run is closed", slug=ProblemType.CONFLICT) from None
        raise
    return pipeline_run_public(state, *await found_run(state, principal.tenant_id, pipeline_run_id))


@router.post(
    "/v1/pipeline-runs/{pipeline_run_id}/cancel",
    status_code=202,
    response_model=PipelineRunPublic,
    responses=ACCEPTED | problems(409),
)
async def cancel_pipeline_run(pipeline_run_id: str, state: StateDep, principal: RunsCancel) -> PipelineRunPublic:
    """Cancel a run: its running steps are cancelled, its status becomes ``cancelled``; 409 once it is final."""
    run, steps = await found_run(state, principal.tenant_id, pipeline_run_id)
    if run.status in PipelineRunStatus.FINAL:
        raise ProblemError(409, f"pipeline run is {run.status}", slug=ProblemType.CONFLICT)
    try:
        await state.temporal.get_workflow_handle(run.workflow_id).cancel()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise ProblemError(409, "the pipeline run is closed", slug=ProblemType.CONFLICT) from None
        raise
    return pipeline_run_public(state, run, steps)
