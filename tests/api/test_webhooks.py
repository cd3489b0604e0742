"""``/v1/webhooks`` over HTTP: create (secret shown once), list, delete, delivery log; signing recipe; limits."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.crypto import DecryptionError, Keyring
from core.db.engine import make_sessionmaker
from core.settings import Settings
from core.webhooks.events import event_id_for
from core.webhooks.signing import generate_secret, secret_aad, sign, verify
from core.webhooks.store import WebhookStore
from tests.api import test_tools as _shared
from tests.conftest import TenantCtx
from tests.support.receivers import Receiver
from tests.support.runs import create_agent, until, wait_for, wait_run

api_for = _shared.api_for
api = _shared.api
keyring = _shared.keyring
ClientFor = _shared.ClientFor

HOOK: dict[str, Any] = {"url": "https://hooks.example.com/aimpact?token=abc", "events": ["run.completed", "run.failed"]}


async def test_create_shows_the_secret_once(
    api: httpx.AsyncClient, tenant: TenantCtx, engine: AsyncEngine, keyring: Keyring
) -> None:
    created = await api.post("/v1/webhooks", json=HOOK)
    assert created.status_code == 201, created.text
    hook = created.json()
    secret = hook["secret"]
    assert secret.startswith("whsec_")
    assert len(secret) >= 6 + 43
    assert (hook["url"], hook["events"]) == (HOOK["url"], HOOK["events"])

    listed = await api.get("/v1/webhooks")
    assert [h["id"] for h in listed.json()["items"]] == [hook["id"]]
    got = await api.get(f"/v1/webhooks/{hook['id']}")
    for response in (listed, got, await api.get("/v1/audit-events")):
        assert secret not in response.text
        assert "secret" not in (response.json()["items"][0] if "items" in response.json() else response.json())

    async with engine.connect() as conn:
        blob = (
            await conn.execute(text("select secret_ciphertext from webhook where id = :i"), {"i": hook["id"]})
        ).scalar_one()
    assert secret.encode() not in blob
    ring = keyring
    assert ring.decrypt(blob, aad=secret_aad(tenant.id, hook["id"])).decode() == secret
    with pytest.raises(DecryptionError):
        ring.decrypt(blob, aad=secret_aad("ten_other", hook["id"]))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.example.com/"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "http://"}, "url"),
        ({"url": "https://user:pw@hooks.example.com/"}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "https://hooks.example.com/?q=<x>"}, "url"),
        ({"url": "https://hooks.example.com/a b"}, "url"),
        ({"url": "https://hooks.example.com/" + "a" * 2000}, "url"),
        ({"events": []}, "events"),
        ({"events": ["run.started"]}, "events[0]"),
        ({"events": "run.completed"}, "events"),
        ({"secret": "mine"}, "secret"),
        ({"tenant_id": "ten_x"}, "tenant_id"),
    ],
)
async def test_invalid_input_names_the_field(api: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    response = await api.post("/v1/webhooks", json=HOOK | body)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert (await api.get("/v1/webhooks")).json()["items"] == []


async def test_delete_and_other_tenant(api_for: ClientFor, tenant: TenantCtx, other_tenant: TenantCtx) -> None:
    mine, theirs = api_for(tenant), api_for(other_tenant)
    hook = (await mine.post("/v1/webhooks", json=HOOK)).json()
    for method, path in [
        ("GET", f"/v1/webhooks/{hook['id']}"),
        ("GET", f"/v1/webhooks/{hook['id']}/deliveries"),
        ("DELETE", f"/v1/webhooks/{hook['id']}"),
    ]:
        assert (await theirs.request(method, path)).status_code == 404, (method, path)
    assert (await theirs.get("/v1/webhooks")).json()["items"] == []
    assert (await mine.get(f"/v1/webhooks/{hook['id']}")).status_code == 200

    assert (await mine.delete(f"/v1/webhooks/{hook['id']}")).status_code == 204
    assert (await mine.delete(f"/v1/webhooks/{hook['id']}")).status_code == 404
    assert (await mine.get(f"/v1/webhooks/{hook['id']}")).status_code == 404
    assert (await mine.get(f"/v1/webhooks/{hook['id']}/deliveries")).status_code == 404
    assert (await mine.get("/v1/webhooks")).json()["items"] == []
    actions = [(e["action"], e["target_id"]) for e in (await mine.get("/v1/audit-events")).json()["items"]]
    assert actions[:2] == [("webhook.deleted", hook["id"]), ("webhook.created", hook["id"])]


async def test_permissions(api_for: ClientFor, tenant: TenantCtx, engine: AsyncEngine) -> None:
    for role in ("viewer", "operator"):
        client = api_for(await tenant.key_for(engine, role))
        assert (await client.get("/v1/webhooks")).status_code == 403
        assert (await client.post("/v1/webhooks", json=HOOK)).status_code == 403
    developer = api_for(await tenant.key_for(engine, "developer"))
    assert (await developer.post("/v1/webhooks", json=HOOK)).status_code == 201


async def test_enqueue_is_idempotent_and_the_log_pages(
    api: httpx.AsyncClient, tenant: TenantCtx, engine: AsyncEngine
) -> None:
    hook = (await api.post("/v1/webhooks", json=HOOK)).json()
    other = (await api.post("/v1/webhooks", json=HOOK | {"events": ["run.waiting_approval"]})).json()
    gone = (await api.post("/v1/webhooks", json=HOOK)).json()
    await api.delete(f"/v1/webhooks/{gone['id']}")
    sessions = make_sessionmaker(engine)
    ids: list[list[str]] = []
    async with sessions() as session:
        store = WebhookStore(session, tenant.id)
        for run in ("run_a", "run_b", "run_c", "run_a"):
            ids.append(await store.enqueue(event_id_for(run, "run.completed"), "run.completed", {"run_id": run}))
        approvals = await store.enqueue(event_id_for("run_a", "run.waiting_approval", "s3"), "run.waiting_approval", {})
        await session.commit()
    assert all(len(i) == 1 for i in ids)  # only the live webhook subscribed to run.completed
    assert ids[0] == ids[3]  # the same event enqueued twice is one delivery
    assert len({i[0] for i in ids}) == 3
    assert len(approvals) == 1

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.get(f"/v1/webhooks/{hook['id']}/deliveries", params=params)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [d["event_id"] for d in seen] == ["run_c:run.completed", "run_b:run.completed", "run_a:run.completed"]
    assert set(seen[0]) >= {
        "id",
        "event_id",
        "event_type",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "created_at",
        "delivered_at",
    }
    assert (seen[0]["status"], seen[0]["attempts"], seen[0]["delivered_at"]) == ("pending", 0, None)
    other_log = (await api.get(f"/v1/webhooks/{other['id']}/deliveries")).json()["items"]
    assert [d["event_id"] for d in other_log] == ["run_a:run.waiting_approval:s3"]
    bad = await api.get(f"/v1/webhooks/{hook['id']}/deliveries", params={"cursor": "garbage"})
    assert bad.status_code == 422


def test_signature_recipe() -> None:
    secret = generate_secret()
    body = b'{"id":"run_1:run.completed","type":"run.completed"}'
    now = int(time.time())
    header = sign(secret, body, now)
    t, v1 = (part.split("=", 1)[1] for part in header.split(","))
    assert t == str(now)
    assert v1 == hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    assert verify(secret, body, header)
    assert not verify(secret, body + b" ", header)
    assert not verify(generate_secret(), body, header)
    assert not verify(secret, body, header, now=now + 301)
    assert verify(secret, body, f"t={now},v1={'0' * 64},v1={v1}")  # any v1 may match (rotation)
    for malformed in ("", "t=x,v1=00", f"v1={v1}", f"t={now}"):
        assert not verify(secret, body, malformed)


async def test_live_webhooks_per_tenant_are_limited(
    api_for: ClientFor, tenant: TenantCtx, other_tenant: TenantCtx
) -> None:
    mine, theirs = api_for(tenant), api_for(other_tenant)
    limit = Settings().webhooks_per_tenant  # the stack runs with the same environment
    # concurrent creates cannot slip past the limit
    answers = await asyncio.gather(*(mine.post("/v1/webhooks", json=HOOK) for _ in range(limit + 3)))
    assert sorted(a.status_code for a in answers) == [201] * limit + [409] * 3
    refused = next(a for a in answers if a.status_code == 409)
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"].endswith("/webhook-limit")
    assert f"at most {limit} webhooks" in problem["detail"]
    assert f"AIMPACT_WEBHOOKS_PER_TENANT={limit}" in problem["detail"]
    listed = (await mine.get("/v1/webhooks", params={"limit": 200})).json()["items"]
    assert len(listed) == limit

    assert (await theirs.post("/v1/webhooks", json=HOOK)).status_code == 201  # another tenant's count is its own
    assert (await mine.delete(f"/v1/webhooks/{listed[0]['id']}")).status_code == 204
    assert (await mine.post("/v1/webhooks", json=HOOK)).status_code == 201  # deleted ones do not count
    assert (await mine.post("/v1/webhooks", json=HOOK)).status_code == 409


def _dropped_total() -> float:
    return REGISTRY.get_sample_value("aimpact_webhook_deliveries_dropped_total") or 0.0


async def test_deliveries_beyond_the_inflight_limit_are_logged_as_dropped(
    api: httpx.AsyncClient, tenant: TenantCtx, engine: AsyncEngine
) -> None:
    hooks = [(await api.post("/v1/webhooks", json=HOOK)).json() for _ in range(3)]
    before = _dropped_total()
    sessions = make_sessionmaker(engine)

    async def enqueue(run_id: str) -> list[str]:
        async with sessions() as session:
            ids = await WebhookStore(session, tenant.id).enqueue(
                event_id_for(run_id, "run.completed"), "run.completed", {"run_id": run_id}, inflight_limit=2
            )
            await session.commit()
        return ids

    first = await enqueue("run_a")
    assert len(first) == 2  # the third delivery would be one too many in flight
    assert await enqueue("run_a") == first  # the same event again: the same deliveries, nothing new
    assert await enqueue("run_b") == []  # still two in flight: every delivery of this event is dropped
    assert _dropped_total() - before == 1 + 3

    async with sessions() as session:
        await WebhookStore(session, tenant.id).record_attempt(first[0], status="delivered", status_code=200, error=None)
        await session.commit()
    third = await enqueue("run_c")
    assert len(third) == 1  # one slot freed up

    logs = {h["id"]: (await api.get(f"/v1/webhooks/{h['id']}/deliveries")).json()["items"] for h in hooks}
    by_event: dict[str, list[dict[str, Any]]] = {}
    for items in logs.values():
        for item in items:
            by_event.setdefault(item["event_id"], []).append(item)
    statuses = {event: sorted(d["status"] for d in items) for event, items in by_event.items()}
    assert statuses == {
        "run_a:run.completed": ["delivered", "dropped", "pending"],
        "run_b:run.completed": ["dropped", "dropped", "dropped"],
        "run_c:run.completed": ["dropped", "dropped", "pending"],
    }
    dropped = next(d for d in by_event["run_b:run.completed"])
    assert dropped["attempts"] == 0
    assert dropped["delivered_at"] is None
    assert "limit 2" in dropped["last_error"]
    assert "in flight" in dropped["last_error"]


async def test_a_cancelled_run_delivers_run_cancelled(tenant: TenantCtx, engine: AsyncEngine) -> None:
    await _shared.allow_loopback(engine, tenant.id)
    async with Receiver() as receiver:
        hooks = {}
        for events in (["run.cancelled"], ["run.completed", "run.failed"]):
            created = await tenant.http.post("/v1/webhooks", json={"url": receiver.url("/hook"), "events": events})
            assert created.status_code == 201, created.text
            hooks[events[0]] = created.json()
        agent = await create_agent(tenant.http, model={"provider": "local", "params": {"latency_ms": 5000}})
        run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "slow"})).json()
        await wait_for(tenant, run["id"], lambda r: r["status"] == "running")
        assert (await tenant.http.post(f"/v1/runs/{run['id']}/cancel")).status_code == 202
        assert (await wait_run(tenant.http, run["id"]))["status"] == "cancelled"
        assert await until(lambda: bool(receiver.seen), 30)
        await asyncio.sleep(1)  # a delivery to the other webhook would have arrived by now
    [seen] = receiver.seen
    assert verify(hooks["run.cancelled"]["secret"], seen.body, seen.headers["x-aimpact-signature"])
    event = json.loads(seen.body)
    assert (event["id"], event["type"]) == (f"{run['id']}:run.cancelled:1", "run.cancelled")
    assert (event["data"]["run_id"], event["data"]["status"]) == (run["id"], "cancelled")
    log = (await tenant.http.get(f"/v1/webhooks/{hooks['run.cancelled']['id']}/deliveries")).json()["items"]
    assert [(d["event_type"], d["status"]) for d in log] == [("run.cancelled", "delivered")]
