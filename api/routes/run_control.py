"""Steering a run: next message, approvals, cancel, retry from the failed step; threads; usage."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from operator import attrgetter
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import col
from temporalio.client import (
    RPCError,
    RPCStatusCode,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError

from api.deps import SessionDep, StateDep
from api.pagination import BySeq, Limit
from api.permissions import RunsApprove, RunsCancel, RunsRead, RunsStart, UsageRead
from api.problem_types import ProblemType, problems
from api.problems import ProblemError
from api.routes.runs import run_or_404, run_public
from api.schemas import IsoDatetime, Page, RunPublic, RunTurnPublic, TurnPublic, UsagePublic
from api.state import AppState
from core.contracts.agent_run import (
    ApprovalDecision,
    MessageAccepted,
    RetryRequest,
    RunStatus,
    SendMessage,
    StateQuery,
)
from core.db.models import Agent, Run
from core.db.reads import ThreadReads
from core.db.repos import RunRepository
from core.events import TURN_ACCEPTED, TURN_RETRIED
from core.validation import CleanModel
from workflows.agent_run import AgentRunWorkflow

log = structlog.get_logger(__name__)
router = APIRouter(tags=["runs"])
THREAD_MESSAGES = BySeq("thread-messages", attrgetter("seq"))
T = TypeVar("T")
ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"description": "The run as it stands; the workflow acts on the request next."}
}
MESSAGE_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: ACCEPTED[202]
    | {"headers": {"X-Message-Id": {"description": "The message's id.", "schema": {"type": "string"}}}}
}


class MessageCreate(CleanModel):
    """``POST /v1/runs/{id}/messages``."""

    input: str = Field(min_length=1, max_length=200_000)


class ApprovalCreate(CleanModel):
    """``POST /v1/runs/{id}/approvals/{step_id}``."""

    decision: str = Field(pattern="^(approve|reject)$")
    comment: str | None = Field(default=None, max_length=2000)


class ThreadMessagePublic(BaseModel):
    """One message of a thread."""

    seq: int
    role: str
    content: str
    tool_calls: list[dict[str, Any]]
    tool_call_id: str | None
    name: str | None
    run_id: str | None
    created_at: datetime


class UsageRow(UsagePublic):
    """Usage of one agent in the period."""

    agent_id: str
    agent_name: str
    runs: int


class UsageDay(UsagePublic):
    """Usage of one agent on one day (UTC)."""

    day: date
    agent_id: str
    runs: int


class UsageReport(UsagePublic):
    """``GET /v1/usage``: the tenant's usage in the period, in all, per agent and per agent and day."""

    tenant_id: str
    start: datetime | None = Field(default=None, alias="from")
    to: datetime | None
    runs: int
    agents: list[UsageRow]
    days: list[UsageDay] = Field(description="Per agent and day (UTC), by day then agent.")

    model_config = ConfigDict(populate_by_name=True)


async def _steer(call: Callable[[], Awaitable[T]]) -> T:
    """Run a workflow update, mapping refusals to 409."""
    try:
        return await call()
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        detail = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise ProblemError(409, detail, slug=ProblemType.CONFLICT) from None
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise ProblemError(
                409, "the run is closed; start a new run on the same thread", slug=ProblemType.CONFLICT
            ) from None
        raise


async def _answer(state: AppState, session: SessionDep, run: Run) -> RunPublic:
    await session.refresh(run)
    return run_public(state, run, await RunRepository(session, run.tenant_id).steps(run.id))


async def _announce_turn(state: AppState, run: Run, event: str, turn: TurnPublic) -> None:
    """Publish the turn a request set going, so that a long-poll or a stream waits for it from now on.

    The workflow's own events follow; if Redis refuses this one, they still tell the turn.
    """
    data = turn.model_dump(exclude={"number"}, exclude_none=True) | {"turn": turn.number}
    try:
        await state.events.publish(run.tenant_id, run.id, event, data)
    except RedisError as exc:
        log.warning("turn event not published", run_id=run.id, event=event, error=str(exc))


