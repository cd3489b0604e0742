"""``/v1/pipelines/{id}/schedule``: one Temporal Schedule per pipeline (cron, input, overlap, pause, backfill).

The schedule lives in Temporal (``core.pipelines.schedules``); the routes check the request
(cron syntax at ``/cron``, the version at ``/version``, the input against its ``inputs``
schema at ``/input/...``, the backfill range at ``/from``/``/to``) and answer 503
``temporal-unavailable`` when Temporal does not answer. Runs a schedule starts are pipeline
runs with its ``schedule_id`` (``GET /v1/pipeline-runs?schedule_id=``).
"""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Response

from api.audit import audit
from api.deps import SessionDep, StateDep
from api.permissions import PipelinesRead, PipelinesWrite
from api.pipeline_schedule_schemas import (
    PipelineScheduleBackfill,
    PipelineSchedulePublic,
    PipelineScheduleSet,
)
from api.problem_types import ProblemType, problems
from api.problems import ProblemError, invalid
from api.schedule_routes import read_schedule, recent_actions, remove_schedule, save_schedule
from api.state import AppState
from api.temporal_problems import temporal_answers
from core.db.models import Pipeline
from core.pipelines.cron import Cron, CronError
from core.pipelines.repository import PipelineRepository
from core.pipelines.schedules import (
    MAX_BACKFILL_RANGE,
    MAX_BACKFILL_RUNS,
    PipelineSchedules,
    ScheduleSettings,
    ScheduleView,
)
from core.pipelines.validation import validate_input

router = APIRouter(prefix="/v1/pipelines", tags=["pipeline schedules"])


def schedules_of(state: AppState, tenant_id: str) -> PipelineSchedules:
    """The tenant's pipeline schedules in Temporal."""
    return PipelineSchedules(state.temporal, tenant_id, state.settings.pipelines_task_queue)


