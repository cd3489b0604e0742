"""``/v1/agents/{id}/optimizer/runs``, ``/v1/optimizer/runs``: start, read, list and cancel optimizer runs.

A run optimizes the agent's current version on one of its datasets (``OptimizerWorkflow`` on
the optimizer queue): candidates from the chosen strategies, successive halving on the
validation split, a paired confirmation on the test split, promotion only on a significant win.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query
from temporalio.client import RPCError, RPCStatusCode
from temporalio.common import Priority, SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.audit import audit
from api.deps import Principal, SessionDep, StateDep
from api.optimizer_schemas import (
    Budget,
    CandidatePublic,
    OptimizerBudgetPublic,
    OptimizerRunCreate,
    OptimizerRunPublic,
)
from api.pagination import Limit, NewestFirst
from api.permissions import OptimizerRead, OptimizerWrite
from api.problem_types import ProblemType, problems
from api.problems import ProblemError
from api.schemas import Page, UsagePublic
from api.state import AppState
from core.contracts.optimizer import FINAL_STATUSES, WORKFLOW_NAME, OptimizerRunInput, OptimizerRunStatus
from core.db.models import Agent, Dataset, OptimizerRun
from core.db.repos import AgentRepository, Keyset
from core.ids import AGENT_ID, RUN_KIND, TENANT_ID, new_id, workflow_id
from core.optimizer.dataset_store import DatasetStore
from core.optimizer.metrics import Metric, check_metric, default_metric
from core.optimizer.run_store import OptimizerRunStore, run_seed
from core.optimizer.strategies import strategy
from core.settings import Settings

T = TypeVar("T")
router = APIRouter(tags=["optimizer"])
RUNS = NewestFirst("optimizer-runs")
DEFAULT_STRATEGIES = ["few_shot"]
RUN_KIND_OPTIMIZER = "optimizer"
ACCEPTED: dict[int | str, dict[str, Any]] = {202: {"description": "The run as it stands; the workflow acts next."}}


def optimizer_run_public(run: OptimizerRun) -> OptimizerRunPublic:
    """The public view of an optimizer run."""
    return OptimizerRunPublic(
        id=run.id,
        agent_id=run.agent_id,
        dataset_id=run.dataset_id,
        dataset_hash=run.dataset_hash,
        status=OptimizerRunStatus(run.status),
        progress=run.progress,
        baseline_version=run.baseline_version,
        metric=run.metric,
        strategies=run.strategies,
        auto_promote=run.auto_promote,
        candidates=[CandidatePublic(**c) for c in run.candidates or []],
        winner=run.winner,
        promoted=run.promoted,
        reason=run.reason,
        error=run.error,
        schedule_id=run.schedule_id,
        budget=OptimizerBudgetPublic(
            max_evals=run.budget["max_evals"], max_cost_usd=run.budget["max_cost_usd"], evals_used=run.evals_used
        ),
        usage=UsagePublic(input_tokens=run.input_tokens, output_tokens=run.output_tokens, cost_usd=run.cost_usd),
        created_at=run.created_at,
        updated_at=run.updated_at,
    )


def _invalid(errors: list[dict[str, str]]) -> ProblemError:
    first = errors[0]
    return ProblemError(
        422,
        f"invalid optimizer run — {first['field']}: {first['message']}",
        slug=ProblemType.VALIDATION_ERROR,
        errors=errors,
    )


def run_budget(asked: Budget | None, settings: Settings) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """A run's budget (defaults filled in), and the errors naming a field at 0 or above the tenant's cap."""
    max_evals = settings.optimizer_default_evals if asked is None or asked.max_evals is None else asked.max_evals
    max_cost = settings.optimizer_max_cost_usd if asked is None or asked.max_cost_usd is None else asked.max_cost_usd
    errors = []
    if not 1 <= max_evals <= settings.optimizer_max_evals:
        message = f"at most {settings.optimizer_max_evals} (AIMPACT_OPTIMIZER_MAX_EVALS)"
        errors.append({"field": "budget.max_evals", "message": message})
    if not 0 < max_cost <= settings.optimizer_max_cost_usd:
        message = f"at most {settings.optimizer_max_cost_usd:g} (AIMPACT_OPTIMIZER_MAX_COST_USD)"
        errors.append({"field": "budget.max_cost_usd", "message": message})
    return {"max_evals": max_evals, "max_cost_usd": max_cost}, errors


def _strategies(names: Sequence[str] | None) -> list[str]:
    """The run's strategies (default ``few_shot``), each known; 422 naming an unknown one."""
    chosen = list(names or DEFAULT_STRATEGIES)
    errors = []
    for index, name in enumerate(chosen):
        try:
            strategy(name)
        except (KeyError, ValueError, LookupError):
            errors.append({"field": f"strategies[{index}]", "message": f"unknown strategy {name!r}"})
        if name in chosen[:index]:
            errors.append({"field": f"strategies[{index}]", "message": f"{name!r} is named twice"})
    if errors:
        raise _invalid(errors)
    return chosen


