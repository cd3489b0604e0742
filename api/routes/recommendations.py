"""``/v1/recommendations``: evidence-backed changes mined from the tenant's history, applied or dismissed in one call.

A pass of ``RecommendationWorkflow`` (a schedule per tenant, or ``POST .../refresh``) writes
them; apply performs the action through the same code paths as the API (a new agent version
as ``PATCH /v1/agents/{id}`` makes it, by ``recommendation``; a new pipeline version as ``PUT
/v1/pipelines/{id}``; a dataset and an optimizer run as their routes do), so it needs the
permission that change needs besides ``recommendations:write`` (403 otherwise). A target that
changed since the evidence answers 409 with the reason and the recommendation turns ``stale``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.exceptions import RequestValidationError
from temporalio.common import Priority, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api import cache_bus
from api.audit import audit
from api.deps import Principal, SessionDep, StateDep
from api.optimizer_schemas import Budget
from api.pagination import Limit, NewestFirst
from api.permissions import RecommendationsRead, RecommendationsWrite
from api.problem_types import ProblemType, problems
from api.problems import ProblemError
from api.recommendation_schemas import ExpectedGainPublic, RecommendationDismiss, RecommendationPublic, RefreshPublic
from api.routes import agents, optimizer_runs, pipelines
from api.routes.runs import temporal_link
from api.schemas import Page
from api.state import AppState
from api.temporal_problems import temporal_answers
from core.contracts.recommend import (
    ACTION_PERMISSION,
    WORKFLOW_NAME,
    ActionType,
    RecommendationKind,
    RecommendationStatus,
)
from core.db.models import Agent, AgentVersion, OptimizerRun, Recommendation
from core.db.repos import AgentRepository, Author, Keyset
from core.optimizer.dataset_store import DatasetLimitReached, DatasetStore
from core.optimizer.datasets import MIN_EXAMPLES, Source, build
from core.optimizer.metrics import METRIC
from core.pipelines.repository import PipelineRepository
from core.recommend.actions import ActionConflict, agent_changes, pipeline_definition, stale_reason
from core.recommend.datasets import cluster_examples
from core.recommend.schedules import ensure_tenant_schedule, pass_input, refresh_workflow_id, search_attributes
from core.recommend.store import Decision, RecommendationStore

router = APIRouter(prefix="/v1/recommendations", tags=["recommendations"])
RECOMMENDATIONS = NewestFirst("recommendations")


def recommendation_public(row: Recommendation) -> RecommendationPublic:
    """The public view of a recommendation; its action says the permission apply needs."""
    action = dict(row.action)
    action["requires"] = ACTION_PERMISSION[ActionType(action["type"])]
    return RecommendationPublic(
        id=row.id,
        kind=RecommendationKind(row.kind),
        rule=row.rule,
        target=row.target,
        title=row.title,
        evidence=row.evidence,
        expected_gain=ExpectedGainPublic(**row.expected_gain),
        action=action,
        basis=row.basis,
        status=RecommendationStatus(row.status),
        status_reason=row.status_reason,
        previous_id=row.previous_id,
        result=row.result,
        outcome=row.outcome,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        seen_at=row.seen_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _found(store: RecommendationStore, recommendation_id: str, *, lock: bool = False) -> Recommendation:
    row = await store.get(recommendation_id, lock=lock)
    if row is None:
        raise ProblemError(404, f"recommendation {recommendation_id} not found", slug=ProblemType.NOT_FOUND)
    return row


@router.get("", response_model=Page[RecommendationPublic])
async def list_recommendations(
    session: SessionDep,
    principal: RecommendationsRead,
    after: Annotated[Keyset | None, Depends(RECOMMENDATIONS.after)],
    status: Annotated[RecommendationStatus | None, Query(description="Only recommendations in this status.")] = None,
    kind: Annotated[RecommendationKind | None, Query(description="Only recommendations of this kind.")] = None,
    limit: Limit = 50,
) -> Page[RecommendationPublic]:
    """The tenant's recommendations, newest first, with their evidence, action, status and outcome."""
    store = RecommendationStore(session, principal.tenant_id)
    rows = await store.list(
        status=status.value if status else None, kind=kind.value if kind else None, limit=limit + 1, after=after
    )
    page, next_cursor = RECOMMENDATIONS.page(rows, limit)
    return Page(items=[recommendation_public(r) for r in page], next_cursor=next_cursor)


