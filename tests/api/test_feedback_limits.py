"""Feedback per run is bounded (``AIMPACT_FEEDBACK_PER_RUN``): one more answers 409 ``feedback-limit``."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from api.pagination import MAX_LIMIT
from core.settings import Settings
from tests.conftest import TenantCtx
from tests.support.runs import create_agent, wait_run

LIMIT: int = Settings.model_fields["feedback_per_run"].default
"""The stack runs with the default."""


async def _finished_run(tenant: TenantCtx, agent: dict[str, Any]) -> str:
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "1 + 1"})).json()
    await wait_run(tenant.http, run["id"])
    return str(run["id"])


async def _feedback_ids(tenant: TenantCtx, run_id: str) -> list[str]:
    """Every feedback entry of the run, page by page."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": MAX_LIMIT} | ({"after": cursor} if cursor else {})
        page = (await tenant.http.get(f"/v1/runs/{run_id}/feedback", params=params)).json()
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return ids


async def test_the_entry_past_the_limit_is_refused_naming_it(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    run_id, other_run_id = await _finished_run(tenant, agent), await _finished_run(tenant, agent)
    for n in range(LIMIT):
        given = await tenant.http.post(f"/v1/runs/{run_id}/feedback", json={"score": 1, "comment": f"#{n}"})
        assert given.status_code == 201, given.text

    refused = await tenant.http.post(f"/v1/runs/{run_id}/feedback", json={"score": 0})
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["type"].endswith("/feedback-limit")
    assert f"at most {LIMIT} feedback entries" in problem["detail"]
    assert f"AIMPACT_FEEDBACK_PER_RUN={LIMIT}" in problem["detail"]
    assert len(await _feedback_ids(tenant, run_id)) == LIMIT, "the refused entry was not stored"
    assert (await tenant.http.post(f"/v1/runs/{other_run_id}/feedback", json={"score": 0})).status_code == 201
    versions = (await tenant.http.get(f"/v1/agents/{agent['id']}/versions")).json()["items"]
    assert versions[0]["feedback"]["n"] == LIMIT + 1


async def test_concurrent_entries_stop_at_the_limit(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    run_id = await _finished_run(tenant, agent)
    extra = 20

    async def give(n: int) -> int:
        response = await tenant.http.post(f"/v1/runs/{run_id}/feedback", json={"score": 0.5, "comment": f"#{n}"})
        return response.status_code

    statuses = Counter(await asyncio.gather(*(give(n) for n in range(LIMIT + extra))))
    assert statuses == {201: LIMIT, 409: extra}
    assert len(set(await _feedback_ids(tenant, run_id))) == LIMIT