async def _dataset(store: DatasetStore, agent_id: str, dataset_id: str | None) -> Dataset:
    """The named dataset of the agent (404 otherwise), or its newest (422 naming ``dataset_id`` when it has none)."""
    if dataset_id is not None:
        found = await store.get(dataset_id)
        if found is None or found.agent_id != agent_id:
            raise ProblemError(404, f"dataset {dataset_id} not found", slug=ProblemType.NOT_FOUND)
        return found
    newest = await store.of_agent(agent_id, limit=1)
    if not newest:
        raise _invalid([{"field": "dataset_id", "message": "required: the agent has no dataset yet"}])
    return newest[0]


async def _metric(store: DatasetStore, dataset: Dataset, metric: Metric | None) -> dict[str, Any]:
    """The metric (or the default) as stored; 422 naming ``metric`` when it cannot score the examples."""
    examples = await store.examples(dataset.id, limit=dataset.size)
    problems_found = check_metric(metric, examples, metric_at="metric", examples_at="examples")
    if problems_found:
        errors = []
        for found in problems_found:
            if found.field.startswith("metric"):
                errors.append({"field": found.field.replace("/", "."), "message": found.message})
            else:
                position = found.field.split("/")[1]
                message = f"{found.message}: example at position {position} of dataset {dataset.id} has none"
                errors.append({"field": "metric", "message": message})
        raise _invalid(errors)
    chosen = metric or default_metric(examples)
    assert chosen is not None  # check_metric refused a dataset without a default
    return chosen.model_dump(mode="json", exclude_none=True)


async def temporal_call(
    call: Awaitable[T], detail: str, closed: tuple[RPCStatusCode, ...] = (), *, what: str = "the optimizer run"
) -> T:
    """A call to Temporal: a workflow gone (``closed``) answers 409 naming ``what``, Temporal out of reach 503."""
    try:
        return await call
    except RPCError as exc:
        if exc.status in closed:
            raise ProblemError(409, f"{what} is closed", slug=ProblemType.CONFLICT) from None
        raise ProblemError(503, detail, slug=ProblemType.TEMPORAL_UNAVAILABLE, headers={"Retry-After": "2"}) from exc
    except RuntimeError as exc:  # no connection
        raise ProblemError(503, detail, slug=ProblemType.TEMPORAL_UNAVAILABLE, headers={"Retry-After": "2"}) from exc


def run_input(settings: Settings, run: OptimizerRun) -> OptimizerRunInput:
    """The workflow input of ``run`` with the configured run settings (a schedule's start: no run yet)."""
    return OptimizerRunInput(
        tenant_id=run.tenant_id,
        run_id=run.id,
        agent_id=run.agent_id,
        dataset_id=run.dataset_id or "",
        baseline_version=run.baseline_version,
        metric=run.metric,
        max_evals=run.budget["max_evals"],
        max_cost_usd=run.budget["max_cost_usd"],
        strategies=run.strategies,
        auto_promote=run.auto_promote,
        seed=run_seed(run.dataset_hash, run.baseline_version),
        concurrency=settings.optimizer_concurrency,
        batch_size=settings.optimizer_batch_size,
        candidates_per_strategy=settings.optimizer_candidates,
        min_effect=settings.optimizer_min_effect,
        history_limit=settings.optimizer_history_limit,
        heartbeat_timeout_s=settings.activity_heartbeat_timeout_s,
        schedule_id=run.schedule_id or "",
    )