@router.post("/refresh", status_code=202, response_model=RefreshPublic, responses=problems(503))
async def refresh_recommendations(state: StateDep, principal: RecommendationsWrite) -> RefreshPublic:
    """Start a mining pass of the tenant's history now; while one runs, that one is answered (``reused``)."""
    tenant_id = principal.tenant_id
    workflow_id = refresh_workflow_id(tenant_id)
    async with temporal_answers("the mining pass could not be started"):
        await ensure_tenant_schedule(state.temporal, state.settings, tenant_id)
        try:
            handle = await state.temporal.start_workflow(
                WORKFLOW_NAME,
                pass_input(state.settings, tenant_id, "refresh"),
                id=workflow_id,
                task_queue=state.settings.optimizer_task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=search_attributes(tenant_id),
                priority=Priority(fairness_key=tenant_id),
            )
            run_id, reused = handle.result_run_id, False
        except WorkflowAlreadyStartedError as exc:
            run_id, reused = exc.run_id, True
    link = temporal_link(state, workflow_id, run_id)
    return RefreshPublic(workflow_id=workflow_id, run_id=run_id, reused=reused, ui_url=link.ui_url)


@router.get("/{recommendation_id}", response_model=RecommendationPublic)
async def get_recommendation(
    recommendation_id: str, session: SessionDep, principal: RecommendationsRead
) -> RecommendationPublic:
    """One recommendation."""
    return recommendation_public(await _found(RecommendationStore(session, principal.tenant_id), recommendation_id))


async def _current_agent(session: SessionDep, principal: Principal, row: Recommendation) -> tuple[Agent, AgentVersion]:
    """The action's agent at its current version; ``ActionConflict`` when it changed since the evidence."""
    agent_id = row.action["agent_id"]
    repo = AgentRepository(session, principal.tenant_id)
    agent = await repo.get_any(agent_id)
    current = await repo.get_version(agent_id, agent.version) if agent is not None else None
    archived = bool(agent and agent.deleted_at)
    reason = stale_reason("agent", agent_id, row.basis.get("agent_version"), agent.version if agent else None, archived)
    if reason is not None or agent is None or current is None:
        raise ActionConflict(reason or f"agent {agent_id} has no current version")
    return agent, current


async def _agent_version(
    session: SessionDep, principal: Principal, row: Recommendation, author: Author
) -> dict[str, Any]:
    agent, current = await _current_agent(session, principal, row)
    changes = agent_changes(current.config, row.action["ops"])
    _, _, version = await agents.new_version(
        session, principal, agent.id, changes, author=author, promote=True, from_version=row.action["from_version"]
    )
    return {"agent_version": version.version}


async def _pipeline_version(
    session: SessionDep, principal: Principal, row: Recommendation, author: Author
) -> dict[str, Any]:
    action = row.action
    repo = PipelineRepository(session, principal.tenant_id)
    pipeline = await repo.get_any(action["pipeline_id"])
    current = await repo.get_version(pipeline.id, pipeline.version) if pipeline is not None else None
    reason = stale_reason(
        "pipeline",
        action["pipeline_id"],
        row.basis.get("pipeline_version"),
        pipeline.version if pipeline else None,
        bool(pipeline and pipeline.deleted_at),
    )
    if reason is not None or pipeline is None or current is None:
        raise ActionConflict(reason or f"pipeline {action['pipeline_id']} has no current version")
    definition = pipeline_definition(current.definition, action["ops"])
    _, version = await pipelines.new_version(
        session, principal, pipeline.id, definition, author=author, from_version=action["from_version"]
    )
    return {"pipeline_version": version.version}


async def _optimizer_run(
    state: AppState, session: SessionDep, principal: Principal, row: Recommendation, author: Author
) -> OptimizerRun:
    agent, _ = await _current_agent(session, principal, row)
    action = row.action
    examples = await cluster_examples(session, principal.tenant_id, agent.id, action["dataset"]["run_ids"])
    built = build(examples)
    if len(built.examples) < MIN_EXAMPLES:
        raise ActionConflict(f"{len(built.examples)} of the cluster's runs remain; a dataset needs {MIN_EXAMPLES}")
    try:
        dataset = await DatasetStore(session, principal.tenant_id).create(
            agent.id,
            action["dataset"]["name"],
            built,
            source=Source.RUNS,
            filters={"run_ids": len(action["dataset"]["run_ids"]), "recommendation_id": row.id},
            author=author,
            limit=state.settings.datasets_per_tenant,
        )
    except DatasetLimitReached as exc:
        raise ProblemError(409, f"{exc} (AIMPACT_DATASETS_PER_TENANT)", slug=ProblemType.DATASET_LIMIT) from None
    audit(
        session,
        principal,
        action="dataset.created",
        target_type="dataset",
        target_id=dataset.id,
        data={"agent_id": agent.id, "size": dataset.size, "hash": dataset.hash, "recommendation_id": row.id},
    )
    return await optimizer_runs.prepare_run(
        state,
        session,
        principal,
        agent,
        dataset,
        METRIC.validate_python(action["metric"]),
        Budget(**action["budget"]),
        action["strategies"],
        bool(action["auto_promote"]),
    )