async def _turn_of(handle: WorkflowHandle[AgentRunWorkflow, Any], accepted: MessageAccepted) -> int:
    """The turn that answers an accepted message: an interrupting one joins the turn in flight."""
    if accepted.policy != "interrupt":
        return accepted.turn
    try:
        view = await handle.query(AgentRunWorkflow.state, StateQuery(include_steps=False))
    except (RPCError, WorkflowQueryFailedError) as exc:
        log.warning("could not query the run's turn", workflow_id=handle.id, error=str(exc))
        return accepted.turn
    in_turn = view.status in (RunStatus.RUNNING, RunStatus.WAITING_APPROVAL)
    return view.turn if in_turn and view.turn < accepted.turn else accepted.turn


@router.post(
    "/v1/runs/{run_id}/messages",
    status_code=202,
    response_model=RunTurnPublic,
    responses=MESSAGE_ACCEPTED | problems(409),
)
async def send_message(
    run_id: str,
    body: MessageCreate,
    state: StateDep,
    session: SessionDep,
    principal: RunsStart,
    response: Response,
) -> RunTurnPublic:
    """Next turn of the conversation (or, while a turn runs, the agent's double-texting policy).

    ``turn`` names the turn that answers the message and ``after_event_id`` the run's
    newest event before it: ``GET …/events?after=`` that id follows the turn, and
    ``GET /v1/runs/{id}?wait_s=`` waits for it.
    """
    run = await run_or_404(session, principal.tenant_id, run_id)
    if run.status in (RunStatus.FAILED, RunStatus.CANCELLED):
        raise ProblemError(409, f"run is {run.status}", slug=ProblemType.CONFLICT)
    handle = state.temporal.get_workflow_handle_for(AgentRunWorkflow.run, run.workflow_id)
    before = await state.events.last_id(run.tenant_id, run.id)
    accepted = await _steer(lambda: handle.execute_update(AgentRunWorkflow.send_message, SendMessage(text=body.input)))
    turn = TurnPublic(
        number=await _turn_of(handle, accepted),
        message_id=accepted.message_id,
        policy=accepted.policy,
        after_event_id=before,
    )
    await _announce_turn(state, run, TURN_ACCEPTED, turn)
    response.headers["X-Message-Id"] = accepted.message_id
    return RunTurnPublic(**dict(await _answer(state, session, run)), turn=turn)


@router.post(
    "/v1/runs/{run_id}/approvals/{step_id}",
    status_code=202,
    response_model=RunPublic,
    responses=ACCEPTED | problems(409),
)
async def decide_approval(
    run_id: str,
    step_id: str,
    body: ApprovalCreate,
    state: StateDep,
    session: SessionDep,
    principal: RunsApprove,
) -> RunPublic:
    """Approve or reject a tool call that waits for a human; 409 if that step is not waiting."""
    run = await run_or_404(session, principal.tenant_id, run_id)
    if run.status in RunStatus.FINAL:
        raise ProblemError(409, f"run is {run.status}", slug=ProblemType.CONFLICT)
    handle = state.temporal.get_workflow_handle_for(AgentRunWorkflow.run, run.workflow_id)
    decision = ApprovalDecision(
        step_id=step_id, decision=body.decision, decided_by=principal.subject_id, comment=body.comment
    )
    await _steer(lambda: handle.execute_update(AgentRunWorkflow.decide_approval, decision))
    return await _answer(state, session, run)


@router.post("/v1/runs/{run_id}/cancel", status_code=202, response_model=RunPublic, responses=ACCEPTED | problems(409))
async def cancel_run(run_id: str, state: StateDep, session: SessionDep, principal: RunsCancel) -> RunPublic:
    """Cancel a run (its current step is cancelled, its status becomes ``cancelled``)."""
    run = await run_or_404(session, principal.tenant_id, run_id)
    if run.status in (RunStatus.FAILED, RunStatus.CANCELLED):
        raise ProblemError(409, f"run is {run.status}", slug=ProblemType.CONFLICT)
    handle = state.temporal.get_workflow_handle(run.workflow_id)
    try:
        await handle.cancel()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise ProblemError(409, "the run is closed", slug=ProblemType.CONFLICT) from None
        raise
    return await _answer(state, session, run)


