"""The read projection of runs, written by workers; every write is idempotent."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, func, literal, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.db.engine import statement
from core.db.models import Agent, AgentVersion, Run, RunStep, StepEffect, ThreadMessage, utcnow
from core.ids import run_workflow_id
from core.threads import ALREADY, APPEND, Append

_run = Run.__table__  # type: ignore[attr-defined]
_step = RunStep.__table__  # type: ignore[attr-defined]
_version = AgentVersion.__table__  # type: ignore[attr-defined]
_effect = StepEffect.__table__  # type: ignore[attr-defined]
_agent = Agent.__table__  # type: ignore[attr-defined]
_message = ThreadMessage.__table__  # type: ignore[attr-defined]

OPEN_STEP_STATUSES = ("running", "waiting")
"""A step that has not ended (``waiting``: an approval waiting for its decision)."""
OPEN_RUN_STATUSES = ("queued", "running", "waiting_approval")
"""A run the projection shows as not final."""


@dataclass
class StepRecord:
    """A step's state as written to ``run_step``."""

    step_id: str
    seq: int
    kind: str
    name: str
    status: str
    attempts: int = 1
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    started_at: datetime | None = None
    ended_at: datetime | None = None


_STEP_COLUMNS = tuple(f.name for f in fields(StepRecord))
_step_insert = insert(_step)
UPSERT_STEP = _step_insert.on_conflict_do_update(
    index_elements=["run_id", "step_id"],
    set_={name: _step_insert.excluded[name] for name in _STEP_COLUMNS if name not in ("step_id", "started_at")},
)
"""Built once: statement construction (``excluded`` aliasing) is costly on the hot path."""
INSERT_EFFECT = insert(_effect).on_conflict_do_nothing(index_elements=["key"])
SELECT_EFFECT = select(_effect.c.result).where(_effect.c.key == bindparam("key"))

_STEP_BOUND = (*_STEP_COLUMNS, "tenant_id", "run_id")
_step_values = insert(_step).values({name: bindparam(f"s_{name}", type_=_step.c[name].type) for name in _STEP_BOUND})
_STEP_WRITE = _step_values.on_conflict_do_update(
    index_elements=["run_id", "step_id"],
    set_={name: _step_values.excluded[name] for name in _STEP_COLUMNS if name not in ("step_id", "started_at")},
).returning(_step.c.step_id)
_EFFECT_WRITE = (
    insert(_effect)
    .values(
        key=bindparam("e_key"),
        tenant_id=bindparam("e_tenant_id"),
        result=bindparam("e_result", type_=_effect.c.result.type),
    )
    .on_conflict_do_nothing(index_elements=["key"])
    .returning(_effect.c.key)
)
_EFFECT_READ = select(_effect.c.result).where(_effect.c.key == bindparam("e_key"))


def _appending(query: Select[Any], message: bool) -> Select[Any]:
    """``query`` with ``APPEND`` as a CTE and its outcome as columns ``appended`` and ``already``, if ``message``."""
    if not message:
        return query
    appended = APPEND.cte("appended")
    return query.add_columns(
        select(appended.c.id).exists().label("appended"), ALREADY.exists().label("already")
    ).add_cte(appended)


async def _execute_appending(conn: AsyncConnection, query: Select[Any], params: dict[str, Any], message: bool) -> Any:
    """The one row of ``query`` (see ``_appending``), run again while a concurrent append took the seq."""
    for _ in range(50):
        row = (await conn.execute(query, params)).one()
        if not message or row.appended or row.already:
            return row
    raise RuntimeError(f"could not append to thread {params['p_thread_id']}")


_RUN_FINISH = (
    update(_run)
    .where(_run.c.id == bindparam("r_id"), _run.c.tenant_id == bindparam("r_tenant_id"))
    .values(
        status=bindparam("r_status"),
        output=bindparam("r_output"),
        error=bindparam("r_error", type_=_run.c.error.type),
        input_tokens=bindparam("r_input_tokens"),
        output_tokens=bindparam("r_output_tokens"),
        cost_usd=bindparam("r_cost_usd"),
        updated_at=bindparam("r_updated_at"),
    )
    .returning(_run.c.created_at)
    .cte("run_finished")
)


