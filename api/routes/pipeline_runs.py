"""Pipeline runs: start them (pinned to a version), read and list them from the projection, page their steps,
stream their events, decide their approval steps, cancel them."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import (
    RPCError,
    RPCStatusCode,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError

from api.deps import SessionDep, StateDep, tenant_quotas, too_many_requests
from api.pagination import BySeq, Limit, NewestFirst
from api.permissions import RunsApprove, RunsCancel, RunsRead, RunsStart
from api.pipeline_run_schemas import PipelineApprovalCreate, PipelineRunCreate, PipelineRunPublic, PipelineStepPublic
from api.problem_types import ProblemType, problems
from api.problems import ProblemError
from api.routes.events import After, LastEventId, StreamEnd, event_stream, sse_responses
from api.routes.runs import temporal_link
from api.schemas import Page, UsagePublic
from api.state import AppState
from core.contracts.pipelines import PipelineApprovalDecision, PipelineRunStatus
from core.db.models import PipelineVersion
from core.db.reads import Keyset
from core.pipelines.definition import STEP_ID_PATTERN
from core.pipelines.events import FINAL_EVENTS
from core.pipelines.reads import PipelineRunReads, PipelineRunRow, PipelineStepRow
from core.pipelines.repository import PipelineRepository
from core.pipelines.rerun import top_level
from core.pipelines.runs import (
    IdempotencyKeyReusedError,
    Rerun,
    request_fingerprint,
    run_by_key,
    start_pipeline_run,
    start_workflow,
)
from core.pipelines.store import ConcurrencyLimitError
from core.pipelines.validation import validate_input
from core.quotas import QuotaExceededError, check_run_quotas
from workflows.pipeline import PipelineWorkflow

T = TypeVar("T")
router = APIRouter(tags=["pipeline runs"])
PIPELINE_RUNS = NewestFirst("pipeline-runs")
PIPELINE_RUN_STEPS = BySeq("pipeline-run-steps", lambda step: step.seq)
STREAM_END = StreamEnd(last=FINAL_EVENTS)
MAP_ITEM_PATTERN = STEP_ID_PATTERN.removesuffix("$") + r"(\[[0-9]{1,9}\])*$"
"""A step that may have items: a top-level map ``m`` or an item of a map (``m[3]``, a nested map)."""
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
        steps=[pipeline_step_public(s, reused) for s in steps],
        usage=UsagePublic(input_tokens=run.input_tokens, output_tokens=run.output_tokens, cost_usd=run.cost_usd),
        error=run.error,
        rerun_of=run.rerun_of,
        parent_run_id=run.parent_run_id,
        parent_step_id=run.parent_step_id,
        reused_steps=run.reused_steps or [],
        schedule_id=run.schedule_id,
        created_at=run.created_at,
        updated_at=run.updated_at,
        temporal=temporal_link(state, run.workflow_id, run.workflow_run_id),
    )


def pipeline_step_public(step: PipelineStepRow, reused: frozenset[str] = frozenset()) -> PipelineStepPublic:
    """The public view of a step (or a map item); ``reused``: the top-level steps a re-run took from its original."""
    return PipelineStepPublic(
        id=step.step_id,
        type=step.type,
        status=step.status,
        started_at=step.started_at,
        ended_at=step.ended_at,
        attempts=step.attempts,
        output=step.output,
        error=step.error,
        items=step.items,
        reused=top_level(step.step_id) in reused,
    )


def _temporal_unavailable(detail: str) -> ProblemError:
    """503 problem+json for a request Temporal could not take (unreachable, overloaded); the client retries."""
    return ProblemError(503, detail, slug=ProblemType.TEMPORAL_UNAVAILABLE, headers={"Retry-After": "2"})


def _key_reused(exc: IdempotencyKeyReusedError) -> ProblemError:
    errors = [{"field": "Idempotency-Key", "message": str(exc)}]
    return ProblemError(422, str(exc), slug=ProblemType.IDEMPOTENCY_KEY_REUSED, errors=errors)


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
    *,
    fingerprint: str | None = None,
) -> PipelineRunPublic:
    """Check ``run_input`` and the tenant's run quota, then record and start a run of ``version``; its view.

    ``fingerprint`` identifies the request for its ``Idempotency-Key`` (default: the version
    started, the input and the re-run). 429 at the quota or at a rejecting concurrency limit;
    503 when Temporal cannot take the start (the run stays recorded, ``queued``).
    """
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
        run, _ = await _start(
            start_pipeline_run(
                state.engine,
                state.temporal,
                state.settings,
                tenant_id=tenant_id,
                pipeline_id=version.pipeline_id,
                version=version.version,
                definition=version.definition,
                run_input=run_input,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
                rerun=rerun,
            )
        )
    except IdempotencyKeyReusedError as exc:
        raise _key_reused(exc) from None
    except ConcurrencyLimitError as exc:
        raise ProblemError(429, str(exc), slug=ProblemType.PIPELINE_CONCURRENCY_LIMIT) from None
    return pipeline_run_public(state, *await found_run(state, tenant_id, run.id))


@router.post(
    "/v1/pipelines/{pipeline_id}/runs",
    status_code=202,
    response_model=PipelineRunPublic,
    responses=problems(409, 429, 503),
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
    ``Idempotency-Key`` dedupes like agent runs: the key is looked up first, and the same key
    with the same request (pipeline, ``version`` as sent, input) answers the run it started,
    even after a ``PUT`` made another version current; with another request it answers 422.
    A definition with ``max_concurrent_runs`` and ``on_concurrency_limit: reject`` answers 429
    ``pipeline-concurrency-limit`` while the pipeline has that many live runs; with ``queue``
    the run waits ``queued`` for a slot.
    """
    tenant_id = principal.tenant_id
    fingerprint = request_fingerprint(pipeline_id, body.version, body.input)
    if idempotency_key is not None:
        replayed = await _replayed(state, session, tenant_id, idempotency_key, fingerprint)
        if replayed is not None:
            return replayed
    version = await run_version(PipelineRepository(session, tenant_id), pipeline_id, body.version)
    return await start_run(state, session, tenant_id, version, body.input, idempotency_key, fingerprint=fingerprint)


