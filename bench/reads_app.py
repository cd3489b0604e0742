"""The baseline of bench/reads.py: bare FastAPI routes reading the rows the platform's reads return.

No authentication, no middleware, no models: a psycopg ``AsyncConnectionPool`` (autocommit),
one query per table, rows turned into dicts and ``json.dumps``-ed. It reads the same rows from
the same database as ``GET /v1/runs/{id}``, ``GET /v1/runs`` and ``GET /v1/threads/{id}/messages``
and answers bodies of the same size, so the two differ by what the platform adds.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Response
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

RUN = "SELECT * FROM run WHERE id = %s AND tenant_id = %s"
STEPS = "SELECT * FROM run_step WHERE run_id = %s AND tenant_id = %s ORDER BY seq"
RUNS = "SELECT * FROM run WHERE tenant_id = %s ORDER BY created_at DESC, id DESC LIMIT %s"
STEPS_OF = "SELECT * FROM run_step WHERE tenant_id = %s AND run_id = ANY(%s) ORDER BY seq"
MESSAGES = "SELECT * FROM thread_message WHERE tenant_id = %s AND thread_id = %s AND seq > 0 ORDER BY seq LIMIT %s"


def _default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _json(body: object) -> Response:
    return Response(json.dumps(body, default=_default), media_type="application/json")


def bare_app() -> FastAPI:
    """The baseline app; ``BENCH_DSN`` names the database, ``BENCH_TENANT_ID`` the tenant whose rows it reads."""
    pool = AsyncConnectionPool(
        os.environ["BENCH_DSN"],
        min_size=4,
        max_size=4,
        open=False,
        kwargs={"autocommit": True, "row_factory": dict_row},
    )
    tenant = os.environ["BENCH_TENANT_ID"]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await pool.open()
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/bare/runs/{run_id}")
    async def run(run_id: str) -> Response:
        async with pool.connection() as conn:
            row: Any = await (await conn.execute(RUN, (run_id, tenant))).fetchone()
            row["steps"] = await (await conn.execute(STEPS, (run_id, tenant))).fetchall()
        return _json(row)

    @app.get("/bare/runs")
    async def runs(limit: int = 50) -> Response:
        async with pool.connection() as conn:
            rows: list[Any] = await (await conn.execute(RUNS, (tenant, limit + 1))).fetchall()
            steps = await (await conn.execute(STEPS_OF, (tenant, [r["id"] for r in rows[:limit]]))).fetchall()
        by_run: dict[str, list[Any]] = {r["id"]: [] for r in rows[:limit]}
        for step in steps:
            by_run[step["run_id"]].append(step)  # type: ignore[call-overload]  # dict rows (the pool's row factory)
        return _json({"items": [r | {"steps": by_run[r["id"]]} for r in rows[:limit]], "next_cursor": "x"})

    @app.get("/bare/threads/{thread_id}/messages")
    async def messages(thread_id: str, limit: int = 100) -> Response:
        async with pool.connection() as conn:
            rows = await (await conn.execute(MESSAGES, (tenant, thread_id, limit + 1))).fetchall()
        return _json({"items": rows[:limit], "next_cursor": None})

    return app
