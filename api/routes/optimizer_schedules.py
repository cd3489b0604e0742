"""``/v1/agents/{id}/optimizer/schedule``: one Temporal Schedule per agent, so optimization runs on its latest feedback.

The schedule lives in Temporal (``core.optimizer.schedules``, overlap ``skip``); each fire
records an optimizer run with the schedule's ``schedule_id`` (``GET /v1/optimizer/runs?schedule_id=``)
over a fresh dataset of the agent's well-rated runs (``activities.optimizer_schedule``). The routes
check the cron (``cron``) and the budget (``budget.*``, the caps of optimizer runs) and answer 503
``temporal-unavailable`` when Temporal does not answer.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import SessionDep, StateDep
from api.lookups import agent_of
from api.optimizer_schedule_schemas import (
    OptimizerScheduleBudgetPublic,
    OptimizerSchedulePublic,
    OptimizerScheduleSet,
)
from api.permissions import OptimizerRead, OptimizerWrite
from api.problem_types import problems
from api.problems import invalid
from api.routes.optimizer_runs import DEFAULT_STRATEGIES, run_budget, run_input
from api.schedule_routes import read_schedule, recent_actions, remove_schedule, save_schedule
from api.state import AppState
from core.contracts.optimizer import OptimizerRunStatus
from core.db.models import Agent, OptimizerRun
from core.db.repos import AgentRepository
from core.optimizer.schedules import OptimizerSchedules, OptimizerScheduleView, optimizer_schedule_id
from core.pipelines.cron import Cron, CronError

router = APIRouter(prefix="/v1/agents", tags=["optimizer schedules"])


def optimizer_schedules_of(state: AppState, tenant_id: str) -> OptimizerSchedules:
    """The tenant's optimizer schedules in Temporal."""
    return OptimizerSchedules(state.temporal, tenant_id, state.settings.optimizer_task_queue)


def _public(view: OptimizerScheduleView) -> OptimizerSchedulePublic:
    start = view.start
    return OptimizerSchedulePublic(
        id=view.id,
        agent_id=view.agent_id,
        cron=view.cron,
        overlap="skip",
        budget=OptimizerScheduleBudgetPublic(max_evals=start.max_evals, max_cost_usd=start.max_cost_usd),
        auto_promote=start.auto_promote,
        strategies=start.strategies,
        next_action_times=view.next_action_times,
        recent_actions=recent_actions(view.recent_actions),
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


async def _agent(session: AsyncSession, tenant_id: str, agent_id: str, *, live: bool) -> Agent:
    live_for = "it has no optimizer schedule" if live else None
    return await agent_of(AgentRepository(session, tenant_id), agent_id, live_for=live_for)


async def _view(state: AppState, tenant_id: str, agent_id: str) -> OptimizerScheduleView:
    return await read_schedule(optimizer_schedules_of(state, tenant_id).get(agent_id), _missing(agent_id))


def _missing(agent_id: str) -> str:
    return f"agent {agent_id} has no optimizer schedule"


@router.put("/{agent_id}/optimizer/schedule", response_model=OptimizerSchedulePublic, responses=problems(409, 503))
async def set_optimizer_schedule(
    agent_id: str, body: OptimizerScheduleSet, state: StateDep, session: SessionDep, principal: OptimizerWrite
) -> OptimizerSchedulePublic:
    """Create or replace the agent's optimizer schedule; each fire optimizes its current version on its latest feedback.

    A fire builds a dataset of the agent's completed runs of the last 30 days whose mean feedback
    score is at least 0.8 (their outputs become ``expected``; the agent's newest dataset is used
    again when identical) and runs the optimizer on it with the ``exact`` metric. A fire that
    cannot run is recorded as a ``failed`` run with a typed error (``OptimizerTooFewExamples``,
    ``AgentArchived``, ``DatasetLimitReached``). A fire while the previous run still runs is skipped.
    """
    tenant_id = principal.tenant_id
    await _agent(session, tenant_id, agent_id, live=True)
    errors: list[dict[str, str]] = []
    try:
        Cron.parse(body.cron)
    except CronError as exc:
        errors.append({"field": "cron", "message": str(exc)})
    budget, refused = run_budget(body.budget, state.settings)
    errors += refused
    if errors:
        raise invalid("optimizer schedule", errors)
    schedule_id = optimizer_schedule_id(tenant_id, agent_id)
    template = OptimizerRun(
        id="",
        tenant_id=tenant_id,
        agent_id=agent_id,
        status=OptimizerRunStatus.QUEUED.value,
        baseline_version=0,
        metric={},
        budget=budget,
        strategies=list(DEFAULT_STRATEGIES),
        auto_promote=body.auto_promote,
        dataset_hash="",
        workflow_id=schedule_id,
        schedule_id=schedule_id,
    )
    await save_schedule(
        optimizer_schedules_of(state, tenant_id).put(agent_id, body.cron, run_input(state.settings, template)),
        session,
        principal,
        action="optimizer.schedule_set",
        target_type="agent",
        target_id=agent_id,
        data={"cron": body.cron, "budget": budget, "auto_promote": body.auto_promote},
    )
    return _public(await _view(state, tenant_id, agent_id))


@router.get("/{agent_id}/optimizer/schedule", response_model=OptimizerSchedulePublic, responses=problems(503))
async def get_optimizer_schedule(
    agent_id: str, state: StateDep, session: SessionDep, principal: OptimizerRead
) -> OptimizerSchedulePublic:
    """The agent's optimizer schedule: its settings, the next fire times and the recent fires with their runs."""
    await _agent(session, principal.tenant_id, agent_id, live=False)
    return _public(await _view(state, principal.tenant_id, agent_id))


@router.delete("/{agent_id}/optimizer/schedule", status_code=204, response_class=Response, responses=problems(503))
async def delete_optimizer_schedule(
    agent_id: str, state: StateDep, session: SessionDep, principal: OptimizerWrite
) -> Response:
    """Delete the agent's optimizer schedule (runs it started go on); 404 when it has none."""
    await _agent(session, principal.tenant_id, agent_id, live=False)
    return await remove_schedule(
        optimizer_schedules_of(state, principal.tenant_id).delete(agent_id),
        _missing(agent_id),
        session,
        principal,
        action="optimizer.schedule_deleted",
        target_type="agent",
        target_id=agent_id,
    )
