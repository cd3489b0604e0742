"""schemathesis (the real tool) with all its checks against our OpenAPI document."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import TenantCtx
from workers.embedded.stack import StackProcess

ROOT = Path(__file__).resolve().parents[2]
PYTHONPATH = [part for part in os.environ.get("PYTHONPATH", "").split(os.pathsep) if part]
HOOKS = "tests.api.schemathesis_hooks"
"""Rules the document states but no schema can decide (server-issued cursors, existing tools): see the module."""


async def test_schemathesis_all_checks_pass(stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine) -> None:
    # the fuzzer sends far more than the default per-minute quota, and may start more replays (of the runs it
    # made) than a tenant may have live at once
    quotas = '{"requests_per_minute": 1000000, "concurrent_replays": 10000, "concurrent_optimizer_runs": 10000}'
    async with engine.begin() as conn:
        await conn.execute(
            text("update tenant set quotas = cast(:q as jsonb) where id = :t"), {"q": quotas, "t": tenant.id}
        )
    result = _run(stack, tenant, seed=20261125)
    assert result.returncode == 0, result.stdout[-5000:]
    assert "generated" in result.stdout


def _run(stack: StackProcess, tenant: TenantCtx, seed: int) -> subprocess.CompletedProcess[str]:
    schemathesis = Path(sys.executable).with_name("schemathesis")
    return subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{stack.api_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {tenant.key}",
            "--checks",
            "all",
            "--max-examples",
            "5",
            "--workers",
            "2",
            "--seed",
            str(seed),
            "--request-timeout",
            "65",  # GET /v1/runs/{id}?wait_s= long-polls for up to 60 s by design
            "--max-response-time",
            "65",  # the same long-poll: a slow answer is the requested wait, not a slow server
            "--exclude-path-regex",
            "/events$",  # a stream stays open until its run closes: no request timeout fits it
        ],
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "SCHEMATHESIS_HOOKS": HOOKS, "PYTHONPATH": os.pathsep.join([str(ROOT), *PYTHONPATH])},
    )
