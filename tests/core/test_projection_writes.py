"""The one-statement writes of a run's steps: repeated (a retried activity), they write everything once."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.exceptions import ApplicationError

from activities.model_access import ModelAccess
from core import errors
from core.contracts.llm import ChatMessage
from core.db.models import RunStep, StepEffect, ThreadMessage
from core.db.projection import Effect, RunProjection, StepRecord
from core.llm.base import ProviderRegistry
from core.threads import Append
from tests.conftest import TenantCtx
from tests.support.runs import create_agent, insert_run

_message = ThreadMessage.__table__  # type: ignore[attr-defined]
_step = RunStep.__table__  # type: ignore[attr-defined]
_effect = StepEffect.__table__  # type: ignore[attr-defined]


async def _count(engine: AsyncEngine, query: object) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())  # type: ignore[call-overload]


async def test_a_retried_tool_step_writes_its_step_message_and_effect_once(
    engine: AsyncEngine, tenant: TenantCtx
) -> None:
    agent = await create_agent(tenant.http)
    run = await insert_run(engine, tenant.id, agent, "2 + 2")
    projection = RunProjection(engine)
    key = f"{run.workflow_id}:s2-0"
    step = StepRecord(step_id="s2-0", seq=2, kind="tool", name="calculator", status="running", input={"x": 1})
    call = Append(tenant.id, run.thread_id, run.id, f"{key}:assistant", ChatMessage(role="assistant", content="?"))

    before = [await projection.write_step(tenant.id, run.id, step, message=call, read_effect=key) for _ in range(2)]
    assert before == [(False, None), (False, None)]

    step.status, step.output = "completed", {"value": 4}
    answer = Append(tenant.id, run.thread_id, run.id, f"{key}:result", ChatMessage(role="tool", content="4"))
    for _ in range(2):  # the activity retried after its write committed
        await projection.write_step(tenant.id, run.id, step, message=answer, effect=Effect(key, {"content": "4"}))
    assert await projection.write_step(tenant.id, run.id, step, read_effect=key) == (True, {"content": "4"})

    messages = select(_message.c.seq, _message.c.role).where(_message.c.thread_id == run.thread_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(messages.order_by(_message.c.seq))).all()
        stored = (await conn.execute(select(_step.c.status, _step.c.output).where(_step.c.run_id == run.id))).all()
    assert [tuple(row) for row in rows] == [(1, "assistant"), (2, "tool")]
    assert [tuple(row) for row in stored] == [("completed", {"value": 4})]
    assert await _count(engine, select(func.count()).select_from(_effect).where(_effect.c.key == key)) == 1


async def test_a_retried_begin_and_finish_append_input_and_answer_once(engine: AsyncEngine, tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    run = await insert_run(engine, tenant.id, agent, "2 + 2")
    projection = RunProjection(engine)
    for with_config in (True, False, True):
        loaded = await projection.begin_run(
            tenant.id, run.id, agent["id"], 1, "wf-run", input_key=f"{run.workflow_id}:input", with_config=with_config
        )
        assert loaded is not None
        assert loaded.input == "2 + 2"
        assert (loaded.config != {}) is with_config
    answer = Append(tenant.id, run.thread_id, run.id, f"{run.workflow_id}:answer:1", ChatMessage(role="assistant"))
    for _ in range(2):
        created = await projection.finish(
            tenant.id,
            run.id,
            status="completed",
            output="4",
            error=None,
            input_tokens=1,
            output_tokens=2,
            cost_usd=0.0,
            message=answer,
        )
        assert created == run.created_at
    query = select(_message.c.seq, _message.c.role, _message.c.content).where(_message.c.thread_id == run.thread_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(query.order_by(_message.c.seq))).all()
    assert [tuple(row) for row in rows] == [(1, "user", "2 + 2"), (2, "assistant", "")]


async def test_begin_of_another_tenants_run_or_version_finds_nothing(
    engine: AsyncEngine, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    agent = await create_agent(tenant.http)
    run = await insert_run(engine, tenant.id, agent, "1 + 1")
    projection = RunProjection(engine)
    assert await projection.begin_run(other_tenant.id, run.id, agent["id"], 1, "w", input_key="k") is None
    assert await projection.begin_run(tenant.id, run.id, agent["id"], 7, "w", input_key=f"{run.workflow_id}:i") is None


async def test_a_cached_agent_version_is_never_served_to_another_tenant(
    engine: AsyncEngine, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    agent = await create_agent(tenant.http)
    models = ModelAccess(RunProjection(engine), ProviderRegistry([]))
    config = await models.config(tenant.id, agent["id"], 1)
    assert models.cached_config(tenant.id, agent["id"], 1) is config
    assert models.cached_config(other_tenant.id, agent["id"], 1) is None
    with pytest.raises(ApplicationError) as refused:
        await models.config(other_tenant.id, agent["id"], 1)
    assert refused.value.type == errors.AGENT_NOT_FOUND
