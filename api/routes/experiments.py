"""``/v1/agents/{id}/experiments``, ``/v1/experiments/{id}``: online A/B tests between an agent's versions.

While an experiment runs, new runs of the agent take the control (the version current at
creation) or the candidate: a subject (else thread) keeps the arm of its first run, new ones are
split by ``traffic``, then by Thompson sampling, and feedback on them decides
(``core.optimizer.experiment_store``).
"""

from __future__ import annotations

import random
from typing import Annotated

from fastapi import APIRouter, Depends

from api import cache_bus
from api.audit import audit
from api.deps import SessionDep, StateDep
from api.experiment_schemas import ArmPublic, ExperimentCreate, ExperimentPublic
from api.lookups import agent_of, found
from api.pagination import Limit, NewestFirst
from api.permissions import OptimizerRead, OptimizerWrite
from api.problem_types import ProblemType, problems
from api.problems import ProblemError, invalid
from api.schemas import Page
from api.version_schemas import AuthorPublic
from core.db.models import Experiment
from core.db.repos import AgentRepository, Author, Keyset
from core.optimizer.experiment_store import (
    CANDIDATE,
    CONTROL,
    ExperimentRunning,
    ExperimentStatus,
    ExperimentStore,
    Outcome,
    state_of,
)
from core.optimizer.experiments import p_best

router = APIRouter(tags=["optimizer"])
EXPERIMENTS = NewestFirst("experiments")
P_BEST_DRAWS = 2_000


def experiment_public(row: Experiment) -> ExperimentPublic:
    """The public view of one experiment, with each arm's statistics and posterior chance of being best."""
    state = state_of(row)
    chances = p_best(state, random.Random(0), P_BEST_DRAWS)  # noqa: S311 (an estimate, no secret)
    arms = []
    for arm, version in ((CONTROL, row.control_version), (CANDIDATE, row.candidate_version)):
        stats = state.arms[str(version)]
        mean = stats.mean if stats.n else None
        arms.append(ArmPublic(arm=arm, version=version, n=stats.n, mean=mean, p_best=chances[str(version)]))
    return ExperimentPublic(
        id=row.id,
        agent_id=row.agent_id,
        status=ExperimentStatus(row.status),
        control_version=row.control_version,
        candidate_version=row.candidate_version,
        traffic=row.traffic,
        candidate_share=row.candidate_share,
        metric="feedback",
        min_samples=row.min_samples,
        auto_promote=row.auto_promote,
        arms=arms,
        decision=None if row.decision is None else Outcome(row.decision),
        reason=row.reason,
        created_by=AuthorPublic(kind=row.created_by_kind, id=row.created_by_id),
        created_at=row.created_at,
        updated_at=row.updated_at,
        ended_at=row.ended_at,
    )


def _invalid(field: str, message: str) -> ProblemError:
    return invalid("experiment", [{"field": field, "message": message}])


@router.post(
    "/v1/agents/{agent_id}/experiments", status_code=201, response_model=ExperimentPublic, responses=problems(409)
)
async def create_experiment(
    agent_id: str, body: ExperimentCreate, state: StateDep, session: SessionDep, principal: OptimizerWrite
) -> ExperimentPublic:
    """Start testing ``candidate_version`` against the agent's current version on ``traffic`` of its subjects.

    The candidate must be another version of this agent (else 422 naming ``candidate_version``);
    an archived agent answers 409 ``agent-archived``, an agent already running one 409 ``conflict``.
    """
    agents = AgentRepository(session, principal.tenant_id)
    agent = await agent_of(agents, agent_id, live_for="it takes no experiments", lock=True)
    if body.candidate_version == agent.version:
        raise _invalid("candidate_version", f"version {agent.version} is already current: it is the control")
    if await agents.get_version(agent_id, body.candidate_version) is None:
        raise _invalid("candidate_version", f"agent {agent_id} has no version {body.candidate_version}")
    try:
        experiment = await ExperimentStore(session, principal.tenant_id).create(
            agent,
            candidate_version=body.candidate_version,
            traffic=body.traffic,
            min_samples=body.min_samples,
            auto_promote=body.auto_promote,
            author=Author(kind="user", id=principal.subject_id),
        )
    except ExperimentRunning as exc:
        raise ProblemError(409, f"agent {agent_id}: {exc}", slug=ProblemType.CONFLICT) from None
    audit(
        session,
        principal,
        action="experiment.created",
        target_type="agent",
        target_id=agent_id,
        data={"id": experiment.id, "control": agent.version, "candidate": body.candidate_version},
    )
    await session.commit()
    await state.caches.invalidate(cache_bus.AGENTS)
    return experiment_public(experiment)


@router.get("/v1/agents/{agent_id}/experiments", response_model=Page[ExperimentPublic])
async def list_experiments(
    agent_id: str,
    session: SessionDep,
    principal: OptimizerRead,
    after: Annotated[Keyset | None, Depends(EXPERIMENTS.after)],
    limit: Limit = 50,
) -> Page[ExperimentPublic]:
    """Experiments of one agent (an archived agent's too), newest first."""
    await agent_of(AgentRepository(session, principal.tenant_id), agent_id)
    rows = await ExperimentStore(session, principal.tenant_id).of_agent(agent_id, limit=limit + 1, after=after)
    page, next_cursor = EXPERIMENTS.page(rows, limit)
    return Page(items=[experiment_public(r) for r in page], next_cursor=next_cursor)


async def _experiment(store: ExperimentStore, experiment_id: str, *, lock: bool = False) -> Experiment:
    return found(await store.get(experiment_id, lock=lock), f"experiment {experiment_id}")


@router.get("/v1/experiments/{experiment_id}", response_model=ExperimentPublic)
async def get_experiment(experiment_id: str, session: SessionDep, principal: OptimizerRead) -> ExperimentPublic:
    """One experiment: its status, each arm's ``{version, n, mean, p_best}`` and its decision."""
    return experiment_public(await _experiment(ExperimentStore(session, principal.tenant_id), experiment_id))


@router.post("/v1/experiments/{experiment_id}/stop", response_model=ExperimentPublic)
async def stop_experiment(
    experiment_id: str, state: StateDep, session: SessionDep, principal: OptimizerWrite
) -> ExperimentPublic:
    """Stop a running experiment: new runs take the agent's current version again (an ended one is returned as is)."""
    store = ExperimentStore(session, principal.tenant_id)
    experiment = await _experiment(store, experiment_id, lock=True)
    if experiment.status != ExperimentStatus.RUNNING:
        return experiment_public(experiment)
    store.end(experiment, ExperimentStatus.STOPPED, Outcome.STOPPED, "stopped by request")
    audit(
        session,
        principal,
        action="experiment.stopped",
        target_type="agent",
        target_id=experiment.agent_id,
        data={"id": experiment.id},
    )
    await session.commit()
    await state.caches.invalidate(cache_bus.AGENTS)
    return experiment_public(experiment)
