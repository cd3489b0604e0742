"""``/v1/agents/{id}/optimizer/runs``, ``/v1/optimizer/runs``: start, read, list and cancel optimizer runs.

A run optimizes the agent's current version on one of its datasets (``OptimizerWorkflow`` on
the optimizer queue): candidates from the chosen strategies, successive halving on the
validation split, a paired confirmation on the test split, promotion only on a significant win.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.audit import audit
from api.deps import Principal, SessionDep, StateDep, tenant_quotas
from api.lookups import agent_of, found
from api.optimizer_schemas import (
    Budget,
    CandidatePublic,
    OptimizerBudgetPublic,
    OptimizerRunCreate,
    OptimizerRunPublic,
)
from api.optimizer_workflows import ACCEPTED, cancel_live, record_live, start_on_optimizer_queue, temporal_call
from api.pagination import Limit, NewestFirst
from api.permissions import OptimizerRead, OptimizerWrite
from api.problem_types import problems
from api.problems import invalid
from api.schemas import Page, UsagePublic
from api.state import AppState
from core.contracts.optimizer import WORKFLOW_NAME, Evaluation, OptimizerRunInput, OptimizerRunStatus
from core.db.models import Agent, Dataset, DatasetExample, OptimizerRun
from core.db.repos import AgentRepository, Keyset
from core.ids import new_id, workflow_id
from core.optimizer.dataset_store import DatasetStore
from core.optimizer.metrics import Metric, check_metric, default_metric
from core.optimizer.run_store import OptimizerRunStore, run_seed
from core.optimizer.strategies import strategy
from core.settings import Settings

router = APIRouter(tags=["optimizer"])
RUNS = NewestFirst("optimizer-runs")
DEFAULT_STRATEGIES = ["few_shot"]
RUN_KIND_OPTIMIZER = "optimizer"


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
        evaluation=Evaluation(run.evaluation),
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
        raise invalid("optimizer run", errors)
    return chosen


async def _dataset(store: DatasetStore, agent_id: str, dataset_id: str | None) -> Dataset:
    """The named dataset of the agent (404 otherwise), or its newest (422 naming ``dataset_id`` when it has none)."""
    if dataset_id is not None:
        named = await store.get(dataset_id)
        return found(named if named is not None and named.agent_id == agent_id else None, f"dataset {dataset_id}")
    newest = await store.of_agent(agent_id, limit=1)
    if not newest:
        raise invalid("optimizer run", [{"field": "dataset_id", "message": "required: the agent has no dataset yet"}])
    return newest[0]


def _evaluation(evaluation: Evaluation, dataset: Dataset, examples: Sequence[DatasetExample]) -> Evaluation:
    """``evaluation``; ``replay`` needs every example to come from a recorded run (else 422 naming ``evaluation``)."""
    unrecorded = [e.position for e in examples if e.source_run_id is None]
    if evaluation == Evaluation.REPLAY and unrecorded:
        message = (
            f"`replay` replays each example's recorded run: {len(unrecorded)} examples of dataset {dataset.id}"
            f" were uploaded, not built from runs (the first at position {unrecorded[0]})"
        )
        raise invalid("optimizer run", [{"field": "evaluation", "message": message}])
    return evaluation


def _metric(dataset: Dataset, examples: Sequence[DatasetExample], metric: Metric | None) -> dict[str, Any]:
    """The metric (or the default) as stored; 422 naming ``metric`` when it cannot score the examples."""
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
        raise invalid("optimizer run", errors)
    chosen = metric or default_metric(examples)
    assert chosen is not None  # check_metric refused a dataset without a default
    return chosen.model_dump(mode="json", exclude_none=True)


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
        evaluation=run.evaluation,
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


async def _found(state: AppState, tenant_id: str, run_id: str) -> OptimizerRun:
    return found(await OptimizerRunStore(state.engine).get(tenant_id, run_id), f"optimizer run {run_id}")


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
    agent = await agent_of(AgentRepository(session, tenant_id), agent_id, live_for="it is not optimized")
    dataset = await _dataset(DatasetStore(session, tenant_id), agent_id, body.dataset_id)
    run = await prepare_run(
        state,
        session,
        principal,
        agent,
        dataset,
        body.metric,
        body.budget,
        body.strategies,
        body.auto_promote,
        body.evaluation,
    )
    await _record(state, run)  # over the tenant's cap: 429 before the audit row is committed
    await session.commit()
    await _launch(state, run)
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
    evaluation_asked: Evaluation = Evaluation.SAFE,
) -> OptimizerRun:
    """An optimizer run of the agent's current version on ``dataset``, checked and audited, not yet stored.

    422 naming the field for a budget, a metric, a strategy or an evaluation the run cannot take.
    The caller commits its session, then :func:`launch_run`.
    """
    budget, refused = run_budget(budget_asked, state.settings)
    if refused:
        raise invalid("optimizer run", refused)
    strategies = _strategies(strategies_asked)
    examples = await DatasetStore(session, principal.tenant_id).examples(dataset.id, limit=dataset.size)
    chosen = _metric(dataset, examples, metric)
    evaluation = _evaluation(evaluation_asked, dataset, examples)
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
        evaluation=evaluation.value,
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


async def _record(state: AppState, run: OptimizerRun) -> None:
    """Store the prepared run unless the tenant is at its cap of live runs (429 naming the cap)."""
    await record_live(OptimizerRunStore(state.engine), run, (await tenant_quotas(state, run.tenant_id)).optimizer_runs)


async def _launch(state: AppState, run: OptimizerRun) -> None:
    await temporal_call(_start(state, run), "the run was recorded but could not be started; start a new one")


async def launch_run(state: AppState, run: OptimizerRun) -> None:
    """Store the prepared run (429 at the tenant's cap) and start its workflow (503 when Temporal cannot take it)."""
    await _record(state, run)
    await _launch(state, run)


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
    run = await _found(state, principal.tenant_id, optimizer_run_id)
    store = OptimizerRunStore(state.engine)
    return optimizer_run_public(
        await cancel_live(state, store, run, "optimizer run", reason="cancelled before it started")
    )
