"""``/v1/webhooks`` over HTTP: create (secret shown once), list, delete, delivery log; signing recipe."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.crypto import DecryptionError
from core.db.engine import make_sessionmaker
from core.webhooks import WebhookStore, event_id_for, generate_secret, secret_aad, sign, verify
from tests.api import test_tools as _shared
from tests.conftest import TenantCtx

api_for = _shared.api_for
api = _shared.api
ClientFor = _shared.ClientFor

HOOK: dict[str, Any] = {"url": "https://hooks.example.com/aimpact?token=abc", "events": ["run.completed", "run.failed"]}


async def test_create_shows_the_secret_once(api: httpx.AsyncClient, tenant: TenantCtx, engine: AsyncEngine) -> None:
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
    ring = _shared.keyring()
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
