"""The hot reads (core/db/reads.py) answer what the ORM repositories answer, in the same order and pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import psycopg
from sqlalchemy.ext.asyncio import AsyncEngine

from api.routes.runs import run_public
from api.state import AppState
from core.db.engine import make_sessionmaker
from core.db.reads import ReadPool, RunReads, ThreadReads, libpq_url
from core.db.repos import RunRepository
from core.settings import Settings
from tests.conftest import TenantCtx
from tests.support.runs import create_agent, wait_run
from workers.embedded.stack import StackProcess


def _insert_runs(stack: StackProcess, tenant_id: str, rows: list[dict[str, Any]]) -> None:
    with psycopg.connect(libpq_url(stack.database_url)) as conn:
        for row in rows:
            conn.execute(
                "INSERT INTO run (id, tenant_id, agent_id, agent_version, thread_id, status, input, metadata,"
                " input_tokens, output_tokens, cost_usd, workflow_id, created_at, updated_at) VALUES (%(id)s,"
                " %(tenant)s, %(agent)s, 1, 'thr_x', %(status)s, 'in', '{}', 1, 2, 0.5, %(id)s, %(at)s, %(at)s)",
                row | {"tenant": tenant_id},
            )
            for seq in (2, 0, 1):  # written out of order: the read orders them
                conn.execute(
                    "INSERT INTO run_step (tenant_id, run_id, step_id, seq, kind, name, status, attempts, input,"
                    " output, input_tokens, output_tokens, cost_usd) VALUES (%s, %s, %s, %s, 'tool', 'calculator',"
                    " 'completed', 1, %s, %s, 0, 0, 0)",
                    (tenant_id, row["id"], f"s{seq}", seq, json.dumps({"n": seq}), json.dumps([seq, None])),
                )


async def _pages(tenant: TenantCtx, limit: int, **filters: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit, **filters}
    while True:
        response = await tenant.http.get("/v1/runs", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]


async def test_run_pages_follow_created_at_then_id_newest_first_through_ties_and_filters(
    stack: StackProcess, tenant: TenantCtx
) -> None:
    agents = [(await create_agent(tenant.http, name=f"lister-{n}"))["id"] for n in range(2)]
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    rows = [
        {
            "id": f"run_order{n:02d}",
            "agent": agents[n % 2],
            "status": ("completed", "failed")[n % 3 == 0],
            "at": moment - timedelta(microseconds=n // 3),  # groups of three share a timestamp
        }
        for n in range(11)
    ]
    _insert_runs(stack, tenant.id, rows)

    def expected(**only: str) -> list[str]:
        kept = [r for r in rows if all(r[k] == v for k, v in only.items())]
        return [r["id"] for r in sorted(kept, key=lambda r: (r["at"], r["id"]), reverse=True)]

    for limit in (1, 2, 3, 200):
        assert [r["id"] for r in await _pages(tenant, limit)] == expected()
        for agent in agents:
            assert [r["id"] for r in await _pages(tenant, limit, agent_id=agent)] == expected(agent=agent)
        failed = await _pages(tenant, limit, status="failed", agent_id=agents[0])
        assert [r["id"] for r in failed] == expected(status="failed", agent=agents[0])

    listed = await _pages(tenant, 4)
    assert all([s["id"] for s in run["steps"]] == ["s0", "s1", "s2"] for run in listed)
    assert listed[0]["steps"][2]["input"] == {"n": 2}
    assert listed[0]["steps"][2]["output"] == [2, None]
    assert listed[0]["created_at"] == "2026-01-02T03:04:05.678901Z"


async def test_a_run_reads_the_same_through_the_reader_the_repository_and_the_api(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine
) -> None:
    agent = await create_agent(tenant.http)
    started = await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "6 * 7", "metadata": {"k": 1}})
    assert started.status_code == 202, started.text
    answered = await wait_run(tenant.http, started.json()["id"])
    assert len(answered["steps"]) >= 3

    state = cast(AppState, SimpleNamespace(settings=Settings()))
    async with make_sessionmaker(engine)() as session:
        repo = RunRepository(session, tenant.id)
        run = await repo.get(answered["id"])
        assert run is not None
        through_orm = run_public(state, run, await repo.steps(run.id)).model_dump(mode="json")
    pool = ReadPool(stack.database_url, max_size=1)
    await pool.open()
    try:
        found = await RunReads(pool, tenant.id).get(answered["id"])
        assert found is not None
        assert run_public(state, *found).model_dump(mode="json") == through_orm
        assert await RunReads(pool, "ten_someone_else").get(answered["id"]) is None
        messages = await ThreadReads(pool, tenant.id).messages(answered["thread_id"], limit=10)
        assert [m.role for m in messages][:2] == ["user", "assistant"]
        assert await ThreadReads(pool, "ten_someone_else").messages(answered["thread_id"], limit=10) == []
    finally:
        await pool.close()
    assert {**answered, "temporal": None} == {**through_orm, "temporal": None}
    assert answered["temporal"]["workflow_id"] == through_orm["temporal"]["workflow_id"]
