"""Agent runs: start (idempotent), read (long-polling the turn in flight) and list from the read projection."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from typing import Annotated
from urllib.parse import quote

import structlog
from fastapi import APIRouter, Depends, Header, Query
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import WorkflowHandle
from temporalio.common import Priority, SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.deps import SessionDep, StateDep, tenant_quotas, too_many_requests
from api.pagination import Limit, NewestFirst
from api.permissions import RunsRead, RunsStart
from api.problem_types import ProblemType, problems
from api.problems import ProblemError
from api.schemas import IsoDatetime, Page, RunCreate, RunPublic, StepPublic, TemporalLink, UsagePublic
from api.state import AppState
from core.contracts.agent_run import AgentRunInput, RunStatus
from core.db.models import Run, RunStep
from core.db.reads import AgentRef, RunFilter, RunReads, RunRow, StepRow, agent_ref
from core.db.repos import Keyset, RunRepository
from core.events import TurnState, ends_turn
from core.ids import AGENT_ID, RUN_KIND, TENANT_ID, new_id, run_workflow_id
from core.optimizer.experiment_store import ExperimentStore, version_of
from core.quotas import QuotaExceededError, check_run_quotas
from core.telemetry import metrics
from workflows.agent_run import AgentRunWorkflow

log = structlog.get_logger(__name__)
router = APIRouter(tags=["runs"])
RUNS = NewestFirst("runs")


def temporal_link(state: AppState, workflow_id: str, workflow_run_id: str | None) -> TemporalLink:
    """Where a workflow lives in Temporal, with its page in the Temporal UI."""
    namespace = quote(state.settings.temporal_namespace)
    ui = f"{state.settings.temporal_ui_base}/namespaces/{namespace}/workflows/{quote(workflow_id, safe='')}"
    if workflow_run_id:
        ui += f"/{workflow_run_id}/history"
    return TemporalLink(workflow_id=workflow_id, run_id=workflow_run_id, ui_url=ui)


def run_public(state: AppState, run: Run | RunRow, steps: Sequence[RunStep] | Sequence[StepRow]) -> RunPublic:
    """The public view of a run and its steps."""
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
                usage=UsagePublic(input_tokens=s.input_tokens, output_tokens=s.output_tokens, cost_usd=s.cost_usd),
            )
            for s in steps
        ],
        usage=UsagePublic(input_tokens=run.input_tokens, output_tokens=run.output_tokens, cost_usd=run.cost_usd),
        error=run.error,
        subject=run.subject,
        metadata=run.metadata_,
        experiment_id=run.experiment_id,
        experiment_arm=run.experiment_arm,
        created_at=run.created_at,
        updated_at=run.updated_at,
        temporal=temporal_link(state, run.workflow_id, run.workflow_run_id),
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


@router.post("/v1/agents/{agent_id}/runs", status_code=202, response_model=RunPublic, responses=problems(409, 503))
async def start_run(
    agent_id: str,
    body: RunCreate,
    state: StateDep,
    session: SessionDep,
    principal: RunsStart,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> RunPublic:
    """Start a run of the agent's current version, or of the version its running experiment assigns.

    An experiment assigns by the run's ``subject`` (else its thread): the arm of its first run, every time.

    ``Idempotency-Key`` dedupes: the same key with the same request answers the run it
    started; with another agent or body it answers 422 (``idempotency-key-reused``).
    """
    tenant = principal.tenant_id
    runs = RunRepository(session, tenant)
    fingerprint = request_fingerprint(agent_id, body)
    if idempotency_key is not None:
        existing = await runs.by_idempotency_key(idempotency_key)
        if existing is not None:
            return await _accepted(state, _same_request(existing, idempotency_key, fingerprint), created=False)
    agent = await current_agent(state, tenant, agent_id)
    if agent is None:
        raise ProblemError(404, f"agent {agent_id} not found", slug=ProblemType.NOT_FOUND)
    if agent.archived:
        raise ProblemError(409, f"agent {agent_id} is archived: it starts no new runs", slug=ProblemType.AGENT_ARCHIVED)
    try:
        await check_run_quotas(session, tenant, await tenant_quotas(state, tenant))
    except QuotaExceededError as exc:
        raise too_many_requests(exc) from None
    run_id = new_id("run")
    thread_id = body.thread_id or new_id("thr")
    version, experiment_id, arm = agent.version, None, None
    if agent.experiment is not None:
        arm = await ExperimentStore(session, tenant).assign(agent.experiment.id, body.subject or thread_id)
        if arm is not None:
            experiment_id, version = agent.experiment.id, version_of(agent.experiment, arm)
    run, created = await runs.create(
        Run(
            id=run_id,
            tenant_id=tenant,
            agent_id=agent.id,
            agent_version=version,
            thread_id=thread_id,
            experiment_id=experiment_id,
            experiment_arm=arm,
            status=RunStatus.QUEUED,
            input=body.input,
            subject=body.subject,
            metadata_=body.metadata,
            idempotency_key=idempotency_key,
            idempotency_hash=fingerprint if idempotency_key is not None else None,
            workflow_id=run_workflow_id(tenant, run_id),
        )
    )
    if not created and idempotency_key is not None:
        run = _same_request(run, idempotency_key, fingerprint)
    if created:
        metrics.RUNS_STARTED.inc()
        await state.events.publish(tenant, run.id, "run.queued", {"status": RunStatus.QUEUED, "agent_id": agent.id})
    return await _accepted(state, run, created=created)


async def current_agent(state: AppState, tenant_id: str, agent_id: str) -> AgentRef | None:
    """The agent's current version and archival, cached per process until an agent changes anywhere."""
    key = f"{tenant_id}:{agent_id}"
    agent = state.agents.get(key)
    if agent is None:
        read_at = state.agents.generation
        agent = await agent_ref(state.reads, tenant_id, agent_id)
        if agent is not None:
            state.agents.put(key, agent, read_at)
    return agent


