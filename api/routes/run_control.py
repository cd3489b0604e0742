"""Steering a run: next message, approvals, cancel, retry from the failed step; threads; usage."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from operator import attrgetter
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import col
from temporalio.client import RPCError, RPCStatusCode, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from api.deps import Principal, SessionDep, StateDep, require
from api.pagination import BySeq, Limit
from api.problems import ProblemError
from api.routes.runs import FINAL_STATUSES, run_or_404, run_public
from api.schemas import Page
from core.contracts.agent_run import ApprovalDecision, RetryRequest, SendMessage
from core.db.models import Agent, Run
from core.db.repos import RunRepository
from core.threads import ThreadStore
from core.validation import CleanModel
from workflows.agent_run import AgentRunWorkflow

router = APIRouter(tags=["runs"])
THREAD_MESSAGES = BySeq("thread-messages", attrgetter("seq"))
T = TypeVar("T")


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


class UsageRow(BaseModel):
    """Usage of one agent in the period."""

    agent_id: str
    agent_name: str
    runs: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class UsagePublic(BaseModel):
    """``GET /v1/usage``."""

    tenant_id: str
    start: datetime | None = Field(default=None, alias="from")
    to: datetime | None
    runs: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    agents: list[UsageRow]

    model_config = {"populate_by_name": True}


async def _steer(call: Callable[[], Awaitable[T]]) -> T:
    """Run a workflow update, mapping refusals to 409."""
    try:
        return await call()
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        detail = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise ProblemError(409, detail, slug="conflict") from None
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            raise ProblemError(409, "the run is closed; start a new run on the same thread", slug="conflict") from None
        raise


async def _answer(state: StateDep, session: SessionDep, run: Run) -> JSONResponse:
    await session.refresh(run)
    runs = RunRepository(session, run.tenant_id)
    return JSONResponse(run_public(state, run, await runs.steps(run.id)).model_dump(mode="json"), status_code=202)


@router.post("/v1/runs/{run_id}/messages", status_code=202)
async def send_message(
    run_id: str,
    body: MessageCreate,
    state: StateDep,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("runs:start"))],
) -> JSONResponse:
    """Next turn of the conversation (or, while a turn runs, the agent's double-texting policy)."""
    run = await run_or_404(session, principal.tenant_id, run_id)
    if run.status in ("failed", "cancelled"):
        raise ProblemError(409, f"run is {run.status}", slug="conflict")
    handle = state.temporal.get_workflow_handle_for(AgentRunWorkflow.run, run.workflow_id)
    accepted = await _steer(lambda: handle.execute_update(AgentRunWorkflow.send_message, SendMessage(text=body.input)))
    response = await _answer(state, session, run)
    response.headers["X-Message-Id"] = accepted.message_id
    return response


@router.post("/v1/runs/{run_id}/approvals/{step_id}", status_code=202)
async def decide_approval(
    run_id: str,
    step_id: str,
    body: ApprovalCreate,
    state: StateDep,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("runs:approve"))],
) -> JSONResponse:
    """Approve or reject a tool call that waits for a human; 409 if that step is not waiting."""
    run = await run_or_404(session, principal.tenant_id, run_id)
    if run.status in FINAL_STATUSES:
        raise ProblemError(409, f"run is {run.status}", slug="conflict")
    handle = state.temporal.get_workflow_handle_for(AgentRunWorkflow.run, run.workflow_id)
    decision = ApprovalDecision(
        step_id=step_id, decision=body.decision, decided_by=principal.subject_id, comment=body.comment
    )
    await _steer(lambda: handle.execute_update(AgentRunWorkflow.decide_approval, decision))
    return await _answer(state, session, run)