async def _replayed(
    state: AppState, session: AsyncSession, tenant_id: str, key: str, fingerprint: str
) -> PipelineRunPublic | None:
    """The run an earlier request with ``key`` started (its workflow started now if that start failed), or ``None``."""
    try:
        existing = await run_by_key(state.engine, tenant_id, key, fingerprint)
    except IdempotencyKeyReusedError as exc:
        raise _key_reused(exc) from None
    if existing is None:
        return None
    if existing.status == PipelineRunStatus.QUEUED:  # its start may have failed: start it (its own version)
        found = await PipelineRepository(session, tenant_id).get_version(existing.pipeline_id, existing.version)
        if found is not None:
            await _start(start_workflow(state.temporal, state.settings, existing, found.definition))
    return pipeline_run_public(state, *await found_run(state, tenant_id, existing.id))


async def _start(starting: Awaitable[T]) -> T:
    """Await a start; Temporal out of reach answers 503 (the run stays recorded, queued)."""
    detail = "the run was recorded but could not be started; retry with the same Idempotency-Key"
    return await _temporal_call(starting, detail)


async def _temporal_call(call: Awaitable[T], detail: str, closed: tuple[RPCStatusCode, ...] = ()) -> T:
    """Await a call to Temporal: a workflow gone (``closed`` statuses) answers 409, Temporal out of reach 503."""
    try:
        return await call
    except RPCError as exc:
        if exc.status in closed:
            raise ProblemError(409, "the pipeline run is closed", slug=ProblemType.CONFLICT) from None
        raise _temporal_unavailable(detail) from exc
    except (RuntimeError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:  # no connection, or no answer in time
        raise _temporal_unavailable(detail) from exc


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
    """A pipeline run with its top-level steps; a map step counts its ``items`` (paged by ``…/steps?parent=``)."""
    return pipeline_run_public(state, *await found_run(state, principal.tenant_id, pipeline_run_id))


@router.get("/v1/pipeline-runs/{pipeline_run_id}/steps", response_model=Page[PipelineStepPublic])
async def list_pipeline_run_steps(
    pipeline_run_id: str,
    state: StateDep,
    principal: RunsRead,
    after: Annotated[int | None, Depends(PIPELINE_RUN_STEPS.after)],
    parent: Annotated[
        str | None,
        Query(
            max_length=100,
            pattern=MAP_ITEM_PATTERN,
            description="A map step (`m`, or a nested map's item `m[3]`): page its items `m[0]`, `m[1]`, ….",
        ),
    ] = None,
    limit: Limit = 50,
) -> Page[PipelineStepPublic]:
    """The run's top-level steps, or the items of the map step ``parent``, in the order they were first written."""
    reads = PipelineRunReads(state.reads, principal.tenant_id)
    found = await reads.status(pipeline_run_id)
    if found is None:
        raise ProblemError(404, f"pipeline run {pipeline_run_id} not found", slug=ProblemType.NOT_FOUND)
    rows = await reads.steps(pipeline_run_id, limit=limit + 1, after=after, parent=parent)
    page, next_cursor = PIPELINE_RUN_STEPS.page(rows, limit)
    reused = frozenset(found.reused_steps or ())
    return Page(items=[pipeline_step_public(s, reused) for s in page], next_cursor=next_cursor)


@router.get(
    "/v1/pipeline-runs/{pipeline_run_id}/events",
    response_class=StreamingResponse,
    responses=sse_responses("`pipeline_run.started`, `pipeline_step.completed`, `pipeline_run.completed`"),
)
async def pipeline_run_events(
    pipeline_run_id: str,
    state: StateDep,
    principal: RunsRead,
    last_event_id: LastEventId = None,
    after: After = None,
) -> StreamingResponse:
    """The run's and its steps' events as they are recorded, up to the run's outcome (``pipeline_run.completed``,
    ``.failed`` or ``.cancelled``), where the stream ends; resume with ``Last-Event-ID``."""
    found = await PipelineRunReads(state.reads, principal.tenant_id).status(pipeline_run_id)
    if found is None:
        raise ProblemError(404, f"pipeline run {pipeline_run_id} not found", slug=ProblemType.NOT_FOUND)
    return await event_stream(
        state,
        principal.tenant_id,
        pipeline_run_id,
        found.workflow_id,
        final=found.status in PipelineRunStatus.FINAL,
        start=last_event_id or after or "0",
        end=STREAM_END,
    )


@router.post(
    "/v1/pipeline-runs/{pipeline_run_id}/approvals/{step_id}",
    status_code=202,
    response_model=PipelineRunPublic,
    responses=ACCEPTED | problems(409, 503),
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
        _ = await _temporal_call(
            handle.execute_update(PipelineWorkflow.decide_approval, decision),
            "the decision could not be delivered (or not confirmed); read the run, retry if the step still waits",
            (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION),
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        detail = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise ProblemError(409, detail, slug=ProblemType.CONFLICT) from None
    return pipeline_run_public(state, *await found_run(state, principal.tenant_id, pipeline_run_id))


@router.post(
    "/v1/pipeline-runs/{pipeline_run_id}/cancel",
    status_code=202,
    response_model=PipelineRunPublic,
    responses=ACCEPTED | problems(409, 503),
)
async def cancel_pipeline_run(pipeline_run_id: str, state: StateDep, principal: RunsCancel) -> PipelineRunPublic:
    """Cancel a run: its running steps are cancelled, its status becomes ``cancelled``; 409 once it is final."""
    run, steps = await found_run(state, principal.tenant_id, pipeline_run_id)
    if run.status in PipelineRunStatus.FINAL:
        raise ProblemError(409, f"pipeline run is {run.status}", slug=ProblemType.CONFLICT)
    await _temporal_call(
        state.temporal.get_workflow_handle(run.workflow_id).cancel(),
        "the cancellation could not be delivered; retry it",
        (RPCStatusCode.NOT_FOUND,),
    )
    return pipeline_run_public(state, run, steps)