@cache
def _finish(message: bool) -> Select[Any]:
    """One statement: the run's final status, output and usage, and the answer appended (once) if ``message``."""
    query = select(select(_RUN_FINISH.c.created_at).scalar_subquery().label("created_at")).add_cte(_RUN_FINISH)
    return _appending(query, message)


_RUN_BEGIN = (
    update(_run)
    .where(_run.c.id == bindparam("b_run_id"), _run.c.tenant_id == bindparam("b_tenant_id"))
    .values(status="running", workflow_run_id=bindparam("b_workflow_run_id"), updated_at=bindparam("b_updated_at"))
    .returning(_run.c.input, _run.c.thread_id, _run.c.subject)
    .cte("run_begun")
)
_tail = _message.alias("tail")
_INPUT_APPEND = (
    insert(_message)
    .from_select(
        ["tenant_id", "thread_id", "run_id", "message_key", "role", "content", "tool_calls", "kind", "subject", "seq"],
        select(
            bindparam("b_tenant_id"),
            _RUN_BEGIN.c.thread_id,
            bindparam("b_run_id"),
            bindparam("p_message_key"),
            literal("user"),
            _RUN_BEGIN.c.input,
            literal([], type_=_message.c.tool_calls.type),
            literal("message"),
            _RUN_BEGIN.c.subject,
            select(func.coalesce(func.max(_tail.c.seq), 0) + 1)
            .where(_tail.c.tenant_id == bindparam("b_tenant_id"), _tail.c.thread_id == _RUN_BEGIN.c.thread_id)
            .scalar_subquery(),
        ),
    )
    .on_conflict_do_nothing()
    .returning(_message.c.id)
    .cte("appended")
)


@cache
def _begin(with_config: bool) -> Select[Any]:
    """One statement: mark the run running, append its input to its thread (once), read its agent version."""
    columns: list[Any] = [
        _RUN_BEGIN.c.input,
        _RUN_BEGIN.c.thread_id,
        _RUN_BEGIN.c.subject,
        select(_INPUT_APPEND.c.id).exists().label("appended"),
        ALREADY.exists().label("already"),
    ]
    if with_config:
        version = select(_version.c.config).where(
            _version.c.tenant_id == bindparam("b_tenant_id"),
            _version.c.agent_id == bindparam("b_agent_id"),
            _version.c.version == bindparam("b_version"),
        )
        columns.append(version.scalar_subquery().label("config"))
    return select(*columns).select_from(_RUN_BEGIN).add_cte(_INPUT_APPEND)


@cache
def _step_write(message: bool, effect: bool, read_effect: bool) -> Select[Any]:
    """One statement: upsert a step, and append a thread message, record an effect, read an effect.

    Built once per combination. Its data-modifying CTEs commit together (one statement), and
    like ``APPEND`` nothing in it raises on a conflict: ``appended`` false and ``already`` false
    mean a concurrent writer took the thread's next seq, and the statement is run again.
    """
    ctes = [_STEP_WRITE.cte("step_written")]
    columns: list[Any] = [literal(True).label("written")]
    if effect:
        ctes.append(_EFFECT_WRITE.cte("effect_written"))
    if read_effect:
        columns += [_EFFECT_READ.exists().label("seen"), _EFFECT_READ.scalar_subquery().label("stored")]
    return _appending(select(*columns).add_cte(*ctes), message)


@dataclass(frozen=True)
class Effect:
    """The result of side effect ``key`` (first write wins)."""

    key: str
    result: Any


@dataclass
class LoadedRun:
    """What a worker needs to drive a run: its input and the agent version config."""

    input: str
    config: dict[str, Any]
    thread_id: str = ""
    subject: str | None = None


@dataclass(frozen=True)
class RunIdentity:
    """Who a run is about and which agent version runs it."""

    subject: str | None
    agent_id: str
    agent_version: int


@dataclass(frozen=True)
class StaleRun:
    """A run the projection shows open that was not updated for a while."""

    tenant_id: str
    run_id: str
    workflow_id: str
    updated_at: datetime
    pipeline: bool = False
    """A pipeline run (``pipeline_run``), not an agent run."""