@router.post("/v1/runs/{run_id}/cancel", status_code=202)
async def cancel_run(
    run_id: str, state: StateDep, session: SessionDep, principal: Annotated[Principal, Depends(require("runs:cancel"))]
) -> JSONResponse:
    """Cancel a run (its current step is cancelled, its status becomes ``cancelled``)."""
    run = await run_or_404(session, principal.tenant_id, run_id)
    if run.status in ("failed", "cancelled"):
        raise ProblemError(409, f"run is {run.status}", slug="conflict")
    handle = state.temporal.get_workflow_handle(run.workflow_id)
    try:
        await handle.cancel()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise ProblemError(409, "the run is closed", slug="conflict") from None
        raise
    return await _answer(state, session, run)


@router.post("/v1/runs/{run_id}/retry", status_code=202)
async def retry_run(
    run_id: str, state: StateDep, session: SessionDep, principal: Annotated[Principal, Depends(require("runs:start"))]
) -> JSONResponse:
    """Continue a failed run from the step that failed; completed steps are not repeated."""
    run = await run_or_404(session, principal.tenant_id, run_id)
    if run.status != "failed":
        raise ProblemError(409, f"run is {run.status}, not failed", slug="conflict")
    handle = state.temporal.get_workflow_handle_for(AgentRunWorkflow.run, run.workflow_id)
    await _steer(lambda: handle.execute_update(AgentRunWorkflow.retry, RetryRequest(requested_by=principal.subject_id)))
    return await _answer(state, session, run)


@router.get("/v1/threads/{thread_id}/messages", response_model=Page[ThreadMessagePublic])
async def thread_messages(
    thread_id: str,
    state: StateDep,
    principal: Annotated[Principal, Depends(require("runs:read"))],
    after: Annotated[int | None, Depends(THREAD_MESSAGES.after)],
    limit: Limit = 100,
) -> Page[ThreadMessagePublic]:
    """The messages of a thread in order (user, assistant and tool messages)."""
    found = await ThreadStore(state.engine).rows(principal.tenant_id, thread_id, limit=limit + 1, after_seq=after or 0)
    if not found and after is None:
        raise ProblemError(404, f"thread {thread_id} not found", slug="not-found")
    rows, next_cursor = THREAD_MESSAGES.page(found, limit)
    items = [ThreadMessagePublic.model_validate(r, from_attributes=True) for r in rows]
    return Page(items=items, next_cursor=next_cursor)


@router.get("/v1/usage", response_model=UsagePublic)
async def usage(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("usage:read"))],
    start: Annotated[datetime | None, Query(alias="from")] = None,
    to: Annotated[datetime | None, Query()] = None,
) -> UsagePublic:
    """Tokens, cost and runs per agent for the caller's tenant (runs created in [from, to))."""
    query: Any = (
        sa_select(
            col(Run.agent_id),
            col(Agent.name),
            func.count(col(Run.id)),
            func.coalesce(func.sum(Run.input_tokens), 0),
            func.coalesce(func.sum(Run.output_tokens), 0),
            func.coalesce(func.sum(Run.cost_usd), 0.0),
        )
        .join(Agent, col(Agent.id) == col(Run.agent_id))
        .where(col(Run.tenant_id) == principal.tenant_id, col(Run.parent_run_id).is_(None))
        .group_by(col(Run.agent_id), col(Agent.name))
        .order_by(col(Run.agent_id))
    )
    if start is not None:
        query = query.where(Run.created_at >= start)
    if to is not None:
        query = query.where(Run.created_at < to)
    rows = (await session.execute(query)).all()
    agents = [
        UsageRow(agent_id=a, agent_name=n, runs=r, input_tokens=i, output_tokens=o, cost_usd=round(float(c), 8))
        for a, n, r, i, o, c in rows
    ]
    return UsagePublic(
        tenant_id=principal.tenant_id,
        start=start,
        to=to,
        runs=sum(a.runs for a in agents),
        input_tokens=sum(a.input_tokens for a in agents),
        output_tokens=sum(a.output_tokens for a in agents),
        cost_usd=round(sum(a.cost_usd for a in agents), 8),
        agents=agents,
    )
