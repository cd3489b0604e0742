"""``/v1/agents/{id}/replays``, ``/v1/replays``: counterfactual replays of recorded runs with a candidate version.

A replay (``ReplayWorkflow`` on the optimizer queue) re-runs the inputs of completed runs with
one of the agent's versions; every tool call whose name and arguments match the run's
recording is answered from it, any other gets a "not in recording" error (counted). Nothing
runs: no side effects, no live calls.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlmodel import col, select

from api.audit import audit
from api.deps import SessionDep, StateDep, tenant_quotas
from api.lookups import agent_of, found
from api.optimizer_workflows import ACCEPTED, cancel_live, record_live, start_on_optimizer_queue, temporal_call
from api.pagination import Limit, NewestFirst
from api.permissions import OptimizerRead, OptimizerWrite
from api.problem_types import problems
from api.problems import ProblemError, invalid
from api.replay_schemas import DEFAULT_SAMPLE, ReplayCreate, ReplayPublic, ReplayRunPublic, ReplayToolCallPublic
from api.schemas import Page
from api.state import AppState
from core.contracts.agent_run import RunStatus
from core.contracts.optimizer import OptimizerRunStatus
from core.contracts.replay import REPLAY_WORKFLOW_NAME, ReplayInput
from core.db.models import Replay, ReplayResult, Run
from core.db.repos import AgentRepository, Keyset
from core.ids import new_id, workflow_id
from core.optimizer.metrics import JudgeMetric, Metric, needs_expected
from core.optimizer.replay_store import ReplayStore

router = APIRouter(tags=["optimizer"])
REPLAYS = NewestFirst("replays")
RUN_KIND_REPLAY = "replay"


def _result_public(row: ReplayResult) -> ReplayRunPublic:
    return ReplayRunPublic(
        run_id=row.run_id,
        outcome=row.outcome,
        recorded_output=row.recorded_output,
        candidate_output=row.candidate_output,
        recorded_score=row.recorded_score,
        recorded_reason=row.recorded_reason,
        candidate_score=row.candidate_score,
        candidate_reason=row.candidate_reason,
        from_recording=row.from_recording,
        not_in_recording=row.not_in_recording,
        tool_calls=[ReplayToolCallPublic(**c) for c in row.tool_calls],
        error=row.error,
    )


def replay_public(replay: Replay, results: list[ReplayResult] | None = None) -> ReplayPublic:
    """The public view of a replay (with its per-run results when given, in the replay's run order)."""
    shown = None
    if results is not None:
        order = {run_id: i for i, run_id in enumerate(replay.run_ids)}
        shown = [_result_public(r) for r in sorted(results, key=lambda r: order.get(r.run_id, len(order)))]
    return ReplayPublic(
        id=replay.id,
        agent_id=replay.agent_id,
        version=replay.version,
        status=OptimizerRunStatus(replay.status),
        run_ids=replay.run_ids,
        metric=replay.metric,
        summary=replay.summary,
        results=shown,
        error=replay.error,
        created_at=replay.created_at,
        updated_at=replay.updated_at,
    )


def _invalid(field: str, message: str) -> ProblemError:
    return invalid("replay", [{"field": field, "message": message}])


def _metric(metric: Metric | None) -> dict[str, Any] | None:
    """The metric as stored; 422 for one needing ``expected`` (a replay has none) or a judge without a rubric."""
    if metric is None:
        return None
    if needs_expected(metric):
        raise _invalid(
            "metric", f"`{metric.type}` compares with `expected`, which a replay has none of: use judge or regex"
        )
    if isinstance(metric, JudgeMetric) and metric.rubric is None:
        raise _invalid("metric.rubric", "required: a replay's runs have no rubric of their own")
    return metric.model_dump(mode="json", exclude_none=True)


async def _runs(session: SessionDep, tenant_id: str, agent_id: str, body: ReplayCreate) -> list[str]:
    """The runs to replay: ``run_ids`` (each a completed run of the agent, else 422 naming it) or a sample."""
    if body.run_ids is not None and body.sample is not None:
        raise _invalid("sample", "give run_ids or sample, not both")
    if body.run_ids is None:
        sampled = (
            select(Run.id)
            .where(Run.tenant_id == tenant_id, Run.agent_id == agent_id, Run.status == RunStatus.COMPLETED.value)
            .order_by(col(Run.created_at).desc(), col(Run.id).desc())
            .limit(body.sample or DEFAULT_SAMPLE)
        )
        found = list((await session.exec(sampled)).all())
        if not found:
            raise _invalid("sample", f"agent {agent_id} has no completed runs to replay")
        return found
    query = select(Run.id, Run.agent_id, Run.status).where(
        Run.tenant_id == tenant_id, col(Run.id).in_(list(body.run_ids))
    )
    known = {row[0]: row for row in (await session.exec(query)).all()}
    for index, run_id in enumerate(body.run_ids):
        row = known.get(run_id)
        if row is None or row[1] != agent_id:
            raise _invalid(f"run_ids[{index}]", f"run {run_id} of agent {agent_id} not found")
        if row[2] != RunStatus.COMPLETED.value:
            raise _invalid(f"run_ids[{index}]", f"run {run_id} is {row[2]}: only completed runs are replayed")
        if run_id in body.run_ids[:index]:
            raise _invalid(f"run_ids[{index}]", f"run {run_id} is named twice")
    return list(body.run_ids)


async def _start(state: AppState, replay: Replay) -> None:
    settings = state.settings
    inp = ReplayInput(
        tenant_id=replay.tenant_id,
        replay_id=replay.id,
        agent_id=replay.agent_id,
        version=replay.version,
        run_ids=replay.run_ids,
        metric=replay.metric,
        concurrency=settings.optimizer_concurrency,
        heartbeat_timeout_s=settings.activity_heartbeat_timeout_s,
    )
    await start_on_optimizer_queue(
        state, REPLAY_WORKFLOW_NAME, inp, replay.workflow_id, replay.tenant_id, replay.agent_id, RUN_KIND_REPLAY
    )


async def _found(state: AppState, tenant_id: str, replay_id: str) -> Replay:
    return found(await ReplayStore(state.engine).get(tenant_id, replay_id), f"replay {replay_id}")


@router.post(
    "/v1/agents/{agent_id}/replays",
    status_code=202,
    response_model=ReplayPublic,
    responses=ACCEPTED | problems(409, 503),
)
async def start_replay(
    agent_id: str, body: ReplayCreate, state: StateDep, session: SessionDep, principal: OptimizerWrite
) -> ReplayPublic:
    """Replay recorded runs of the agent with ``version``, tool calls answered from the recordings.

    422 naming the field: a version the agent does not have (``version``), a run that is not a
    completed run of this agent (``run_ids[i]``), no completed run to sample (``sample``), a
    metric needing ``expected`` (``metric``). 409 for an archived agent; 503 when Temporal cannot
    take the start (the replay stays recorded, ``queued``).
    """
    tenant_id = principal.tenant_id
    agents = AgentRepository(session, tenant_id)
    await agent_of(agents, agent_id, live_for="it is not replayed")
    if await agents.get_version(agent_id, body.version) is None:
        raise _invalid("version", f"agent {agent_id} has no version {body.version}")
    metric = _metric(body.metric)
    run_ids = await _runs(session, tenant_id, agent_id, body)
    replay_id = new_id("rpl")
    replay = Replay(
        id=replay_id,
        tenant_id=tenant_id,
        agent_id=agent_id,
        version=body.version,
        status=OptimizerRunStatus.QUEUED.value,
        run_ids=run_ids,
        metric=metric,
        workflow_id=workflow_id(tenant_id, "replay", replay_id),
    )
    await record_live(ReplayStore(state.engine), replay, (await tenant_quotas(state, tenant_id)).replays)
    audit(
        session,
        principal,
        action="replay.started",
        target_type="replay",
        target_id=replay_id,
        data={"agent_id": agent_id, "version": body.version, "runs": len(run_ids)},
    )
    await session.commit()
    await temporal_call(_start(state, replay), "the replay was recorded but could not be started; start a new one")
    return replay_public(replay, [])


@router.get("/v1/replays/{replay_id}", response_model=ReplayPublic)
async def get_replay(replay_id: str, state: StateDep, principal: OptimizerRead) -> ReplayPublic:
    """One replay: per run the recorded output, the candidate's, their scores and the tool calls answered."""
    replay = await _found(state, principal.tenant_id, replay_id)
    return replay_public(replay, await ReplayStore(state.engine).results(principal.tenant_id, replay_id))


@router.get("/v1/agents/{agent_id}/replays", response_model=Page[ReplayPublic])
async def list_replays(
    agent_id: str,
    state: StateDep,
    session: SessionDep,
    principal: OptimizerRead,
    after: Annotated[Keyset | None, Depends(REPLAYS.after)],
    limit: Limit = 50,
) -> Page[ReplayPublic]:
    """The agent's replays (an archived agent's too), newest first, without their per-run results."""
    await agent_of(AgentRepository(session, principal.tenant_id), agent_id)
    rows = await ReplayStore(state.engine).of_agent(principal.tenant_id, agent_id, limit=limit + 1, after=after)
    page, next_cursor = REPLAYS.page(rows, limit)
    return Page(items=[replay_public(r) for r in page], next_cursor=next_cursor)


@router.post(
    "/v1/replays/{replay_id}/cancel",
    status_code=202,
    response_model=ReplayPublic,
    responses=ACCEPTED | problems(409, 503),
)
async def cancel_replay(replay_id: str, state: StateDep, principal: OptimizerWrite) -> ReplayPublic:
    """Cancel a replay: runs in flight are cancelled and it records ``cancelled``; 409 once it is final.

    A replay whose workflow never started (Temporal was out of reach at its start) is cancelled at once.
    """
    replay = await _found(state, principal.tenant_id, replay_id)
    return replay_public(await cancel_live(state, ReplayStore(state.engine), replay, "replay"))
