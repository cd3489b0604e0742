"""Long-term memory through the HTTP API and in agent runs, on the real stack (minilm embedder)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, ScheduleIntervalSpec, WorkflowExecutionStatus

from core.contracts.memory import ConsolidationInput, ConsolidationResult
from core.memory.context import SUMMARY_PREFIX
from core.memory.schedule import SCHEDULE_ID
from core.memory.service import ingest_workflow_id
from core.threads import cache_key
from tests.conftest import TenantCtx
from tests.support.runs import create_agent, record_history, wait_run
from workers.embedded.stack import StackProcess

MEMORY_AGENT: dict[str, Any] = {"name": "companion", "tools": [], "memory": {"enabled": True}}


async def remember(tenant: TenantCtx, subject: str, text_: str) -> dict[str, Any]:
    """Write a memory and wait until it is searchable (201 at once, or 202 then ready)."""
    response = await tenant.http.post("/v1/memories", json={"subject": subject, "text": text_})
    assert response.status_code in (201, 202), response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == ("ready" if response.status_code == 201 else "pending")
    deadline = time.monotonic() + 60
    while body["status"] != "ready" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        body = (await tenant.http.get(f"/v1/memories/{body['id']}")).json()
    assert body["status"] == "ready", body
    return body


async def wait_memories(tenant: TenantCtx, subject: str, count: int, timeout_s: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        items = (await tenant.http.get("/v1/memories", params={"subject": subject})).json()["items"]
        if len(items) >= count and all(m["status"] == "ready" for m in items):
            return items
        await asyncio.sleep(0.2)
    raise AssertionError(f"{subject}: expected {count} ready memories, have {items}")


async def test_write_search_list_get_delete(tenant: TenantCtx, temporal_client: Client) -> None:
    home = await remember(tenant, "ana", "My home is in Lisbon")
    await record_history(temporal_client, ingest_workflow_id(tenant.id, [home["id"]]), "memory_ingest")
    await remember(tenant, "ana", "I am allergic to peanuts")
    await remember(tenant, "ana", "My sister is called Marta")
    found = await tenant.http.get("/v1/memories/search", params={"q": "where do I live", "subject": "ana", "k": 2})
    assert found.status_code == 200
    items = found.json()["items"]
    assert next(i["id"] for i in items) == home["id"]
    assert len(items) == 2
    assert items[0]["score"] > items[1]["score"]
    assert items[0]["subject"] == "ana"
    assert items[0]["text"] == "My home is in Lisbon"

    listed = (await tenant.http.get("/v1/memories", params={"subject": "ana", "limit": 2})).json()
    assert len(listed["items"]) == 2
    assert listed["next_cursor"]
    rest = (await tenant.http.get("/v1/memories", params={"subject": "ana", "cursor": listed["next_cursor"]})).json()
    assert len(rest["items"]) == 1
    got = (await tenant.http.get(f"/v1/memories/{home['id']}")).json()
    assert got["use_count"] == 1
    assert got["last_used_at"] is not None

    assert (await tenant.http.delete(f"/v1/memories/{home['id']}")).status_code == 204
    assert (await tenant.http.get(f"/v1/memories/{home['id']}")).status_code == 404
    assert (await tenant.http.delete(f"/v1/memories/{home['id']}")).status_code == 404


async def test_idempotency_key_stores_one_memory(tenant: TenantCtx) -> None:
    body = {"subject": "ana", "text": "I play the cello"}
    first = await tenant.http.post("/v1/memories", json=body, headers={"Idempotency-Key": "cello-1"})
    second = await tenant.http.post("/v1/memories", json=body, headers={"Idempotency-Key": "cello-1"})
    assert first.json()["id"] == second.json()["id"]
    assert len((await tenant.http.get("/v1/memories", params={"subject": "ana"})).json()["items"]) == 1


async def test_bad_input_is_a_422_naming_the_field(tenant: TenantCtx) -> None:
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/v1/memories", {"json": {"subject": "ana", "text": ""}}, "text"),
        ("POST", "/v1/memories", {"json": {"subject": "ana", "text": "   "}}, "text"),
        ("POST", "/v1/memories", {"json": {"subject": "ana", "text": "x" * 4001}}, "text"),
        ("POST", "/v1/memories", {"json": {"subject": "", "text": "hello"}}, "subject"),
        ("POST", "/v1/memories", {"json": {"text": "hello"}}, "subject"),
        ("POST", "/v1/memories", {"json": {"subject": "ana", "text": "a", "metadata": {"x": "y" * 20000}}}, "metadata"),
        ("GET", "/v1/memories/search", {"params": {"q": "x", "k": 0}}, "k"),
        ("GET", "/v1/memories/search", {"params": {"q": "x", "k": 101}}, "k"),
        ("GET", "/v1/memories/search", {"params": {"k": 5}}, "q"),
        ("GET", "/v1/memories", {"params": {}}, "subject"),
        ("GET", "/v1/memories", {"params": {"subject": "ana", "cursor": "garbage"}}, "cursor"),
        ("DELETE", "/v1/memories", {"params": {}}, "subject"),
    ]
    for method, path, kwargs, field in cases:
        response = await tenant.http.request(method, path, **kwargs)
        assert response.status_code == 422, (method, path, kwargs, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in response.text, (field, response.text)
    assert (await tenant.http.get("/v1/memories", params={"subject": "ana"})).json()["items"] == []


async def test_tenants_never_see_each_others_memories(tenant: TenantCtx, other_tenant: TenantCtx) -> None:
    mine = await remember(tenant, "alice", "My home is in Lisbon")
    theirs = await remember(other_tenant, "alice", "My home is in Lisbon")
    await remember(other_tenant, "bob", "Bob keeps bees")
    for owner, own_id, foreign_id in ((tenant, mine["id"], theirs["id"]), (other_tenant, theirs["id"], mine["id"])):
        for subject in ("alice", None):
            params = {"q": "My home is in Lisbon", "k": 100} | ({"subject": subject} if subject else {})
            ids = [i["id"] for i in (await owner.http.get("/v1/memories/search", params=params)).json()["items"]]
            assert own_id in ids
            assert foreign_id not in ids
        assert (await owner.http.get(f"/v1/memories/{foreign_id}")).status_code == 404
    bees = await tenant.http.get("/v1/memories/search", params={"q": "Bob keeps bees", "subject": "bob"})
    assert bees.json()["items"] == []


async def test_an_agent_remembers_across_threads(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http, **MEMORY_AGENT)
    told = await tenant.http.post(
        f"/v1/agents/{agent['id']}/runs",
        json={"input": "Please remember that my favourite colour is green.", "subject": "user-42"},
    )
    first = await wait_run(tenant.http, told.json()["id"])
    assert first["status"] == "completed"
    [memory] = await wait_memories(tenant, "user-42", 1)
    assert memory["text"] == "My favourite colour is green"
    assert memory["source_run_id"] == first["id"]

    asked = await tenant.http.post(
        f"/v1/agents/{agent['id']}/runs", json={"input": "What is my favourite colour?", "subject": "user-42"}
    )
    second = await wait_run(tenant.http, asked.json()["id"])
    assert second["thread_id"] != first["thread_id"]
    assert second["output"] == "From memory: My favourite colour is green"
    assert second["steps"][0]["input"]["memories"] == [memory["id"]]

    stranger = await tenant.http.post(
        f"/v1/agents/{agent['id']}/runs", json={"input": "What is my favourite colour?", "subject": "user-43"}
    )
    assert (await wait_run(tenant.http, stranger.json()["id"]))["output"] == "You said: What is my favourite colour?"


async def test_memory_tools(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http, name="tools", tools=["memory_write", "memory_search"])
    wrote = await tenant.http.post(
        f"/v1/agents/{agent['id']}/runs",
        json={"input": "use memory_write with text=prefers_window_seats", "subject": "traveller"},
    )
    assert (await wait_run(tenant.http, wrote.json()["id"]))["status"] == "completed"
    [memory] = await wait_memories(tenant, "traveller", 1)
    assert memory["text"] == "prefers_window_seats"
    assert memory["metadata"] == {"source": "memory_write"}
    searched = await tenant.http.post(
        f"/v1/agents/{agent['id']}/runs",
        json={"input": "use memory_search with query=prefers_window_seats", "subject": "traveller"},
    )
    run = await wait_run(tenant.http, searched.json()["id"])
    assert "prefers_window_seats" in run["output"]
    anonymous = await tenant.http.post(
        f"/v1/agents/{agent['id']}/runs", json={"input": "use memory_search with query=anything"}
    )
    run = await wait_run(tenant.http, anonymous.json()["id"])
    assert "no subject" in run["output"]


async def _turn(tenant: TenantCtx, run_id: str, message: str, turn: int) -> dict[str, Any]:
    assert (await tenant.http.post(f"/v1/runs/{run_id}/messages", json={"input": message})).status_code == 202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run: dict[str, Any] = (await tenant.http.get(f"/v1/runs/{run_id}")).json()
        if run["status"] == "completed" and run["output"] == f"You said: {message}":
            return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"turn {turn} did not complete")


async def test_a_thread_over_its_budget_is_compacted_and_keeps_answering(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http, name="chatty", tools=[], memory={"context_tokens": 256})
    filler = "This is a long message about the weather and the garden, repeated to fill the context. " * 2
    started = await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": f"Turn 1. {filler}"})
    run = await wait_run(tenant.http, started.json()["id"])
    for turn in range(2, 8):
        run = await _turn(tenant, run["id"], f"Turn {turn}. {filler}", turn)
    compactions = (await tenant.http.get(f"/v1/threads/{run['thread_id']}/compactions")).json()["items"]
    assert compactions, "the thread went over its budget but nothing was compacted"
    latest = compactions[-1]
    assert latest["summary"].startswith(SUMMARY_PREFIX)
    assert latest["method"] == "extractive"
    assert latest["tokens_after"] < latest["tokens_before"]
    assert "user: Turn 1." in compactions[0]["summary"]
    thread = (await tenant.http.get(f"/v1/threads/{run['thread_id']}/messages", params={"limit": 200})).json()
    assert len(thread["items"]) == 14  # every message is still stored
    last_llm = [s for s in run["steps"] if s["kind"] == "llm"][-1]
    assert last_llm["input"]["messages"] < 14  # the prompt carried the summary instead


async def test_erasure_leaves_nothing_of_the_subject(
    tenant: TenantCtx, other_tenant: TenantCtx, engine: AsyncEngine, stack: StackProcess
) -> None:
    agent = await create_agent(tenant.http, name="companion", tools=[], memory={"enabled": True, "context_tokens": 256})
    started = await tenant.http.post(
        f"/v1/agents/{agent['id']}/runs", json={"input": "Remember that I live in Porto.", "subject": "leaver"}
    )
    run = await wait_run(tenant.http, started.json()["id"])
    for turn in range(2, 5):
        run = await _turn(tenant, run["id"], f"Turn {turn}: " + "some more words about my day " * 8, turn)
    await remember(tenant, "leaver", "My dog is called Rex")
    await wait_memories(tenant, "leaver", 2)
    kept = await remember(tenant, "stayer", "My dog is called Rex")
    theirs = await remember(other_tenant, "leaver", "My dog is called Rex")

    viewer = await tenant.key_for(engine, "viewer")
    refused = await tenant.http.delete(
        "/v1/memories", params={"subject": "leaver"}, headers={"Authorization": f"Bearer {viewer}"}
    )
    assert refused.status_code == 403
    erased = await tenant.http.delete("/v1/memories", params={"subject": "leaver"})
    assert erased.status_code == 200, erased.text
    counts = erased.json()["deleted"]
    assert counts["memories"] == 2
    assert counts["thread_messages"] == 8
    assert counts["runs_redacted"] == 1
    assert counts["compactions"] >= 1
    assert counts["run_steps"] >= 4

    async with engine.connect() as conn:
        for table, column in (("memory", "subject"), ("thread_message", "subject"), ("thread_compaction", "subject")):
            rows = await conn.scalar(
                text(f"select count(*) from {table} where tenant_id = :t and {column} = 'leaver'"),
                {"t": tenant.id},
            )
            assert rows == 0, table
        assert (
            await conn.scalar(
                text("select count(*) from thread_message where thread_id = :th"), {"th": run["thread_id"]}
            )
            == 0
        )
        assert (
            await conn.scalar(
                text("select count(*) from thread_compaction where thread_id = :th"), {"th": run["thread_id"]}
            )
            == 0
        )
        assert await conn.scalar(text("select count(*) from run_step where run_id = :r"), {"r": run["id"]}) == 0
        redacted = (
            await conn.execute(text("select input, output, subject from run where id = :r"), {"r": run["id"]})
        ).one()
        assert tuple(redacted) == ("", None, None)
        assert (
            await conn.scalar(
                text("select count(*) from run where tenant_id = :t and subject = 'leaver'"), {"t": tenant.id}
            )
            == 0
        )
    redis = Redis.from_url(stack.redis_url)
    try:
        assert await redis.exists(cache_key(tenant.id, run["thread_id"])) == 0
    finally:
        await redis.aclose()

    assert (await tenant.http.get(f"/v1/memories/{kept['id']}")).status_code == 200
    assert (await other_tenant.http.get(f"/v1/memories/{theirs['id']}")).status_code == 200
    audit = (await tenant.http.get("/v1/audit-events")).json()["items"]
    event = next(e for e in audit if e["action"] == "memory.subject_erased")
    assert "leaver" not in str(event)
    assert event["data"]["memories"] == 2


async def test_consolidation_merges_decays_and_caps(tenant: TenantCtx, temporal_client: Client) -> None:
    await remember(tenant, "carl", "My home is in Lisbon")
    await remember(tenant, "carl", "My home is in Lisbon.")
    await remember(tenant, "carl", "I have two cats")
    await remember(tenant, "carl", "I drive a red car")
    await remember(tenant, "carl", "I work as a nurse")
    used = await tenant.http.get("/v1/memories/search", params={"q": "what pets do I have", "subject": "carl", "k": 1})
    cats = used.json()["items"][0]["id"]
    result: ConsolidationResult = await temporal_client.execute_workflow(
        "MemoryConsolidationWorkflow",
        ConsolidationInput(tenant_id=tenant.id, subject_cap=3, decay_after_s=0),
        id=f"{tenant.id}:memory-consolidation:test",
        task_queue="agents",
        result_type=ConsolidationResult,
    )
    assert result.tenants == 1
    assert result.merged == 1
    assert result.evicted == 1
    assert result.decayed >= 2
    left = (await tenant.http.get("/v1/memories", params={"subject": "carl"})).json()["items"]
    texts = {m["text"].rstrip(".") for m in left}
    assert len(left) == 3
    assert "My home is in Lisbon" in texts
    assert cats in {m["id"] for m in left}
    merged = next(m for m in left if m["text"].startswith("My home"))
    assert len(merged["metadata"]["merged_from"]) == 1
    await record_history(temporal_client, f"{tenant.id}:memory-consolidation:test", "memory_consolidation")

    schedule = await temporal_client.get_schedule_handle(SCHEDULE_ID).describe()
    [interval] = schedule.schedule.spec.intervals
    assert isinstance(interval, ScheduleIntervalSpec)
    assert interval.every.total_seconds() == 3600


async def test_a_failing_tenant_is_reported_and_does_not_stop_the_others(
    tenant: TenantCtx, other_tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    """A tenant with a corrupt memory fails alone (without retries); the pass pages on and consolidates the rest."""
    broken = await remember(tenant, "dora", "My home is in Porto")
    await remember(tenant, "dora", "My home is in Porto.")
    await remember(other_tenant, "eve", "My home is in Lisbon")
    await remember(other_tenant, "eve", "My home is in Lisbon.")
    async with engine.begin() as conn:  # ready but without its vector: consolidation cannot read it
        await conn.execute(text("update memory set embedding = null where id = :id"), {"id": broken["id"]})

    workflow_id = f"platform:memory-consolidation:test-{uuid.uuid4().hex[:8]}"
    handle = await temporal_client.start_workflow(
        "MemoryConsolidationWorkflow",
        ConsolidationInput(page_size=2, concurrency=2),
        id=workflow_id,
        task_queue="agents",
        result_type=ConsolidationResult,
    )
    result: ConsolidationResult = await asyncio.wait_for(handle.result(), timeout=60)

    assert result.failed_count >= 1
    assert result.failed[tenant.id].startswith("MemoryCorrupt: "), result.failed
    assert broken["id"] in result.failed[tenant.id]
    assert other_tenant.id not in result.failed
    assert result.by_tenant[other_tenant.id]["merged"] == 1
    left = (await other_tenant.http.get("/v1/memories", params={"subject": "eve"})).json()["items"]
    assert len(left) == 1
    assert len((await tenant.http.get("/v1/memories", params={"subject": "dora"})).json()["items"]) == 2

    # two tenants per page: every page is one run, continued as new with the cursor and the totals
    assert result.tenants >= 2
    assert result.pages == result.tenants // 2 + 1
    first = temporal_client.get_workflow_handle(workflow_id, run_id=handle.first_execution_run_id)
    assert (await first.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    attempts: list[int] = []
    run_id: str | None = handle.first_execution_run_id
    while run_id:  # follow the chain of runs, each one page
        events = (await temporal_client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()).events
        attempts += [
            e.activity_task_started_event_attributes.attempt
            for e in events
            if e.HasField("activity_task_started_event_attributes")
        ]
        last = events[-1]
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id or None
    assert len(attempts) == result.tenants + result.pages  # one listing per page, one attempt per tenant
    assert set(attempts) == {1}  # the corrupt tenant is not retried
    await record_history(
        temporal_client, workflow_id, "memory_consolidation_paged", run_id=handle.first_execution_run_id
    )
