"""Agent runs: start (idempotent), read and list from the read projection."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Annotated
from urllib.parse import quote

import structlog
from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse
from sqlmodel import col, select
from temporalio.client import WorkflowHandle
from temporalio.common import Priority, SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.deps import Principal, SessionDep, StateDep, require, tenant_quotas, too_many_requests
from api.problems import ProblemError, invalid_cursor
from api.schemas import Page, RunCreate, RunPublic, StepPublic, TemporalLink, UsagePublic
from api.state import AppState
from core.contracts.agent_run import AgentRunInput
from core.db.models import Run, RunStep
from core.db.repos import AgentRepository, CursorError, RunRepository
from core.events import FINAL_EVENTS
from core.ids import AGENT_ID, RUN_KIND, TENANT_ID, new_id, run_workflow_id
from core.quotas import QuotaExceededError, check_run_quotas
from core.telemetry import metrics
from workflows.agent_run import AgentRunWorkflow

log = structlog.get_logger(__name__)
router = APIRouter(tags=["runs"])
RUN_STATUSES = ("queued", "running", "waiting_approval", "completed", "failed", "cancelled")
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


def run_public(state: AppState, run: Run, steps: Sequence[RunStep]) -> RunPublic:
    """The public view of a run and its steps."""
    namespace = quote(state.settings.temporal_namespace)
    ui = f"{state.settings.temporal_ui_base}/namespaces/{namespace}/workflows/{quote(run.workflow_id, safe='')}"
    if run.workflow_run_id:
        ui += f"/{run.workflow_run_id}/history"
    return RunPublic(
        id=run.id,
        agent_id=run.agent_id,
        agent_version=run.agent_version,
        thread_id=run.thread_id,
        status=run.status,
        input=run.input,
        output=run.output,
        steps=[
            StepPublic(
                id=s.step_id,
                kind=s.kind,
                name=s.name,
                status=s.status,
                started_at=s.started_at,
                ended_at=s.ended_at,
                attempts=s.attempts,
                input=s.input,
                output=s.output,
                error=s.error,
            )
            for s in steps
        ],
        usage=UsagePublic(input_tokens=run.input_tokens, output_tokens=run.output_tokens, cost_usd=run.cost_usd),
        error=run.error,
        subject=run.subject,
        metadata=run.metadata_,
        created_at=run.created_at,
        updated_at=run.updated_at,
        temporal=TemporalLink(workflow_id=run.workflow_id, run_id=run.workflow_run_id, ui_url=ui),
    )


async def _start_workflow(state: AppState, run: Run) -> None:
    """Start the run's workflow; starting it twice is a no-op."""
    handle: WorkflowHandle[AgentRunWorkflow, object]
    try:
        handle = await state.temporal.start_workflow(
            AgentRunWorkflow.run,
            AgentRunInput(
                tenant_id=run.tenant_id,
                run_id=run.id,
                agent_id=run.agent_id,
                agent_version=run.agent_version,
                max_steps=state.settings.agent_max_steps,
                heartbeat_timeout_s=state.settings.activity_heartbeat_timeout_s,
                thread_id=run.thread_id,
                idle_timeout_s=state.settings.thread_idle_s,
                retry_window_s=state.settings.retry_window_s,
            ),
            id=run.workflow_id,
            task_queue=state.settings.agents_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(TENANT_ID, run.tenant_id),
                    SearchAttributePair(AGENT_ID, run.agent_id),
                    SearchAttributePair(RUN_KIND, "agent_run"),
                ]
            ),
            priority=Priority(fairness_key=run.tenant_id),
        )
        log.info("run started", run_id=run.id, workflow_run_id=handle.first_execution_run_id)
    except WorkflowAlreadyStartedError:
        return