def stale_query(
    table: Any,
    statuses: Iterable[str],
    *,
    before: datetime,
    after: tuple[datetime, str] | None = None,
    tenant_id: str | None = None,
) -> Select[Any]:
    """Runs of ``table`` in ``statuses`` not updated since ``before``, oldest first, after the cursor ``after``."""
    query = select(table.c.tenant_id, table.c.id, table.c.workflow_id, table.c.updated_at).where(
        table.c.status.in_(list(statuses)), table.c.updated_at < before
    )
    if tenant_id is not None:
        query = query.where(table.c.tenant_id == tenant_id)
    if after is not None:
        query = query.where(tuple_(table.c.updated_at, table.c.id) > tuple_(*after))
    return query.order_by(table.c.updated_at, table.c.id)


@dataclass
class ClosedRun:
    """What closing an open run changed: the steps it ended, and the run's output, usage and latest turn."""

    steps: list[StepRecord]
    output: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    turn: int


def open_step_end(run_status: str, error: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """Final status and error of a step still open when its run ends with ``run_status``.

    A failed run fails its open steps with the run's error; any other end cancels them.
    """
    if run_status == "failed":
        return "failed", error or {"message": "the run failed"}
    if run_status == "cancelled":
        return "cancelled", {"message": "the run was cancelled"}
    return "cancelled", {"message": "the run ended before the step did"}


class RunProjection:
    """Writes run and step state for ``GET /v1/runs`` to read."""

    def __init__(self, engine: AsyncEngine):
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        """The engine the projection writes with."""
        return self._engine

    async def begin_run(
        self,
        tenant_id: str,
        run_id: str,
        agent_id: str,
        version: int,
        workflow_run_id: str,
        *,
        input_key: str,
        with_config: bool = True,
    ) -> LoadedRun | None:
        """Mark the run running, append its input to its thread (once per ``input_key``), load its agent config.

        One statement. ``None`` if the run (or, ``with_config``, its agent version) is absent.
        Without ``with_config`` (the caller has the immutable version cached) ``config`` is empty.
        """
        params = {
            "b_run_id": run_id,
            "b_tenant_id": tenant_id,
            "b_agent_id": agent_id,
            "b_version": version,
            "b_workflow_run_id": workflow_run_id,
            "b_updated_at": utcnow(),
            "p_message_key": input_key,
        }
        async with statement(self._engine) as conn:
            for _ in range(50):
                row = (await conn.execute(_begin(with_config), params)).first()
                if row is None or row.appended or row.already:
                    break
            else:
                raise RuntimeError(f"could not append the input of run {run_id} to its thread")
        if row is None or (with_config and row.config is None):
            return None
        config = row.config if with_config else {}
        return LoadedRun(input=row.input, config=config, thread_id=row.thread_id, subject=row.subject)

    async def identity(self, tenant_id: str, run_id: str) -> RunIdentity | None:
        """Subject and agent version of a run (they never change), or ``None``."""
        async with statement(self._engine) as conn:
            row = (
                await conn.execute(
                    select(_run.c.subject, _run.c.agent_id, _run.c.agent_version).where(
                        _run.c.tenant_id == tenant_id, _run.c.id == run_id
                    )
                )
            ).first()
        return RunIdentity(row.subject, row.agent_id, row.agent_version) if row is not None else None

    async def agent_config(self, tenant_id: str, agent_id: str, version: int) -> dict[str, Any] | None:
        """The configuration of one agent version."""
        async with statement(self._engine) as conn:
            config: dict[str, Any] | None = (
                await conn.execute(
                    select(_version.c.config).where(
                        _version.c.tenant_id == tenant_id,
                        _version.c.agent_id == agent_id,
                        _version.c.version == version,
                    )
                )
            ).scalar_one_or_none()
        return config

    async def create_child_run(
        self, tenant_id: str, parent_run_id: str, agent_id: str, text: str, run_id: str
    ) -> tuple[str, int, str] | None:
        """Insert (once) a child run of ``agent_id``; ``(run id, agent version, thread id)`` or ``None``."""
        async with self._engine.begin() as conn:
            version = (
                await conn.execute(
                    select(_agent.c.version).where(
                        _agent.c.id == agent_id, _agent.c.tenant_id == tenant_id, _agent.c.deleted_at.is_(None)
                    )
                )
            ).scalar_one_or_none()
            if version is None:
                return None
            statement = insert(_run).values(
                id=run_id,
                tenant_id=tenant_id,
                agent_id=agent_id,
                agent_version=version,
                thread_id=f"thr_{run_id.removeprefix('run_')}",
                status="queued",
                input=text,
                metadata={},
                workflow_id=run_workflow_id(tenant_id, run_id),
                parent_run_id=parent_run_id,
            )
            await conn.execute(statement.on_conflict_do_nothing(index_elements=["id"]))
            row = (await conn.execute(select(_run.c.agent_version, _run.c.thread_id).where(_run.c.id == run_id))).one()
        return run_id, row.agent_version, row.thread_id

    async def set_status(
        self, tenant_id: str, run_id: str, status: str, *, conn: AsyncConnection | None = None
    ) -> None:
        """Change a run's status (running, waiting_approval, …); a cancelled run stays cancelled."""
        async with statement(self._engine, conn) as tx:
            await tx.execute(
                update(_run)
                .where(_run.c.id == run_id, _run.c.tenant_id == tenant_id, _run.c.status != "cancelled")
                .values(status=status, updated_at=utcnow())
            )

    async def resume_after_approval(self, tenant_id: str, run_id: str) -> None:
        """Mark the run running again unless another of its approvals still waits (parallel tool calls)."""
        waiting = (
            select(_step.c.step_id)
            .where(_step.c.run_id == run_id, _step.c.kind == "approval", _step.c.status == "waiting")
            .exists()
        )
        async with statement(self._engine) as conn:
            await conn.execute(
                update(_run)
                .where(_run.c.id == run_id, _run.c.tenant_id == tenant_id, _run.c.status != "cancelled", ~waiting)
                .values(status="running", updated_at=utcnow())
            )

    async def record_step(
        self, tenant_id: str, run_id: str, step: StepRecord, *, conn: AsyncConnection | None = None
    ) -> None:
        """Insert or update one step (keyed by run and step id), in ``conn``'s transaction if given."""
        params = {name: getattr(step, name) for name in _STEP_COLUMNS} | {"tenant_id": tenant_id, "run_id": run_id}
        async with statement(self._engine, conn) as tx:
            await tx.execute(UPSERT_STEP, params)

    async def write_step(
        self,
        tenant_id: str,
        run_id: str,
        step: StepRecord,
        *,
        message: Append | None = None,
        effect: Effect | None = None,
        read_effect: str | None = None,
    ) -> tuple[bool, Any]:
        """Upsert ``step``, append ``message`` (once), record ``effect``, in one statement (one round trip).

        Returns whether side effect ``read_effect`` was already applied, and its stored result,
        as they stood before the statement (``(False, None)`` without ``read_effect``).
        """
        params = {f"s_{name}": getattr(step, name) for name in _STEP_COLUMNS}
        params |= {"s_tenant_id": tenant_id, "s_run_id": run_id}
        if message is not None:
            params |= message.params()
        if effect is not None:
            params |= {"e_key": effect.key, "e_tenant_id": tenant_id, "e_result": effect.result}
        if read_effect is not None:
            params["e_key"] = read_effect
        query = _step_write(message is not None, effect is not None, read_effect is not None)
        async with statement(self._engine) as conn:
            row = await _execute_appending(conn, query, params, message is not None)
        return (bool(row.seen), row.stored) if read_effect is not None else (False, None)

    async def finish(
        self,
        tenant_id: str,
        run_id: str,
        *,
        status: str,
        output: str | None,
        error: dict[str, Any] | None,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float,
        message: Append | None = None,
        conn: AsyncConnection | None = None,
    ) -> datetime | None:
        """Write the run's final status, output or error, and usage; return when the run was created.

        With ``message`` (the answer) appended once to the thread in the same statement.
        """
        params: dict[str, Any] = {
            "r_id": run_id,
            "r_tenant_id": tenant_id,
            "r_status": status,
            "r_output": output,
            "r_error": error,
            "r_input_tokens": input_tokens,
            "r_output_tokens": output_tokens,
            "r_cost_usd": cost_usd,
            "r_updated_at": utcnow(),
        }
        if message is not None:
            params |= message.params()
        async with statement(self._engine, conn) as tx:
            row = await _execute_appending(tx, _finish(message is not None), params, message is not None)
        created: datetime | None = row.created_at
        return created

    async def end_open_steps(
        self,
        tenant_id: str,
        run_id: str,
        *,
        run_status: str,
        error: dict[str, Any] | None,
        conn: AsyncConnection | None = None,
    ) -> list[StepRecord]:
        """End the run's steps still running or waiting (see ``open_step_end``); the steps ended, in order."""
        status, step_error = open_step_end(run_status, error)
        async with statement(self._engine, conn) as tx:
            rows = (
                await tx.execute(
                    update(_step)
                    .where(
                        _step.c.tenant_id == tenant_id,
                        _step.c.run_id == run_id,
                        _step.c.status.in_(OPEN_STEP_STATUSES),
                    )
                    .values(status=status, error=step_error, ended_at=utcnow())
                    .returning(*(_step.c[name] for name in _STEP_COLUMNS))
                )
            ).all()
        return sorted((StepRecord(**row._mapping) for row in rows), key=lambda step: step.seq)

    async def stale_runs(
        self,
        *,
        before: datetime,
        limit: int,
        after: tuple[datetime, str] | None = None,
        tenant_id: str | None = None,
    ) -> list[StaleRun]:
        """Open runs not updated since ``before``, oldest first, after the ``(updated_at, id)`` cursor ``after``."""
        query = stale_query(_run, OPEN_RUN_STATUSES, before=before, after=after, tenant_id=tenant_id)
        async with statement(self._engine) as conn:
            rows = (await conn.execute(query.limit(limit))).all()
        return [StaleRun(row.tenant_id, row.id, row.workflow_id, row.updated_at) for row in rows]

    async def close_open_run(
        self,
        tenant_id: str,
        run_id: str,
        *,
        status: str,
        error: dict[str, Any] | None,
        output: str | None,
        conn: AsyncConnection,
    ) -> ClosedRun | None:
        """Write the final ``status`` of a run still shown open and end its open steps, in ``conn``'s transaction.

        ``output`` replaces the stored one when given. ``None`` when the run is no longer
        open (its workflow wrote its own outcome meanwhile): nothing is changed then.
        """
        values: dict[str, Any] = {"status": status, "error": error, "updated_at": utcnow()}
        if output is not None:
            values["output"] = output
        row = (
            await conn.execute(
                update(_run)
                .where(_run.c.id == run_id, _run.c.tenant_id == tenant_id, _run.c.status.in_(OPEN_RUN_STATUSES))
                .values(**values)
                .returning(_run.c.thread_id, _run.c.output, _run.c.input_tokens, _run.c.output_tokens, _run.c.cost_usd)
            )
        ).first()
        if row is None:
            return None
        steps = await self.end_open_steps(tenant_id, run_id, run_status=status, error=error, conn=conn)
        # Each finished turn appended one answer keyed ``{workflow id}:answer:{turn}``: the open turn is the next.
        answers = (
            await conn.execute(
                select(func.count())
                .select_from(_message)
                .where(
                    _message.c.tenant_id == tenant_id,
                    _message.c.thread_id == row.thread_id,
                    _message.c.run_id == run_id,
                    _message.c.role == "assistant",
                    _message.c.message_key.like("%:answer:%"),
                )
            )
        ).scalar_one()
        return ClosedRun(steps, row.output, row.input_tokens, row.output_tokens, row.cost_usd, answers + 1)

    async def recorded_effect(self, key: str, *, conn: AsyncConnection | None = None) -> tuple[bool, Any]:
        """Whether the side effect ``key`` was already applied, and its stored result."""
        async with statement(self._engine, conn) as tx:
            row = (await tx.execute(SELECT_EFFECT, {"key": key})).first()
        return (row is not None, row.result if row else None)

    async def record_effect(
        self, tenant_id: str, key: str, result: Any, *, conn: AsyncConnection | None = None
    ) -> None:
        """Store the result of side effect ``key`` (first write wins)."""
        async with statement(self._engine, conn) as tx:
            await tx.execute(INSERT_EFFECT, {"key": key, "tenant_id": tenant_id, "result": result})