def request_fingerprint(agent_id: str, body: RunCreate) -> str:
    """SHA-256 of the agent and the body with defaults filled (key order and omitted defaults do not count)."""
    canonical = json.dumps(
        {"agent_id": agent_id, "body": body.model_dump(mode="json")}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _same_request(run: Run, key: str, fingerprint: str) -> Run:
    """``run``, started with ``key``, if this request is the one that started it; 422 otherwise.

    Runs recorded before requests were fingerprinted carry no hash: any request with their key gets them.
    """
    if run.idempotency_hash is None or run.idempotency_hash == fingerprint:
        return run
    message = (
        f"Idempotency-Key {key!r} was used for another request (run {run.id}); "
        "send the same agent and body to get that run, or use a new key"
    )
    raise ProblemError(
        422,
        message,
        slug=ProblemType.IDEMPOTENCY_KEY_REUSED,
        errors=[{"field": "Idempotency-Key", "message": message}],
    )


async def _accepted(state: AppState, run: Run, *, created: bool) -> RunPublic:
    """The run just recorded (it has no steps yet) or found by its key, its workflow started if still queued."""
    if run.status == RunStatus.QUEUED:
        try:
            await _start_workflow(state, run)
        except Exception as exc:
            log.error("could not start run workflow", run_id=run.id, error=str(exc))
            raise ProblemError(
                503,
                "the run was recorded but could not be started; retry with the same Idempotency-Key",
                slug=ProblemType.TEMPORAL_UNAVAILABLE,
                headers={"Retry-After": "2"},
            ) from exc
    steps = [] if created else await RunReads(state.reads, run.tenant_id).steps(run.id)
    return run_public(state, run, steps)


@router.get("/v1/runs/{run_id}", response_model=RunPublic)
async def get_run(
    run_id: str,
    state: StateDep,
    principal: RunsRead,
    wait_s: Annotated[
        float,
        Query(
            ge=0,
            le=60,
            description="Wait up to this long for the turn in flight (the one a message just started) to end.",
        ),
    ] = 0,
) -> RunPublic:
    """A run with its steps, from the read projection; ``wait_s`` long-polls for the end of the turn in flight.

    The turn in flight is the newest one the run's event stream names (a message accepted
    by ``POST …/messages`` names the turn it starts): the wait ends at its final event (or
    a later turn's), at the run's close, or at once when that turn already ended. The
    database is read in short sessions: a long-poll waits on the event hub holding no
    pooled connection, so waiting clients cannot exhaust the pool.
    """
    if wait_s <= 0:
        return await _read_run(state, principal.tenant_id, run_id)
    # The stream first: a final event is published after the database write, so a turn it shows ended is in the body.
    position = await state.events.turns(principal.tenant_id, run_id)
    body = await _read_run(state, principal.tenant_id, run_id)
    if _in_flight(position, body.status) and await _wait_turn(state, principal.tenant_id, run_id, position, wait_s):
        body = await _read_run(state, principal.tenant_id, run_id)
    return body


async def run_or_404(session: AsyncSession, tenant_id: str, run_id: str) -> Run:
    """The tenant's run ``run_id``; 404 problem (as for an absent run) otherwise."""
    run = await RunRepository(session, tenant_id).get(run_id)
    if run is None:
        raise ProblemError(404, f"run {run_id} not found", slug=ProblemType.NOT_FOUND)
    return run


async def _read_run(state: AppState, tenant_id: str, run_id: str) -> RunPublic:
    found = await RunReads(state.reads, tenant_id).get(run_id)
    if found is None:
        raise ProblemError(404, f"run {run_id} not found", slug=ProblemType.NOT_FOUND)
    return run_public(state, *found)


def _in_flight(position: TurnState, status: str) -> bool:
    """Whether a turn runs: as the event stream says, or (when it names no turn) as the run's status says."""
    if position.open is None:
        return not position.closed and status not in RunStatus.FINAL
    return position.open


async def _wait_turn(state: AppState, tenant_id: str, run_id: str, position: TurnState, wait_s: float) -> bool:
    """Follow the events after ``position`` (through the process's one event reader) to its turn's end or ``wait_s``."""
    deadline = time.monotonic() + wait_s
    with state.event_hub.subscribe(tenant_id, run_id, after=position.last_id) as subscription:
        while (remaining := deadline - time.monotonic()) > 0:
            if any(ends_turn(event, position.turn) for event in await subscription.next(remaining)):
                return True
    return False


@router.get("/v1/runs", response_model=Page[RunPublic])
async def list_runs(
    state: StateDep,
    principal: RunsRead,
    after: Annotated[Keyset | None, Depends(RUNS.after)],
    agent_id: Annotated[str | None, Query(max_length=40)] = None,
    status: RunStatus | None = None,
    start: Annotated[
        IsoDatetime | None, Query(alias="from", description="Runs created at or after this moment.")
    ] = None,
    to: Annotated[IsoDatetime | None, Query(description="Runs created before this moment.")] = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="Text the run's input or output contains (any case)."),
    ] = None,
    limit: Limit = 50,
) -> Page[RunPublic]:
    """Runs of the caller's tenant, newest first; filtered by agent, status, creation time and text."""
    where = RunFilter(agent_id=agent_id, status=status, since=start, until=to, text=q)
    found, steps = await RunReads(state.reads, principal.tenant_id).list(limit=limit + 1, after=after, where=where)
    page, next_cursor = RUNS.page(found, limit)
    return Page(items=[run_public(state, r, steps[r.id]) for r in page], next_cursor=next_cursor)
