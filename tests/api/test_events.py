"""Run events over SSE (resumable with Last-Event-ID) and the long-poll on GET /v1/runs/{id}.

A run's stream stays open between turns until the run closes (the stack's runs wait
minutes for the next message): a reader stops at the first final event unless told otherwise.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import httpx

from core.events import FINAL_EVENTS
from tests.conftest import TenantCtx
from tests.support.runs import create_agent, wait_run
from tests.support.sse import read_sse

SLOW_MODEL = {"provider": "local", "params": {"latency_ms": 400}}


async def _read_events(
    http: httpx.AsyncClient,
    run_id: str,
    *,
    last_id: str | None = None,
    after: str | None = None,
    stop_after: int | None = None,
    until: Collection[str] | None = FINAL_EVENTS,
) -> list[dict[str, Any]]:
    """The run's frames up to ``stop_after`` or the first event of a type in ``until`` (``None``: to the end)."""
    url = f"/v1/runs/{run_id}/events"
    return await read_sse(http, url, last_id=last_id, after=after, stop_after=stop_after, until=until)


def _names(events: list[dict[str, Any]]) -> list[str]:
    return [f"{e['event']}:{e['data'].get('step_id', '')}" for e in events]


async def test_full_event_stream_of_a_finished_run(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "3 * 3"})).json()
    await wait_run(tenant.http, run["id"])

    events = await _read_events(tenant.http, run["id"])

    assert _names(events) == [
        "run.queued:",
        "run.started:",
        "step.started:s1",
        "step.completed:s1",
        "step.started:s2",
        "step.completed:s2",
        "step.started:s3",
        "token.delta:s3",
        "step.completed:s3",
        "run.completed:",
    ]
    assert events[5]["data"]["output"] == {"expression": "3 * 3", "value": 9}
    assert events[-1]["data"]["output"] == "Result — calculator: 9"


async def test_reconnect_with_last_event_id_gets_every_event_once_in_order(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http, model=SLOW_MODEL)
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "3 * 3"})).json()

    first = await _read_events(tenant.http, run["id"], stop_after=2)
    rest = await _read_events(tenant.http, run["id"], last_id=first[-1]["id"])

    together = first + rest
    ids = [e["id"] for e in together]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    assert len(set(ids)) == len(ids)
    assert _names(together)[:2] == ["run.queued:", "run.started:"]
    assert _names(together)[-1] == "run.completed:"
    assert len([e for e in together if e["event"] != "token.delta"]) == 9
    assert "".join(e["data"]["text"] for e in together if e["event"] == "token.delta") == "Result — calculator: 9"


async def test_events_of_another_tenant_are_404(tenant: TenantCtx, other_tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "1"})).json()
    assert (await other_tenant.http.get(f"/v1/runs/{run['id']}/events")).status_code == 404
    bad = await tenant.http.get(f"/v1/runs/{run['id']}/events", headers={"Last-Event-ID": "drop table"})
    assert bad.status_code == 422
    await wait_run(tenant.http, run["id"])


async def test_long_poll_returns_the_final_run(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http, model=SLOW_MODEL)
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "4 * 4"})).json()
    waited = await tenant.http.get(f"/v1/runs/{run['id']}", params={"wait_s": 20})
    assert waited.status_code == 200
    assert waited.json()["status"] == "completed"
    assert waited.json()["output"] == "Result — calculator: 16"
    assert (await tenant.http.get(f"/v1/runs/{run['id']}", params={"wait_s": 61})).status_code == 422
