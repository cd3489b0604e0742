"""Health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import httpx

from tests.conftest import TenantCtx
from tests.support.runs import create_agent, wait_run
from workers.embedded.stack import StackProcess


async def test_health_ready_docs(stack: StackProcess) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = (await client.get("/readyz")).json()
        assert ready == {"status": "ready", "checks": {"database": "ok", "redis": "ok", "temporal": "ok"}}
        assert (await client.get("/docs")).status_code == 200
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert {
            "/v1/agents",
            "/v1/agents/{agent_id}",
            "/v1/agents/{agent_id}/runs",
            "/v1/runs",
            "/v1/runs/{run_id}",
        } <= set(paths)


async def test_metrics_count_requests_by_route_template_and_runs(stack: StackProcess, tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "1+2"})).json()
    await wait_run(tenant.http, run["id"])
    text = (await tenant.http.get("/metrics")).text
    assert 'aimpact_http_requests_total{method="POST",route="/v1/agents/{agent_id}/runs",status="2xx"}' in text
    assert 'aimpact_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/runs/{run_id}"}' in text
    assert "aimpact_runs_started_total" in text
    assert run["id"] not in text
    assert agent["id"] not in text