def _public(view: ScheduleView) -> PipelineSchedulePublic:
    settings = view.settings
    return PipelineSchedulePublic(
        id=view.id,
        pipeline_id=view.pipeline_id,
        cron=settings.cron,
        input=settings.input,
        overlap=settings.overlap,
        paused=settings.paused,
        catchup_window_s=settings.catchup_window_s,
        version=settings.version,
        next_action_times=view.next_action_times,
        recent_actions=recent_actions(view.recent_actions),
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


def _invalid(errors: list[dict[str, str]]) -> ProblemError:
    return invalid("schedule", errors)


async def _pipeline(repo: PipelineRepository, pipeline_id: str, *, live: bool) -> Pipeline:
    pipeline = await repo.get_any(pipeline_id)
    if pipeline is None:
        raise ProblemError(404, f"pipeline {pipeline_id} not found", slug=ProblemType.NOT_FOUND)
    if live and pipeline.deleted_at is not None:
        message = f"pipeline {pipeline_id} is archived: it has no schedule"
        raise ProblemError(409, message, slug=ProblemType.PIPELINE_ARCHIVED)
    return pipeline


async def _view(state: AppState, tenant_id: str, pipeline_id: str) -> ScheduleView:
    return await read_schedule(schedules_of(state, tenant_id).get(pipeline_id), _missing(pipeline_id))


def _missing(pipeline_id: str) -> str:
    return f"pipeline {pipeline_id} has no schedule"


@router.put("/{pipeline_id}/schedule", response_model=PipelineSchedulePublic, responses=problems(409, 503))
async def set_schedule(
    pipeline_id: str, body: PipelineScheduleSet, state: StateDep, session: SessionDep, principal: PipelinesWrite
) -> PipelineSchedulePublic:
    """Create or replace the pipeline's schedule; each fire starts a run of the current (or pinned) version.

    Runs a fire starts count against the tenant's run quota: over it, the run is recorded
    ``failed`` (``PipelineRunQuotaExceeded``). ``overlap`` decides what a fire does while
    the previous run still runs; ``catchup_window_s`` how late a missed fire may start.
    """
    repo = PipelineRepository(session, principal.tenant_id)
    pipeline = await _pipeline(repo, pipeline_id, live=True)
    errors: list[dict[str, str]] = []
    try:
        Cron.parse(body.cron)
    except CronError as exc:
        errors.append({"field": "/cron", "message": str(exc)})
    number = body.version or pipeline.version
    version = await repo.get_version(pipeline_id, number)
    if version is None:
        errors.append({"field": "/version", "message": f"pipeline {pipeline_id} has no version {number}"})
    else:
        refused = await anyio.to_thread.run_sync(validate_input, version.definition.get("inputs"), body.input)
        errors += [{"field": e.field, "message": e.message} for e in refused]
    if errors:
        raise _invalid(errors)
    settings = ScheduleSettings(
        cron=body.cron,
        input=body.input,
        overlap=body.overlap,
        paused=body.paused,
        catchup_window_s=body.catchup_window_s,
        version=body.version,
    )
    await save_schedule(
        schedules_of(state, principal.tenant_id).put(pipeline_id, settings),
        session,
        principal,
        action="pipeline.schedule_set",
        target_type="pipeline",
        target_id=pipeline_id,
        data={"cron": body.cron, "paused": body.paused},
    )
    return _public(await _view(state, principal.tenant_id, pipeline_id))


@router.get("/{pipeline_id}/schedule", response_model=PipelineSchedulePublic, responses=problems(503))
async def get_schedule(
    pipeline_id: str, state: StateDep, session: SessionDep, principal: PipelinesRead
) -> PipelineSchedulePublic:
    """The pipeline's schedule: its settings, the next fire times and the recent fires with their runs."""
    await _pipeline(PipelineRepository(session, principal.tenant_id), pipeline_id, live=False)
    return _public(await _view(state, principal.tenant_id, pipeline_id))


@router.delete("/{pipeline_id}/schedule", status_code=204, response_class=Response, responses=problems(503))
async def delete_schedule(
    pipeline_id: str, state: StateDep, session: SessionDep, principal: PipelinesWrite
) -> Response:
    """Delete the pipeline's schedule (runs it started go on); 404 when it has none."""
    await _pipeline(PipelineRepository(session, principal.tenant_id), pipeline_id, live=False)
    return await remove_schedule(
        schedules_of(state, principal.tenant_id).delete(pipeline_id),
        _missing(pipeline_id),
        session,
        principal,
        action="pipeline.schedule_deleted",
        target_type="pipeline",
        target_id=pipeline_id,
    )


@router.post(
    "/{pipeline_id}/schedule/backfill", status_code=202, response_model=PipelineSchedulePublic,
    responses=problems(409, 503),
)  # fmt: skip
async def backfill_schedule(
    pipeline_id: str, body: PipelineScheduleBackfill, state: StateDep, session: SessionDep, principal: PipelinesWrite
) -> PipelineSchedulePublic:
    """Take the schedule's fires in ``(from, to]`` now, under its overlap policy (at most 100 fires, 31 days)."""
    await _pipeline(PipelineRepository(session, principal.tenant_id), pipeline_id, live=True)
    view = await _view(state, principal.tenant_id, pipeline_id)
    start, end = body.from_, body.to
    if end <= start:
        raise _invalid([{"field": "/to", "message": "must be after from"}])
    if end - start > MAX_BACKFILL_RANGE:
        raise _invalid([{"field": "/to", "message": f"at most {MAX_BACKFILL_RANGE.days} days after from"}])
    fires = Cron.parse(view.settings.cron).count(start, end, cap=MAX_BACKFILL_RUNS)
    if fires > MAX_BACKFILL_RUNS:
        message = f"the range holds more than {MAX_BACKFILL_RUNS} fires of {view.settings.cron!r}; backfill in parts"
        raise _invalid([{"field": "/to", "message": message}])
    async with temporal_answers("the backfill could not be requested"):
        found = await schedules_of(state, principal.tenant_id).backfill(pipeline_id, start, end)
    if not found:
        raise ProblemError(404, _missing(pipeline_id), slug=ProblemType.NOT_FOUND)
    audit(session, principal, action="pipeline.schedule_backfilled", target_type="pipeline", target_id=pipeline_id,
          data={"from": start.isoformat(), "to": end.isoformat(), "fires": fires})  # fmt: skip
    await session.commit()
    return _public(view)
