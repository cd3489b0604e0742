"""Conversation threads in PostgreSQL: ordered, idempotent appends and prompt loading."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.contracts.llm import ChatMessage, ToolCall
from core.db.engine import statement
from core.db.models import ThreadMessage

_message = ThreadMessage.__table__  # type: ignore[attr-defined]

_APPENDED: tuple[str, ...] = (
    "tenant_id",
    "thread_id",
    "run_id",
    "message_key",
    "role",
    "content",
    "tool_calls",
    "tool_call_id",
    "name",
    "kind",
    "subject",
)
APPEND = (
    insert(_message)
    .values(
        seq=select(func.coalesce(func.max(_message.c.seq), 0) + 1)
        .where(_message.c.tenant_id == bindparam("p_tenant_id"), _message.c.thread_id == bindparam("p_thread_id"))
        .scalar_subquery(),
        **{name: bindparam(f"p_{name}", type_=_message.c[name].type) for name in _APPENDED},
    )
    .on_conflict_do_nothing()
    .returning(_message.c.id)
)
"""Append at the end of the thread; built once (statement construction is costly on the hot path).

Any conflict is skipped rather than raised, so a shared transaction survives it: on the key, the
message is already there; on the seq, a concurrent writer took it and the next try sees the new end."""
ALREADY = select(_message.c.id).where(_message.c.message_key == bindparam("p_message_key"))


@dataclass(frozen=True)
class Append:
    """A message to append once per ``key`` at the end of a thread (``APPEND``'s parameters)."""

    tenant_id: str
    thread_id: str
    run_id: str | None
    key: str
    message: ChatMessage
    subject: str | None = None
    kind: str = "message"

    def params(self) -> dict[str, Any]:
        """The bind parameters of ``APPEND`` and ``ALREADY``."""
        message = self.message
        return {
            "p_tenant_id": self.tenant_id,
            "p_thread_id": self.thread_id,
            "p_run_id": self.run_id,
            "p_message_key": self.key,
            "p_role": message.role,
            "p_content": message.content,
            "p_tool_calls": [asdict(c) for c in message.tool_calls],
            "p_tool_call_id": message.tool_call_id,
            "p_name": message.name,
            "p_kind": self.kind,
            "p_subject": self.subject,
        }


def cache_key(tenant_id: str, thread_id: str) -> str:
    """Redis key of a thread's cached context."""
    return f"aimpact:ctx:{tenant_id}:{thread_id}"


def version_key(tenant_id: str, thread_id: str) -> str:
    """Redis key of a thread's version (bumped on every write)."""
    return f"aimpact:ctxv:{tenant_id}:{thread_id}"


async def bump_version(redis: Redis, tenant_id: str, thread_id: str) -> None:
    """Invalidate the thread's cached context (after a committed write)."""
    key = version_key(tenant_id, thread_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.incr(key)
        pipe.expire(key, 86_400)
        await pipe.execute()


def to_chat(row: Any) -> ChatMessage:
    """A stored message as a provider-neutral ``ChatMessage``."""
    return ChatMessage(
        role=row.role,
        content=row.content,
        tool_calls=[ToolCall(**c) for c in row.tool_calls or []],
        tool_call_id=row.tool_call_id,
        name=row.name,
    )


class ThreadStore:
    """Append to and read threads; every append is keyed, so retries add nothing."""

    def __init__(self, engine: AsyncEngine, redis: Redis | None = None):
        self._engine = engine
        self._redis = redis

    async def append(
        self,
        *,
        tenant_id: str,
        thread_id: str,
        run_id: str | None,
        key: str,
        message: ChatMessage,
        subject: str | None = None,
        kind: str = "message",
        conn: AsyncConnection | None = None,
    ) -> None:
        """Append ``message`` once per ``key`` at the end of the thread.

        With ``conn`` the append joins the caller's transaction, and the caller calls
        ``invalidate`` after committing it.
        """
        params = Append(tenant_id, thread_id, run_id, key, message, subject, kind).params()
        async with statement(self._engine, conn) as tx:
            for _ in range(50):
                if (await tx.execute(APPEND, params)).first() is not None or (
                    await tx.execute(ALREADY, params)
                ).first():
                    break
            else:
                raise RuntimeError(f"could not append to thread {thread_id}")
        if conn is None:
            await self.invalidate(tenant_id, thread_id)

    async def replace_reply(self, tenant_id: str, thread_id: str, run_id: str, text: str) -> None:
        """Make ``text`` the run's last answer in the thread (an interrupted voice reply: what was heard).

        The run's last assistant message without tool calls takes ``text``; a run that had not
        answered yet gets it appended (once), unless ``text`` is empty.
        """
        answer = (
            select(_message.c.id)
            .where(
                _message.c.tenant_id == tenant_id,
                _message.c.thread_id == thread_id,
                _message.c.run_id == run_id,
                _message.c.role == "assistant",
                func.jsonb_array_length(_message.c.tool_calls) == 0,
            )
            .order_by(_message.c.seq.desc())
            .limit(1)
            .scalar_subquery()
        )
        async with statement(self._engine) as conn:
            changed = (
                await conn.execute(update(_message).where(_message.c.id == answer).values(content=text))
            ).rowcount
        if not changed and text:
            message = ChatMessage(role="assistant", content=text)
            await self.append(
                tenant_id=tenant_id, thread_id=thread_id, run_id=run_id, key=f"heard:{run_id}", message=message
            )
        await self.invalidate(tenant_id, thread_id)

    async def invalidate(self, tenant_id: str, thread_id: str) -> None:
        """Drop the thread's cached context (after a committed write)."""
        if self._redis is not None:
            await bump_version(self._redis, tenant_id, thread_id)

    async def load(self, tenant_id: str, thread_id: str) -> list[ChatMessage]:
        """The thread's messages in order."""
        async with statement(self._engine) as conn:
            rows = (
                await conn.execute(
                    select(_message)
                    .where(_message.c.tenant_id == tenant_id, _message.c.thread_id == thread_id)
                    .order_by(_message.c.seq)
                )
            ).all()
        return [to_chat(r) for r in rows]

    async def run_messages(self, tenant_id: str, thread_id: str, run_id: str, *, limit: int = 200) -> list[ChatMessage]:
        """The latest ``limit`` messages a run added to the thread, in order."""
        async with statement(self._engine) as conn:
            rows = (
                await conn.execute(
                    select(_message)
                    .where(
                        _message.c.tenant_id == tenant_id,
                        _message.c.thread_id == thread_id,
                        _message.c.run_id == run_id,
                    )
                    .order_by(_message.c.seq.desc())
                    .limit(limit)
                )
            ).all()
        return [to_chat(r) for r in reversed(rows)]

    async def rows(self, tenant_id: str, thread_id: str, *, limit: int, after_seq: int = 0) -> Sequence[Any]:
        """Raw rows of a thread for the API, in order."""
        async with statement(self._engine) as conn:
            return (
                await conn.execute(
                    select(_message)
                    .where(
                        _message.c.tenant_id == tenant_id,
                        _message.c.thread_id == thread_id,
                        _message.c.seq > after_seq,
                    )
                    .order_by(_message.c.seq)
                    .limit(limit)
                )
            ).all()
