"""``/v1/memories``: long-term memory per subject — write, search, list, delete, erase."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from dataclasses import asdict
from operator import itemgetter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import JSONResponse
from temporalio.client import WorkflowFailureError

from api.audit import audit
from api.deps import SessionDep, StateDep
from api.memory_schemas import (
    SUBJECT_PATTERN,
    CompactionPublic,
    ErasureResult,
    MemoryCreate,
    MemoryHitPublic,
    MemoryPublic,
    MemorySearchResult,
)
from api.pagination import BySeq, Limit, NewestFirst
from api.permissions import MemoryErase, MemoryRead, MemoryWrite, RunsRead
from api.problem_types import ProblemType, problems
from api.problems import ProblemError
from api.schemas import Page
from core.db.repos import Keyset
from core.memory.context import ThreadContext
from core.memory.embedders import EmbedderRejected, EmbedderUnavailable
from core.memory.erasure import erase_subject
from core.memory.service import memory_id_for, new_memory_id
from core.memory.store import NewMemory
from core.threads import ThreadStore

router = APIRouter(tags=["memory"])
Subject = Annotated[str, Query(min_length=1, max_length=200, pattern=SUBJECT_PATTERN)]
MEMORIES = NewestFirst("memories")
COMPACTIONS = BySeq("thread-compactions", itemgetter("upto_seq"))


def _public(row: Any) -> MemoryPublic:
    return MemoryPublic(
        id=row.id,
        subject=row.subject,
        text=row.text,
        metadata=row.metadata or {},
        status=row.status,
        importance=row.importance,
        use_count=row.use_count,
        source_run_id=row.source_run_id,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


def subject_ref(subject: str) -> str:
    """How audit events name a subject: a digest, since subject ids may be personal data."""
    return "subject:" + hashlib.sha256(subject.encode()).hexdigest()[:16]


@router.post(
    "/v1/memories",
    status_code=201,
    response_model=MemoryPublic,
    responses=problems(409)
    | {202: {"model": MemoryPublic, "description": "Stored; the embedding is queued (embedder busy or down)."}},
)
async def write_memory(
    body: MemoryCreate,
    state: StateDep,
    principal: MemoryWrite,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    """Store a memory and embed it: 201 once searchable, 202 while its embedding is still queued."""
    cap = state.settings.memory_max_text_chars
    if len(body.text) > cap:
        raise ProblemError(
            422,
            f"text: at most {cap} characters",
            slug=ProblemType.VALIDATION_ERROR,
            errors=[{"field": "text", "message": f"at most {cap} characters"}],
        )
    memory_id = memory_id_for(f"{principal.tenant_id}:{idempotency_key}") if idempotency_key else new_memory_id()
    memory = NewMemory(
        id=memory_id,
        subject=body.subject,
        text=body.text,
        metadata=body.metadata,
        importance=body.importance,
    )
    _, handle = await state.memory.remember(principal.tenant_id, [memory])
    if handle is not None and state.settings.memory_write_wait_s > 0:
        with contextlib.suppress(TimeoutError, WorkflowFailureError):  # still pending: answered with 202
            await asyncio.wait_for(handle.result(), timeout=state.settings.memory_write_wait_s)
    row = await state.memory.store.get(principal.tenant_id, memory_id)
    if row is None:
        raise ProblemError(409, "the memory was erased while it was being written", slug=ProblemType.CONFLICT)
    public = _public(row)
    return JSONResponse(public.model_dump(mode="json"), status_code=201 if public.status == "ready" else 202)


@router.get("/v1/memories/search", responses=problems(502, 503), response_model=MemorySearchResult)
async def search_memories(
    state: StateDep,
    principal: MemoryRead,
    q: Annotated[str, Query(min_length=1, max_length=2000)],
    subject: Annotated[str | None, Query(min_length=1, max_length=200, pattern=SUBJECT_PATTERN)] = None,
    k: Annotated[int, Query(ge=1, le=100)] = 5,
) -> MemorySearchResult:
    """The ``k`` memories closest in meaning to ``q`` (of ``subject`` when given); only the caller's tenant."""
    try:
        hits = await state.memory.search(principal.tenant_id, subject, q, k=k)
    except EmbedderUnavailable as exc:
        raise ProblemError(
            503,
            f"the embedder is unavailable: {exc}",
            slug=ProblemType.EMBEDDER_UNAVAILABLE,
            headers={"Retry-After": "5"},
        ) from exc
    except EmbedderRejected as exc:
        raise ProblemError(502, f"the embedder refused the query: {exc}", slug=ProblemType.EMBEDDER_REJECTED) from exc
    return MemorySearchResult(
        items=[
            MemoryHitPublic(id=h.id, text=h.text, score=h.score, subject=h.subject, metadata=h.metadata) for h in hits
        ]
    )


