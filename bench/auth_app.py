"""The API plus an unauthenticated twin of ``GET /v1/runs/{id}``: the baseline of bench/auth.py only.

The twin calls the very same handler with a fixed principal, so the two routes
differ only by authentication (and its per-tenant rate limiting), in one process.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from api.app import create_app
from api.deps import Principal, StateDep
from api.routes.runs import get_run
from api.schemas import RunPublic
from core.roles import permissions_of


def app_with_unauthenticated_twin() -> FastAPI:
    """``create_app()`` with ``GET /bench/runs/{run_id}`` acting as the owner of ``BENCH_TENANT_ID``."""
    app = create_app()
    principal = Principal(
        tenant_id=os.environ["BENCH_TENANT_ID"],
        role="owner",
        subject_id="bench",
        kind="api_key",
        permissions=permissions_of("owner"),
    )

    @app.get("/bench/runs/{run_id}", include_in_schema=False)
    async def unauthenticated_get_run(run_id: str, state: StateDep) -> RunPublic:
        return await get_run(run_id, state, principal, wait_s=0)

    return app
