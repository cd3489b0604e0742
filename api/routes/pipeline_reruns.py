"""``POST /v1/pipeline-runs/{id}/rerun``: a new run keeping the recorded outputs of the steps before ``from_step``."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Header

from api.deps import SessionDep, StateDep
from api.permissions import RunsStart
from api.pipeline_run_schemas import PipelineRerunCreate, PipelineRunPublic
from api.problem_types import ProblemType, problems
from api.problems import ProblemError
from api.routes.pipeline_runs import found_run, run_version, start_run
from core.contracts.pipelines import PipelineRunStatus
from core.pipelines.reads import PipelineRunReads
from core.pipelines.repository import PipelineRepository
from core.pipelines.rerun import UnknownStepError, build_rerun

router = APIRouter(tags=["pipeline runs"])


@router.post(
    "/v1/pipeline-runs/{pipeline_run_id}/rerun",
    status_code=202,
    response_model=PipelineRunPublic,
    responses=problems(409, 503),
)
async def rerun_pipeline_run(
    pipeline_run_id: str,
    body: PipelineRerunCreate,
    state: StateDep,
    session: SessionDep,
    principal: RunsStart,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> PipelineRunPublic:
    """Re-run a final run from ``from_step``, as its version or as ``version`` of the same pipeline, with its input.

    The new run (``rerun_of``) takes the recorded outcome of every step that does not depend
    on ``from_step``, when that step completed (or was skipped) in this run and its
    definition is the same in both versions; it lists them in ``reused_steps``. Everything
    else runs again. 409 while the run is not final; 422 naming ``/from_step`` for a step the
    version does not have. ``Idempotency-Key`` as for starting a run.
    """
    run, _ = await found_run(state, principal.tenant_id, pipeline_run_id)
    if run.status not in PipelineRunStatus.FINAL:
        message = f"pipeline run {run.id} is {run.status}: only a final run can be re-run"
        raise ProblemError(409, message, slug=ProblemType.RUN_NOT_FINISHED)
    repo = PipelineRepository(session, principal.tenant_id)
    target = await run_version(repo, run.pipeline_id, body.version or run.version, field="/version")
    original = await repo.get_version(run.pipeline_id, run.version)
    steps = await PipelineRunReads(state.reads, principal.tenant_id).every_step(run.id)
    try:
        rerun = await anyio.to_thread.run_sync(
            build_rerun, target.definition, original.definition if original else {}, body.from_step, run.id, steps
        )
    except UnknownStepError:
        message = f"version {target.version} of the pipeline has no top-level step {body.from_step!r}"
        errors = [{"field": "/from_step", "message": message}]
        raise ProblemError(422, message, slug=ProblemType.VALIDATION_ERROR, errors=errors) from None
    return await start_run(state, session, principal.tenant_id, target, run.input, idempotency_key, rerun)
