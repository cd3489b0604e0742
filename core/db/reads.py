"""Hot reads at driver speed: runs, steps and thread messages through a psycopg pool, outside any unit of work.

An ORM session costs several times the query itself on a small read (greenlet hops,
statement cache keys, identity map, an implicit transaction and its rollback). The reads the
API serves most — a run with its steps, a page of runs, a thread's messages — go through
:class:`ReadPool` instead: plain SQL over the same tables, autocommit (one round trip per
statement, no ``BEGIN``/``ROLLBACK``), statements prepared server-side after a few uses, rows
straight into slotted dataclasses. SQLModel still owns the schema and the migrations, and every
write; the readers here are tenant-scoped like the repositories in :mod:`core.db.repos`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, LiteralString

from psycopg import AsyncConnection, sql
from psycopg.rows import args_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import make_url

Keyset = tuple[datetime, str]


def libpq_url(database_url: str) -> str:
    """The libpq form of a SQLAlchemy ``postgresql+psycopg://`` URL (the driver name dropped)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class ReadPool:
    """A small psycopg pool of autocommit connections for the hot reads of one process."""

    def __init__(self, database_url: str, *, max_size: int = 10, timeout_s: float = 10.0):
        self._pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            libpq_url(database_url),
            min_size=min(2, max_size),
            max_size=max_size,
            timeout=timeout_s,
            open=False,
            kwargs={"autocommit": True},
            name="reads",
        )

    async def open(self) -> None:
        """Connect (waits for the first connections, so a wrong URL fails the start)."""
        await self._pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        """Close every connection."""
        await self._pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A pooled connection; each statement on it commits alone."""
        async with self._pool.connection() as conn:
            yield conn


def select_columns(row_type: type, template: LiteralString, renamed: dict[str, str] | None = None) -> bytes:
    """``template`` with ``{}`` replaced by the columns of ``row_type``'s fields in order, rendered once.

    ``renamed`` maps a field to its column where the names differ.
    """
    names = [(renamed or {}).get(f.name, f.name) for f in fields(row_type)]
    return sql.SQL(template).format(sql.SQL(", ").join(map(sql.Identifier, names))).as_bytes()


@dataclass(slots=True)
class RunRow:
    """A run as the API shows it (the projection's columns, without the idempotency fingerprint)."""

    id: str
    tenant_id: str
    agent_id: str
    agent_version: int
    thread_id: str
    status: str
    input: str
    output: str | None
    error: dict[str, Any] | None
    subject: str | None
    metadata_: dict[str, Any]
    input_tokens: int
    output_tokens: int
    cost_usd: float
    workflow_id: str
    workflow_run_id: str | None
    created_at: datetime
    updated_at: datetime
    experiment_id: str | None
    experiment_arm: str | None


@dataclass(slots=True)
class StepRow:
    """A step of a run."""

    run_id: str
    step_id: str
    kind: str
    name: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    attempts: int
    input: Any
    output: Any
    error: dict[str, Any] | None
    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass(slots=True, frozen=True)
class AgentRef:
    """What starting a run needs of an agent: its current version, whether it is archived, its running experiment."""

    id: str
    version: int
    archived: bool
    experiment: RunningExperiment | None = None


@dataclass(slots=True, frozen=True)
class RunningExperiment:
    """The running online experiment of an agent, as assigning a run's version needs it."""

    id: str
    control_version: int
    candidate_version: int


@dataclass(slots=True)
class MessageRow:
    """A message of a thread."""

    seq: int
    role: str
    content: str
    tool_calls: list[dict[str, Any]]
    tool_call_id: str | None
    name: str | None
    run_id: str | None
    created_at: datetime


RUN_BY_ID = select_columns(RunRow, "SELECT {} FROM run WHERE id = %s AND tenant_id = %s", {"metadata_": "metadata"})
RUN_STATUS = b"SELECT status, workflow_id FROM run WHERE id = %s AND tenant_id = %s"
STEPS_OF_RUN = select_columns(StepRow, "SELECT {} FROM run_step WHERE run_id = %s AND tenant_id = %s ORDER BY seq")
STEPS_OF_RUNS = select_columns(
    StepRow, "SELECT {} FROM run_step WHERE tenant_id = %s AND run_id = ANY(%s) ORDER BY run_id, seq"
)
MESSAGES = select_columns(
    MessageRow,
    "SELECT {} FROM thread_message WHERE tenant_id = %s AND thread_id = %s AND seq > %s ORDER BY seq LIMIT %s",
)


@dataclass(frozen=True, slots=True)
class RunFilter:
    """What a page of runs is narrowed to (every field optional)."""

    agent_id: str | None = None
    status: str | None = None
    since: datetime | None = None
    """Created at or after this moment."""
    until: datetime | None = None
    """Created before this moment."""
    text: str | None = None
    """Found in the input or the output (case-insensitive substring)."""

    def params(self) -> dict[str, Any]:
        """The query parameters of the filter (``text`` as an escaped ``ILIKE`` pattern)."""
        pattern = None
        if self.text is not None:
            pattern = "%" + self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return {
            "agent": self.agent_id,
            "status": self.status,
            "since": self.since,
            "until": self.until,
            "text": pattern,
        }

    def shape(self) -> tuple[bool, ...]:
        """Which filters are set (one query text per shape, so each is prepared once)."""
        return tuple(value is not None for value in (self.agent_id, self.status, self.since, self.until, self.text))


_RUN_FILTERS: tuple[LiteralString, ...] = (
    " AND agent_id = %(agent)s",
    " AND status = %(status)s",
    " AND created_at >= %(since)s",
    " AND created_at < %(until)s",
    " AND (input ILIKE %(text)s OR output ILIKE %(text)s)",
)
_RUN_LISTS: dict[tuple[bool, ...], bytes] = {}


def _runs_query(shape: tuple[bool, ...], *, after: bool) -> bytes:
    """Newest first by ``(created_at, id)``; one fixed text per filter shape, rendered once."""
    key = (*shape, after)
    if key not in _RUN_LISTS:
        query: LiteralString = "SELECT {} FROM run WHERE tenant_id = %(tenant)s"
        for used, clause in zip(shape, _RUN_FILTERS, strict=True):
            if used:
                query += clause
        if after:
            query += " AND (created_at, id) < (%(moment)s, %(last_id)s)"
        query += " ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
        _RUN_LISTS[key] = select_columns(RunRow, query, {"metadata_": "metadata"})
    return _RUN_LISTS[key]


AGENT_REF = (
    b"SELECT a.id, a.version, a.deleted_at IS NOT NULL, e.id, e.control_version, e.candidate_version"
    b" FROM agent a LEFT JOIN experiment e"
    b" ON e.agent_id = a.id AND e.tenant_id = a.tenant_id AND e.status = 'running'"
    b" WHERE a.id = %s AND a.tenant_id = %s"
)


def _agent_ref(
    agent_id: str,
    version: int,
    archived: bool,
    experiment_id: str | None,
    control_version: int | None,
    candidate_version: int | None,
) -> AgentRef:
    experiment = None
    if experiment_id is not None and control_version is not None and candidate_version is not None:
        experiment = RunningExperiment(experiment_id, control_version, candidate_version)
    return AgentRef(agent_id, version, archived, experiment)


async def agent_ref(pool: ReadPool, tenant_id: str, agent_id: str) -> AgentRef | None:
    """The tenant's agent ``agent_id`` (archived or not) with its running experiment, as a run start needs it."""
    async with pool.connection() as conn:
        cursor = conn.cursor(row_factory=args_row(_agent_ref))
        return await (await cursor.execute(AGENT_REF, (agent_id, tenant_id))).fetchone()


class TenantReader:
    """A reader of one tenant's rows (a base class)."""

    def __init__(self, pool: ReadPool, tenant_id: str):
        if not tenant_id:
            raise ValueError("a tenant-scoped reader needs a tenant id")
        self._pool = pool
        self._tenant_id = tenant_id


class RunReads(TenantReader):
    """Reads of one tenant's runs."""

    async def get(self, run_id: str) -> tuple[RunRow, list[StepRow]] | None:
        """The run ``run_id`` of this tenant with its steps in order."""
        async with self._pool.connection() as conn:
            runs = conn.cursor(row_factory=args_row(RunRow))
            run = await (await runs.execute(RUN_BY_ID, (run_id, self._tenant_id))).fetchone()
            if run is None:
                return None
            steps = conn.cursor(row_factory=args_row(StepRow))
            return run, await (await steps.execute(STEPS_OF_RUN, (run_id, self._tenant_id))).fetchall()

    async def status(self, run_id: str) -> tuple[str, str] | None:
        """The status and workflow id of the run ``run_id`` of this tenant."""
        async with self._pool.connection() as conn:
            return await (await conn.execute(RUN_STATUS, (run_id, self._tenant_id))).fetchone()

    async def steps(self, run_id: str) -> list[StepRow]:
        """The steps of a run in order."""
        async with self._pool.connection() as conn:
            steps = conn.cursor(row_factory=args_row(StepRow))
            return await (await steps.execute(STEPS_OF_RUN, (run_id, self._tenant_id))).fetchall()

    async def list(
        self, *, limit: int, after: Keyset | None = None, where: RunFilter | None = None
    ) -> tuple[list[RunRow], dict[str, list[StepRow]]]:
        """At most ``limit`` runs matching ``where``, newest first after the keyset ``after``, and their steps."""
        where = where or RunFilter()
        params: dict[str, Any] = {"tenant": self._tenant_id, "limit": limit, **where.params()}
        if after is not None:
            params["moment"], params["last_id"] = after
        query = _runs_query(where.shape(), after=after is not None)
        async with self._pool.connection() as conn:
            runs = conn.cursor(row_factory=args_row(RunRow))
            found = await (await runs.execute(query, params)).fetchall()
            by_run: dict[str, list[StepRow]] = {run.id: [] for run in found}
            if found:
                steps = conn.cursor(row_factory=args_row(StepRow))
                for step in await (await steps.execute(STEPS_OF_RUNS, (self._tenant_id, list(by_run)))).fetchall():
                    by_run[step.run_id].append(step)
        return found, by_run


class ThreadReads(TenantReader):
    """Reads of one tenant's conversation threads."""

    async def messages(self, thread_id: str, *, limit: int, after_seq: int = 0) -> Sequence[MessageRow]:
        """At most ``limit`` messages of a thread after position ``after_seq``, in order."""
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=args_row(MessageRow))
            return await (await cursor.execute(MESSAGES, (self._tenant_id, thread_id, after_seq, limit))).fetchall()