@router.post(
    "/v1/runs/{run_id}/retry", status_code=202, response_model=RunTurnPublic, responses=ACCEPTED | problems(409)
)
async def retry_run(run_id: str, state: StateDep, session: SessionDep, principal: RunsStart) -> RunTurnPublic:
    """Continue a failed run from the step that failed; completed steps are not repeated.

    ``turn`` names the failed turn that runs again and ``after_event_id`` the run's newest
    event before the retry (``GET …/events?after=`` that id follows it).
    """
    run = await run_or_404(session, principal.tenant_id, run_id)
    if run.status != RunStatus.FAILED:
        raise ProblemError(409, f"run is {run.status}, not failed", slug=ProblemType.CONFLICT)
    handle = state.temporal.get_workflow_handle_for(AgentRunWorkflow.run, run.workflow_id)
    position = await state.events.turns(run.tenant_id, run.id)
    await _steer(lambda: handle.execute_update(AgentRunWorkflow.retry, RetryRequest(requested_by=principal.subject_id)))
    turn = TurnPublic(number=position.turn, message_id=None, policy=None, after_event_id=position.last_id)
    await _announce_turn(state, run, TURN_RETRIED, turn)
    return RunTurnPublic(**dict(await _answer(state, session, run)), turn=turn)


@router.get("/v1/threads/{thread_id}/messages", response_model=Page[ThreadMessagePublic])
async def thread_messages(
    thread_id: str,
    state: StateDep,
    principal: RunsRead,
    after: Annotated[int | None, Depends(THREAD_MESSAGES.after)],
    limit: Limit = 100,
) -> Page[ThreadMessagePublic]:
    """The messages of a thread in order (user, assistant and tool messages)."""
    found = await ThreadReads(state.reads, principal.tenant_id).messages(
        thread_id, limit=limit + 1, after_seq=after or 0
    )
    if not found and after is None:
        raise ProblemError(404, f"thread {thread_id} not found", slug=ProblemType.NOT_FOUND)
    rows, next_cursor = THREAD_MESSAGES.page(found, limit)
    items = [ThreadMessagePublic.model_validate(r, from_attributes=True) for r in rows]
    return Page(items=items, next_cursor=next_cursor)


def _agent_total(agent_id: str, name: str, days: list[UsageDay]) -> UsageRow:
    """The period's usage of one agent: the sum of its days."""
    return UsageRow(
        agent_id=agent_id,
        agent_name=name,
        runs=sum(d.runs for d in days),
        input_tokens=sum(d.input_tokens for d in days),
        output_tokens=sum(d.output_tokens for d in days),
        cost_usd=round(sum(d.cost_usd for d in days), 8),
    )


@router.get("/v1/usage", response_model=UsageReport)
async def usage(
    session: SessionDep,
    principal: UsageRead,
    start: Annotated[IsoDatetime | None, Query(alias="from")] = None,
    to: Annotated[IsoDatetime | None, Query()] = None,
) -> UsageReport:
    """Tokens, cost and runs per agent, and per agent and day (UTC), of runs created in [from, to)."""
    day = func.date(func.timezone("UTC", col(Run.created_at)))
    query: Any = (
        sa_select(
            col(Run.agent_id),
            col(Agent.name),
            day,
            func.count(col(Run.id)),
            func.coalesce(func.sum(Run.input_tokens), 0),
            func.coalesce(func.sum(Run.output_tokens), 0),
            func.coalesce(func.sum(Run.cost_usd), 0.0),
        )
        .join(Agent, col(Agent.id) == col(Run.agent_id))
        .where(col(Run.tenant_id) == principal.tenant_id, col(Run.parent_run_id).is_(None))
        .group_by(col(Run.agent_id), col(Agent.name), day)
        .order_by(day, col(Run.agent_id))
    )
    if start is not None:
        query = query.where(Run.created_at >= start)
    if to is not None:
        query = query.where(Run.created_at < to)
    rows = (await session.execute(query)).all()
    days = [
        UsageDay(day=d, agent_id=a, runs=r, input_tokens=i, output_tokens=o, cost_usd=round(float(c), 8))
        for a, _, d, r, i, o, c in rows
    ]
    names = {a: n for a, n, *_ in rows}
    agents = [_agent_total(a, names[a], [d for d in days if d.agent_id == a]) for a in sorted(names)]
    return UsageReport(
        tenant_id=principal.tenant_id,
        start=start,
        to=to,
        runs=sum(a.runs for a in agents),
        input_tokens=sum(a.input_tokens for a in agents),
        output_tokens=sum(a.output_tokens for a in agents),
        cost_usd=round(sum(a.cost_usd for a in agents), 8),
        agents=agents,
        days=days,
    )
