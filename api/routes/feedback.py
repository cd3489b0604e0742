"""``/v1/runs/{id}/feedback``: scores of finished runs, the signal the optimizer learns from."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api import cache_bus
from api.audit import audit
from api.deps import SessionDep, StateDep
from api.pagination import Limit, NewestFirst
from api.permissions import RunsFeedback, RunsRead
from api.problem_types import ProblemType, problems
from api.problems import ProblemError
from api.routes.runs import run_or_404
from api.schemas import Page
from api.version_schemas import AuthorPublic, FeedbackCreate, FeedbackPublic
from core.contracts.agent_run import RunStatus
from core.db.models import RunFeedback
from core.db.repos import Author, FeedbackLimitReached, FeedbackRepository, Keyset
from core.optimizer.experiment_store import ExperimentStore

router = APIRouter(tags=["feedback"])
FEEDBACK = NewestFirst("feedback")
"""A run takes feedback once it has an outcome: a completed turn, a failure or a cancel."""


def feedback_public(row: RunFeedback) -> FeedbackPublic:
    """The public view of one feedback row."""
    return FeedbackPublic(
        id=row.id,
        run_id=row.run_id,
        agent_id=row.agent_id,
        agent_version=row.agent_version,
        score=row.score,
        label=row.label,
        comment=row.comment,
        created_by=AuthorPublic(kind=row.created_by_kind, id=row.created_by_id),
        created_at=row.created_at,
    )


@router.post("/v1/runs/{run_id}/feedback", status_code=201, response_model=FeedbackPublic, responses=problems(409))
async def give_feedback(
    run_id: str,
    body: FeedbackCreate,
    state: StateDep,
    session: SessionDep,
    principal: RunsFeedback,
) -> FeedbackPublic:
    """Score a run that has an outcome (409 while it is queued or running); it counts for the run's version.

    A run takes ``AIMPACT_FEEDBACK_PER_RUN`` entries; one more answers 409 ``feedback-limit``.
    On a run of a running online experiment, the score counts for its arm and may end the
    experiment (promotion, rollback), in the same transaction.
    """
    run = await run_or_404(session, principal.tenant_id, run_id)
    if run.status not in RunStatus.FINAL:
        raise ProblemError(
            409,
            f"run {run_id} is {run.status}: feedback is taken once it has an outcome",
            slug=ProblemType.RUN_NOT_FINISHED,
        )
    author = Author(kind="user", id=principal.subject_id)
    repository = FeedbackRepository(session, principal.tenant_id)
    try:
        row = await repository.add(
            run,
            score=body.score,
            label=body.label,
            comment=body.comment,
            author=author,
            limit=state.settings.feedback_per_run,
        )
    except FeedbackLimitReached as exc:
        raise ProblemError(
            409, f"run {run_id}: {exc} (AIMPACT_FEEDBACK_PER_RUN={exc.limit})", slug=ProblemType.FEEDBACK_LIMIT
        ) from None
    ended = await ExperimentStore(session, principal.tenant_id).learn(run, body.score)
    audit(session, principal, action="feedback.created", target_type="run", target_id=run.id, data={"id": row.id})
    if ended is not None:
        audit(
            session,
            principal,
            action=f"experiment.{ended.status}",
            target_type="agent",
            target_id=ended.agent_id,
            data={"id": ended.id, "decision": ended.decision, "reason": ended.reason},
        )
    await session.commit()
    if ended is not None:
        await state.caches.invalidate(cache_bus.AGENTS)
    return feedback_public(row)


@router.get("/v1/runs/{run_id}/feedback", response_model=Page[FeedbackPublic])
async def list_feedback(
    run_id: str,
    session: SessionDep,
    principal: RunsRead,
    after: Annotated[Keyset | None, Depends(FEEDBACK.after)],
    limit: Limit = 50,
) -> Page[FeedbackPublic]:
    """Feedback on one run, newest first."""
    await run_or_404(session, principal.tenant_id, run_id)
    rows, next_cursor = FEEDBACK.page(
        await FeedbackRepository(session, principal.tenant_id).of_run(run_id, limit=limit + 1, after=after), limit
    )
    return Page(items=[feedback_public(r) for r in rows], next_cursor=next_cursor)