async def _start(state: AppState, run: OptimizerRun) -> None:
    inp = run_input(state.settings, run)
    await start_on_optimizer_queue(
        state, WORKFLOW_NAME, inp, run.workflow_id, run.tenant_id, run.agent_id, RUN_KIND_OPTIMIZER
    )


async def start_on_optimizer_queue(
    state: AppState, name: str, inp: Any, workflow_id: str, tenant_id: str, agent_id: str, kind: str
) -> None:
    """Start workflow ``name`` on the optimizer queue (tenant's fairness key, searchable); started already: nothing."""
    try:
        await state.temporal.start_workflow(
            name,
            inp,
            id=workflow_id,
            task_queue=state.settings.optimizer_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(TENANT_ID, tenant_id),
                    SearchAttributePair(RUN_KIND, kind),
                    SearchAttributePair(AGENT_ID, agent_id),
                ]
            ),
            priority=Priority(fairness_key=tenant_id),
        )
    except WorkflowAlreadyStartedError:
        return


async def _found(state: AppState, tenant_id: str, run_id: str) -> OptimizerRun:
    run = await OptimizerRunStore(state.engine).get(tenant_id, run_id)
    if run is None:
        raise ProblemError(404, f"optimizer run {run_id} not found", slug=ProblemType.NOT_FOUND)
    return run


@router.post(
    "/v1/agents/{agent_id}/optimizer/runs",
    status_code=202,
    response_model=OptimizerRunPublic,
    responses=ACCEPTED | problems(409, 503),
)
async def start_optimizer_run(
    agent_id: str, body: OptimizerRunCreate, state: StateDep, session: SessionDep, principal: OptimizerWrite
) -> OptimizerRunPublic:
    """Optimize the agent's current version on one of its datasets (default: the newest).

    422 naming the field: a budget at 0 or above the tenant's cap, a metric that cannot score the
    examples (one needing ``expected`` where they have none), an unknown strategy, no dataset.
    404 for a dataset that is not the agent's; 409 for an archived agent; 503 when Temporal cannot
    take the start (the run stays recorded, ``queued``).
    """
    tenant_id = principal.tenant_id
    agent = await AgentRepository(session, tenant_id).get_any(agent_id)
    if agent is None:
        raise ProblemError(404, f"agent {agent_id} not found", slug=ProblemType.NOT_FOUND)
    if agent.deleted_at is not None:
        raise ProblemError(409, f"agent {agent_id} is archived: it is not optimized", slug=ProblemType.AGENT_ARCHIVED)
    store = DatasetStore(session, tenant_id)
    dataset = await _dataset(store, agent_id, body.dataset_id)
    run = await prepare_run(
        state, session, principal, agent, dataset, body.metric, body.budget, body.strategies, body.auto_promote
    )
    await session.commit()
    await launch_run(state, run)
    return optimizer_run_public(run)


