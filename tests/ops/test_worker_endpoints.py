"""The worker process of a real stack: probes, its metrics, the Temporal SDK's metrics, bounded series."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx

from core.db.engine import make_engine, make_sessionmaker
from core.provisioning import create_tenant, issue_api_key
from tests.ops.conftest import OpsStack, Scrapes
from tests.ops.support import exposition_series, sample_value
from tests.support.runs import CALC_AGENT


def test_worker_probes_report_liveness_and_every_readiness_check(ops_stack: OpsStack) -> None:
    with httpx.Client(base_url=ops_stack.worker_url, timeout=10) as http:
        healthz = http.get("/healthz")
        readyz = http.get("/readyz")
        head = http.head("/readyz")
        missing = http.get("/v1/runs")
        post = http.post("/readyz")
    assert (healthz.status_code, healthz.json()) == (200, {"status": "ok"})
    assert readyz.status_code == 200
    assert readyz.json() == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "ok", "temporal": "ok", "worker": "ok"},
    }
    assert (head.status_code, head.content) == (200, b"")
    assert int(head.headers["content-length"]) == len(readyz.content)
    assert missing.status_code == 404
    assert post.status_code == 405


def test_worker_metrics_count_the_finished_run(scrapes: Scrapes) -> None:
    finished = sample_value(scrapes.worker, "aimpact_runs_finished_total", {"status": "completed"})
    assert finished is not None
    assert finished >= 1
    llm_calls = sample_value(
        scrapes.worker, "aimpact_activity_duration_seconds_count", {"activity": "agent_run.llm", "outcome": "ok"}
    )
    assert llm_calls is not None
    assert llm_calls >= 2  # the calculator run: model → tool → model
    tokens = sample_value(scrapes.worker, "aimpact_llm_tokens_total", {"provider": "local", "direction": "output"})
    assert tokens is not None
    assert tokens > 0
    started = sample_value(scrapes.api, "aimpact_runs_started_total", {})
    assert started is not None
    assert started >= 1


def test_temporal_sdk_metrics_come_from_the_worker_runtime(scrapes: Scrapes) -> None:
    completed = sample_value(
        scrapes.sdk,
        "temporal_workflow_completed_total",
        {"workflow_type": "AgentRunWorkflow", "task_queue": "agents", "namespace": "default"},
    )
    assert completed is not None
    assert completed >= 1
    for histogram in (
        "temporal_workflow_task_schedule_to_start_latency",
        "temporal_activity_schedule_to_start_latency",
        "temporal_workflow_endtoend_latency",
    ):
        count = sample_value(scrapes.sdk, f"{histogram}_count", {"task_queue": "agents"})
        assert count is not None, histogram
        assert count >= 1, histogram
    # Durations are exported in seconds: a local run's workflow task waits far less than 1 s.
    assert sample_value(scrapes.sdk, "temporal_workflow_task_schedule_to_start_latency_bucket", {"le": "1"})


async def _tenants(database_url: str, count: int) -> list[tuple[str, str]]:
    """``count`` new tenants as (tenant id, owner API key)."""
    engine = make_engine(database_url, pool_size=2)
    tenants = []
    try:
        async with make_sessionmaker(engine)() as session:
            for _ in range(count):
                tenant = await create_tenant(session, f"ops-{uuid.uuid4().hex[:8]}")
                _, minted = await issue_api_key(session, tenant.id, name="owner", role="owner")
                tenants.append((tenant.id, minted.key))
    finally:
        await engine.dispose()
    return tenants


def _tenant_round(ops_stack: OpsStack, key: str, runs: int) -> list[str]:
    """One tenant creates an agent and finishes ``runs`` runs; returns every id it saw."""
    with ops_stack.client({"Authorization": f"Bearer {key}"}) as http:
        agent = http.post("/v1/agents", json=CALC_AGENT)
        assert agent.status_code == 201, agent.text
        ids = [agent.json()["id"]]
        for n in range(runs):
            run = ops_stack.run_agent(http, f"{n} + 1", agent_id=ids[0])
            assert run["status"] == "completed", run
            ids.append(run["id"])
        return ids


def _series(ops_stack: OpsStack) -> dict[str, set[tuple[str, tuple[tuple[str, str], ...]]]]:
    texts = {
        "api": httpx.get(f"{ops_stack.stack.api_url}/metrics", timeout=10).text,
        "worker": httpx.get(f"{ops_stack.worker_url}/metrics", timeout=10).text,
        "sdk": httpx.get(f"{ops_stack.sdk_url}/metrics", timeout=10).text,
    }
    return {name: exposition_series(text) for name, text in texts.items()}


IDLE_POLL_SERIES = ("temporal_activity_poll_no_task_total",)
"""SDK series first written when a long poll comes back empty, about a minute after the worker starts: activities
are handed to the worker eagerly with its workflow tasks, so its activity pollers come back empty until then."""


PERIODIC_SDK_OPERATIONS = frozenset({"RecordWorkerHeartbeat"})
"""Temporal RPCs the SDK sends on its own timer (the worker's heartbeat to the server, every minute or so): their
series appear with time, not with tenants or runs, so the bounded-series check leaves them out (not the id check)."""


def _tenant_driven(
    series: set[tuple[str, tuple[tuple[str, str], ...]]],
) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """The series that are not a periodic SDK operation's."""
    return {(name, labels) for name, labels in series if dict(labels).get("operation") not in PERIODIC_SDK_OPERATIONS}


def _wait_for_idle_poll_series(ops_stack: OpsStack, timeout_s: float = 150) -> None:
    """Wait until the worker's activity pollers have come back empty once, so their series exist before a baseline."""
    deadline = time.monotonic() + timeout_s
    while True:
        names = {name for name, _ in _series(ops_stack)["sdk"]}
        if all(series in names for series in IDLE_POLL_SERIES):
            return
        polls = sorted(name for name in names if "poll" in name)
        assert time.monotonic() < deadline, f"no {IDLE_POLL_SERIES} within {timeout_s} s; poll series: {polls}"
        time.sleep(2)


def test_series_stay_bounded_and_carry_no_ids_across_tenants_and_runs(ops_stack: OpsStack, scrapes: Scrapes) -> None:
    (warmup_tenant, warmup_key), *tenants = asyncio.run(_tenants(ops_stack.stack.database_url, 4))
    seen = [warmup_tenant, warmup_key, *_tenant_round(ops_stack, warmup_key, runs=2)]
    _wait_for_idle_poll_series(ops_stack)
    before = _series(ops_stack)
    for tenant_id, key in tenants:
        seen += [tenant_id, key, *_tenant_round(ops_stack, key, runs=3)]
    after = _series(ops_stack)

    for endpoint in ("api", "worker", "sdk"):
        grown = _tenant_driven(after[endpoint]) - before[endpoint]
        assert not grown, f"{endpoint}: 3 more tenants and 9 more runs added series {sorted(grown)[:5]}"
    texts = " ".join(str(s) for series in after.values() for s in series)
    for id_or_key in seen:
        assert id_or_key not in texts
    print({endpoint: len(series) for endpoint, series in after.items()})