@router.get("/v1/memories", response_model=Page[MemoryPublic])
async def list_memories(
    state: StateDep,
    principal: MemoryRead,
    subject: Subject,
    after: Annotated[Keyset | None, Depends(MEMORIES.after)],
    limit: Limit = 50,
) -> Page[MemoryPublic]:
    """The subject's memories, newest first."""
    found = await state.memory.store.list(principal.tenant_id, subject, limit=limit + 1, before=after)
    rows, next_cursor = MEMORIES.page(found, limit)
    return Page(items=[_public(r) for r in rows], next_cursor=next_cursor)


@router.get("/v1/memories/{memory_id}", response_model=MemoryPublic)
async def get_memory(memory_id: str, state: StateDep, principal: MemoryRead) -> MemoryPublic:
    """One memory."""
    row = await state.memory.store.get(principal.tenant_id, memory_id)
    if row is None:
        raise ProblemError(404, f"memory {memory_id} not found", slug=ProblemType.NOT_FOUND)
    return _public(row)


@router.delete("/v1/memories/{memory_id}", status_code=204, response_class=Response)
async def delete_memory(
    memory_id: str,
    state: StateDep,
    session: SessionDep,
    principal: MemoryWrite,
) -> Response:
    """Delete one memory."""
    if not await state.memory.store.delete(principal.tenant_id, memory_id):
        raise ProblemError(404, f"memory {memory_id} not found", slug=ProblemType.NOT_FOUND)
    audit(session, principal, action="memory.deleted", target_type="memory", target_id=memory_id)
    await session.commit()
    return Response(status_code=204)


@router.delete("/v1/memories", response_model=ErasureResult)
async def erase_memories(
    subject: Subject,
    state: StateDep,
    session: SessionDep,
    principal: MemoryErase,
) -> ErasureResult:
    """Erase everything stored about ``subject``: memories, threads, compactions, run contents, cached context."""
    counts = asdict(await erase_subject(state.engine, state.redis, principal.tenant_id, subject))
    audit(
        session,
        principal,
        action="memory.subject_erased",
        target_type="subject",
        target_id=subject_ref(subject),
        data=counts,
    )
    await session.commit()
    return ErasureResult(subject=subject, deleted=counts)


@router.get("/v1/threads/{thread_id}/compactions", response_model=Page[CompactionPublic])
async def thread_compactions(
    thread_id: str,
    state: StateDep,
    principal: RunsRead,
    after: Annotated[int | None, Depends(COMPACTIONS.after)],
    limit: Limit = 50,
) -> Page[CompactionPublic]:
    """Where the thread was compacted to fit its agent's context budget, with the summaries used, oldest first."""
    if not await ThreadStore(state.engine).rows(principal.tenant_id, thread_id, limit=1):
        raise ProblemError(404, f"thread {thread_id} not found", slug=ProblemType.NOT_FOUND)
    found = await ThreadContext(state.engine).compactions(
        principal.tenant_id, thread_id, limit=limit + 1, after_seq=after
    )
    rows, next_cursor = COMPACTIONS.page(found, limit)
    return Page(items=[CompactionPublic.model_validate(r) for r in rows], next_cursor=next_cursor)