@router.post("/v1/agents/{agent_id}/runs", status_code=202, response_model=RunPublic)
async def start_run(
    agent_id: str,
    body: RunCreate,
    state: StateDep,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("runs:start"))],
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> JSONResponse:
    """Start a run of the agent's current version (``Idempotency-Key`` dedupes)."""
    tenant = principal.tenant_id
    runs = RunRepository(session, tenant)
    if idempotency_key is not None:
        existing = await runs.by_idempotency_key(idempotency_key)
        if existing is not None:
            return await _accepted(state, runs, existing)
    agent = await AgentRepository(session, tenant).get(agent_id)
    if agent is None:
        raise ProblemError(404, f"agent {agent_id} not found", slug="not-found")
    try:
        await check_run_quotas(session, tenant, await tenant_quotas(state, tenant))
    except QuotaExceededError as exc:
        raise too_many_requests(exc) from None
    run_id = new_id("run")
    run, created = await runs.create(
        Run(
            id=run_id,
            tenant_id=tenant,
            agent_id=agent.id,
            agent_version=agent.version,
            thread_id=body.thread_id or new_id("thr"),
            status="queued",
            input=body.input,
            subject=body.subject,
            metadata_=body.metadata,
            idempotency_key=idempotency_key,
            workflow_id=run_workflow_id(tenant, run_id),
        )
    )
    if created:
        metrics.RUNS_STARTED.inc()
        await state.events.publish(tenant, run.id, "run.queued", {"status": "queued", "agent_id": agent.id})
    return await _accepted(state, runs, run)


async def _accepted(state: AppState, runs: RunRepository, run: Run) -> JSONResponse:
    if run.status == "queued":
        try:
            await _start_workflow(state, run)
        except Exception as exc:
            log.error("could not start run workflow", run_id=run.id, error=str(exc))
            raise ProblemError(
                503,
                "the run was recorded but could not be started; retry with the same Idempotency-Key",
                slug="temporal-unavailable",
                headers={"Retry-After": "2"},
            ) from exc
    steps = await runs.steps(run.id)
    return JSONResponse(run_public(state, run, steps).model_dump(mode="json"), status_code=202)


@router.get("/v1/runs/{run_id}", response_model=RunPublic)
async def get_run(
    run_id: str,
    state: StateDep,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("runs:read"))],
    wait_s: Annotated[
        float, Query(ge=0, le=60, description="Wait up to this long for the run to reach a final status.")
    ] = 0,
) -> JSONResponse:
    """A run with its steps, from the read projection; ``wait_s`` long-polls for the final status."""
    runs = RunRepository(session, principal.tenant_id)
    run = await runs.get(run_id)
    if run is None:
        raise ProblemError(404, f"run {run_id} not found", slug="not-found")
    if wait_s > 0 and run.status not in FINAL_STATUSES and await _wait_final(state, run, wait_s):
        await session.refresh(run)
    body = run_public(state, run, await runs.steps(run.id))
    return JSONResponse(body.model_dump(mode="json"))


async def _wait_final(state: AppState, run: Run, wait_s: float) -> bool:
    """Block on the run's event stream until a final event or ``wait_s``; whether one came."""
    deadline = time.monotonic() + wait_s
    after = "0"
    while (remaining := deadline - time.monotonic()) > 0:
        events = await state.events.read(
            run.tenant_id, run.id, after=after, block_ms=max(1, int(min(remaining, 2.0) * 1000))
        )
        if any(e.type in FINAL_EVENTS for e in events):
            return True
        if events:
            after = events[-1].id
    return False


@router.get("/v1/runs", response_model=Page[RunPublic])
async def list_runs(
    state: StateDep,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("runs:read"))],
    agent_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(pattern="^(" + "|".join(RUN_STATUSES) + ")$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[RunPublic]:
    """Runs of the caller's tenant, newest first."""
    runs = RunRepository(session, principal.tenant_id)
    try:
        page, next_cursor = await runs.list(limit=limit, cursor=cursor, agent_id=agent_id, status=status)
    except CursorError as exc:
        raise invalid_cursor(exc) from exc
    steps_by_run: dict[str, list[RunStep]] = {r.id: [] for r in page}
    if page:
        rows = await session.exec(
            select(RunStep)
            .where(RunStep.tenant_id == principal.tenant_id, col(RunStep.run_id).in_(list(steps_by_run)))
            .order_by(col(RunStep.seq))
        )
        for step in rows.all():
            steps_by_run[step.run_id].append(step)
    return Page(items=[run_public(state, r, steps_by_run[r.id]) for r in page], next_cursor=next_cursor)