STALE_PROBLEMS = (
    ProblemType.CONFLICT,
    ProblemType.AGENT_ARCHIVED,
    ProblemType.PIPELINE_ARCHIVED,
    ProblemType.VALIDATION_ERROR,
)
"""Problems of the change's own code path that mean its target is no longer what the evidence saw."""


def _stale_reason(exc: Exception) -> str | None:
    """Why the change cannot be made on the target as it is now (``None``: another failure, raised as is)."""
    if isinstance(exc, ActionConflict):
        return str(exc)
    if isinstance(exc, ProblemError) and exc.slug in STALE_PROBLEMS:
        return exc.detail
    if isinstance(exc, RequestValidationError):
        fields = ", ".join(".".join(str(part) for part in e.get("loc", ())) for e in exc.errors())
        return f"the change is no longer a valid configuration ({fields})"
    return None


def _required(principal: Principal, row: Recommendation) -> ActionType:
    """The action's type; 403 unless the caller holds the permission its change needs."""
    kind = ActionType(row.action["type"])
    needed = ACTION_PERMISSION[kind]
    if needed not in principal.permissions:
        message = f"role {principal.role!r} lacks permission {needed!r}, which applying this recommendation needs"
        raise ProblemError(403, message, slug=ProblemType.FORBIDDEN)
    return kind


@router.post("/{recommendation_id}/apply", response_model=RecommendationPublic, responses=problems(403, 409, 503))
async def apply_recommendation(
    recommendation_id: str, state: StateDep, session: SessionDep, principal: RecommendationsWrite
) -> RecommendationPublic:
    """Perform the recommendation's action, recorded as made by ``recommendation``; it turns ``applied``.

    403 without the permission the action needs (``agents:write`` for a new agent version,
    ``pipelines:write`` for a pipeline version, ``optimizer:write`` for an optimizer run). 409
    when it is not open, or when its target changed since the evidence was computed (then it
    turns ``stale``; the reason is in the problem and in ``status_reason``).
    """
    store = RecommendationStore(session, principal.tenant_id)
    row = await _found(store, recommendation_id, lock=True)
    kind = _required(principal, row)
    if row.status != RecommendationStatus.OPEN:
        reason = f": {row.status_reason}" if row.status == RecommendationStatus.STALE and row.status_reason else ""
        raise ProblemError(409, f"the recommendation is {row.status}{reason}", slug=ProblemType.CONFLICT)
    author = Author(kind="recommendation", id=row.id)
    launch = None
    try:
        if kind == ActionType.AGENT_VERSION:
            result = await _agent_version(session, principal, row, author)
        elif kind == ActionType.PIPELINE_VERSION:
            result = await _pipeline_version(session, principal, row, author)
        else:
            launch = await _optimizer_run(state, session, principal, row, author)
            result = {"dataset_id": launch.dataset_id or "", "optimizer_run_id": launch.id}
    except (ActionConflict, ProblemError, RequestValidationError) as exc:
        why = _stale_reason(exc)
        if why is None:
            raise
        await session.rollback()
        row = await _found(store, recommendation_id, lock=True)
        store.mark_stale(row, why)
        await session.commit()
        raise ProblemError(409, f"the recommendation is stale: {why}", slug=ProblemType.CONFLICT) from None
    store.decide(row, RecommendationStatus.APPLIED, Decision(by=principal.subject_id, result=result))
    audit(
        session,
        principal,
        action="recommendation.applied",
        target_type="recommendation",
        target_id=row.id,
        data={"kind": row.kind, "rule": row.rule, "action": kind.value, "result": result},
    )
    await session.commit()
    if kind == ActionType.AGENT_VERSION:
        await state.caches.invalidate(cache_bus.AGENTS)
    if launch is not None:
        await optimizer_runs.launch_run(state, launch)
    return recommendation_public(row)


@router.post("/{recommendation_id}/dismiss", response_model=RecommendationPublic, responses=problems(409))
async def dismiss_recommendation(
    recommendation_id: str,
    session: SessionDep,
    principal: RecommendationsWrite,
    body: RecommendationDismiss | None = None,
) -> RecommendationPublic:
    """Dismiss: the finding is not suggested again unless its evidence changes materially (its headline value
    leaves the interval it had now); 409 once applied or dismissed."""
    store = RecommendationStore(session, principal.tenant_id)
    row = await _found(store, recommendation_id, lock=True)
    if row.status in (RecommendationStatus.APPLIED, RecommendationStatus.DISMISSED):
        raise ProblemError(409, f"the recommendation is {row.status}", slug=ProblemType.CONFLICT)
    reason = body.reason if body is not None else None
    store.decide(row, RecommendationStatus.DISMISSED, Decision(by=principal.subject_id, reason=reason))
    audit(
        session,
        principal,
        action="recommendation.dismissed",
        target_type="recommendation",
        target_id=row.id,
        data={"kind": row.kind, "rule": row.rule, "reason": reason},
    )
    await session.commit()
    return recommendation_public(row)