async def prepare_run(
    state: AppState,
    session: SessionDep,
    principal: Principal,
    agent: Agent,
    dataset: Dataset,
    metric: Metric | None,
    budget_asked: Budget | None,
    strategies_asked: Sequence[str] | None,
    auto_promote: bool,
) -> OptimizerRun:
    """An optimizer run of the agent's current version on ``dataset``, checked and audited, not yet stored.

    422 naming the field for a budget, a metric or a strategy the run cannot take. The caller
    commits its session, then :func:`launch_run`.
    """
    budget, refused = run_budget(budget_asked, state.settings)
    if refused:
        raise _invalid(refused)
    strategies = _strategies(strategies_asked)
    chosen = await _metric(DatasetStore(session, principal.tenant_id), dataset, metric)
    run_id = new_id("opt")
    run = OptimizerRun(
        id=run_id,
        tenant_id=principal.tenant_id,
        agent_id=agent.id,
        dataset_id=dataset.id,
        status=OptimizerRunStatus.QUEUED.value,
        baseline_version=agent.version,
        metric=chosen,
        budget=budget,
        strategies=strategies,
        auto_promote=auto_promote,
        dataset_hash=dataset.hash,
        workflow_id=workflow_id(principal.tenant_id, "optimizer", run_id),
    )
    audit(
        session,
        principal,
        action="optimizer_run.started",
        target_type="optimizer_run",
        target_id=run_id,
        data={"agent_id": agent.id, "dataset_id": dataset.id, "baseline_version": agent.version},
    )
    return run


async def launch_run(state: AppState, run: OptimizerRun) -> None:
    """Store the prepared run and start its workflow (503 when Temporal cannot take it: the run stays ``queued``)."""
    await OptimizerRunStore(state.engine).insert(run)
    await temporal_call(_start(state, run), "the run was recorded but could not be started; start a new one")


@router.get("/v1/optimizer/runs/{optimizer_run_id}", response_model=OptimizerRunPublic)
async def get_optimizer_run(optimizer_run_id: str, state: StateDep, principal: OptimizerRead) -> OptimizerRunPublic:
    """One optimizer run: progress, candidates with their scores, intervals and ``n``, the decision and its reason."""
    return optimizer_run_public(await _found(state, principal.tenant_id, optimizer_run_id))


@router.get("/v1/optimizer/runs", response_model=Page[OptimizerRunPublic])
async def list_optimizer_runs(
    state: StateDep,
    principal: OptimizerRead,
    after: Annotated[Keyset | None, Depends(RUNS.after)],
    agent_id: Annotated[str | None, Query(max_length=40, description="Only this agent's runs.")] = None,
    schedule_id: Annotated[
        str | None, Query(max_length=200, description="Only the runs this schedule started.")
    ] = None,
    limit: Limit = 50,
) -> Page[OptimizerRunPublic]:
    """The tenant's optimizer runs (of one agent with ``agent_id``, of one schedule's with ``schedule_id``), newest
    first."""
    rows = await OptimizerRunStore(state.engine).of_agent(
        principal.tenant_id, agent_id, schedule_id=schedule_id, limit=limit + 1, after=after
    )
    page, next_cursor = RUNS.page(rows, limit)
    return Page(items=[optimizer_run_public(r) for r in page], next_cursor=next_cursor)


@router.post(
    "/v1/optimizer/runs/{optimizer_run_id}/cancel",
    status_code=202,
    response_model=OptimizerRunPublic,
    responses=ACCEPTED | problems(409, 503),
)
async def cancel_optimizer_run(optimizer_run_id: str, state: StateDep, principal: OptimizerWrite) -> OptimizerRunPublic:
    """Cancel a run: evaluations in flight are cancelled and it records ``cancelled``; 409 once it is final.

    A run whose workflow never started (Temporal was out of reach at its start) is cancelled at once.
    """
    store = OptimizerRunStore(state.engine)
    run = await _found(state, principal.tenant_id, optimizer_run_id)
    if run.status in FINAL_STATUSES:
        raise ProblemError(409, f"optimizer run is {run.status}", slug=ProblemType.CONFLICT)
    try:
        await temporal_call(
            state.temporal.get_workflow_handle(run.workflow_id).cancel(),
            "the cancellation could not be delivered; retry it",
            (RPCStatusCode.NOT_FOUND,),
        )
    except ProblemError as exc:
        if exc.status != 409 or run.status != OptimizerRunStatus.QUEUED:
            raise
        await store.set_status(
            run.tenant_id, run.id, OptimizerRunStatus.CANCELLED, reason="cancelled before it started"
        )
        run = await _found(state, principal.tenant_id, optimizer_run_id)
    return optimizer_run_public(run)
