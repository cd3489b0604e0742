"""``/v1/runs/{id}/feedback``: scores of finished runs, the signal the optimizer learns from."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.audit import audit
from api.deps import Principal, SessionDep, require
from api.pagination import Limit, NewestFirst
from api.problems import ProblemError
from api.routes.runs import run_or_404
from api.schemas import Page
from api.version_schemas import AuthorPublic, FeedbackCreate, FeedbackPublic
from core.db.models import RunFeedback
from core.db.repos import Author, FeedbackRepository, Keyset

router = APIRouter(tags=["feedback"])
FEEDBACK = NewestFirst("feedback")
FEEDBACK_STATUSES = frozenset({"completed", "failed", "cancelled"})
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


@router.post("/v1/runs/{run_id}/feedback", status_code=201, response_model=FeedbackPublic)
async def give_feedback(
    run_id: str,
    body: FeedbackCreate,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("runs:feedback"))],
) -> FeedbackPublic:
    """Score a run that has an outcome (409 while it is queued or running); it counts for the run's version."""
    run = await run_or_404(session, principal.tenant_id, run_id)
    if run.status not in FEEDBACK_STATUSES:
        raise ProblemError(
            409, f"run {run_id} is {run.status}: feedback is taken once it has an outcome", slug="run-not-finished"
        )
    author = Author(kind="user", id=principal.subject_id)
    row = FeedbackRepository(session, principal.tenant_id).add(
        run, score=body.score, label=body.label, comment=body.comment, author=author
    )
    audit(session, principal, action="feedback.created", target_type="run", target_id=run.id, data={"id": row.id})
    await session.commit()
    return feedback_public(row)


@router.get("/v1/runs/{run_id}/feedback", response_model=Page[FeedbackPublic])
async def list_feedback(
    run_id: str,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("runs:read"))],
    after: Annotated[Keyset | None, Depends(FEEDBACK.after)],
    limit: Limit = 50,
) -> Page[FeedbackPublic]:
    """Feedback on one run, newest first."""
    await run_or_404(session, principal.tenant_id, run_id)
    rows, next_cursor = FEEDBACK.page(
        await FeedbackRepository(session, principal.tenant_id).of_run(run_id, limit=limit + 1, after=after), limit
    )
    return Page(items=[feedback_public(r) for r in rows], next_cursor=next_cursor)
