"""WebhookDeliveryWorkflow on the real Temporal server, delivering to a local receiver.

Retries on 5xx with backoff until the receiver accepts; no retry on 410; refused
egress fails without sending. The signature is checked with the documented recipe.
An event delivered again (same delivery id) starts nothing new and never fails its run.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer, Worker

from activities.webhooks import WebhookActivities
from core.crypto import Keyring
from core.db.engine import make_sessionmaker
from core.ids import RUN_KIND, TENANT_ID, new_id
from core.webhooks.contracts import DeliveryOutcome, EnqueueWebhookDeliveriesInput, WebhookDeliveryInput
from core.webhooks.events import delivery_workflow_id
from core.webhooks.signing import verify
from core.webhooks.store import WebhookStore
from tests.api import test_tools as _shared
from tests.conftest import TenantCtx
from tests.support.receivers import Receiver, Reply, Seen
from tests.support.runs import agent_with_deleted_secret, record_history, wait_run
from workers.embedded.ports import free_port
from workflows.webhook_delivery import WebhookDeliveryWorkflow, webhook_workflows_and_activities

api_for = _shared.api_for
api = _shared.api
keyring = _shared.keyring


@pytest.fixture
async def webhook_worker(
    temporal_client: Client, engine: AsyncEngine, keyring: Keyring
) -> AsyncIterator[tuple[str, WebhookActivities]]:
    """An in-process worker for webhook delivery on a task queue of this test's own."""
    queue = f"test-webhooks-{uuid.uuid4().hex}"
    activities = WebhookActivities(engine, keyring, platform_allowlist=[])
    workflows, activity_list = webhook_workflows_and_activities(activities)
    async with Worker(temporal_client, task_queue=queue, workflows=workflows, activities=activity_list):
        yield queue, activities


async def _deliver(
    temporal_client: Client,
    queue: str,
    activities: WebhookActivities,
    tenant_id: str,
    webhook_id: str,
    run_id: str,
    **retry: Any,
) -> tuple[str, Any]:
    """Enqueue ``run.completed`` of ``run_id`` and run the delivery workflow; (delivery id, handle)."""
    ids = await activities.enqueue(
        EnqueueWebhookDeliveriesInput(tenant_id, run_id, "run.completed", {"run_id": run_id, "output": "42"})
    )
    assert len(ids) == 1
    handle = await temporal_client.start_workflow(
        WebhookDeliveryWorkflow.run,
        WebhookDeliveryInput(tenant_id, webhook_id, ids[0], **({"retry_initial_interval_s": 0.2} | retry)),
        id=delivery_workflow_id(tenant_id, ids[0]),
        task_queue=queue,
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(TENANT_ID, tenant_id), SearchAttributePair(RUN_KIND, "webhook")]
        ),
    )
    return ids[0], handle


async def _log(api: httpx.AsyncClient, webhook_id: str) -> dict[str, Any]:
    items = (await api.get(f"/v1/webhooks/{webhook_id}/deliveries")).json()["items"]
    assert len(items) == 1
    item: dict[str, Any] = items[0]
    return item


async def test_retries_until_delivered_and_signature_verifies(
    api: httpx.AsyncClient,
    tenant: TenantCtx,
    engine: AsyncEngine,
    temporal_client: Client,
    webhook_worker: tuple[str, WebhookActivities],
) -> None:
    queue, activities = webhook_worker
    await _shared.allow_loopback(engine, tenant.id)
    async with Receiver([Reply(500, b"oops"), Reply(500, b"oops"), Reply(200, b"thanks")]) as receiver:
        created = await api.post("/v1/webhooks", json={"url": receiver.url("/hooks"), "events": ["run.completed"]})
        assert created.status_code == 201, created.text
        hook = created.json()
        run_id = new_id("run")
        delivery_id, handle = await _deliver(temporal_client, queue, activities, tenant.id, hook["id"], run_id)
        outcome: DeliveryOutcome = await handle.result()

    assert handle.id == f"{tenant.id}:webhook:{delivery_id}"
    assert (outcome.status, outcome.last_status_code) == ("delivered", 200)
    assert len(receiver.seen) == 3
    bodies = {seen.body for seen in receiver.seen}
    assert len(bodies) == 1  # every attempt sends the same event
    for seen in receiver.seen:
        assert (seen.method, seen.path) == ("POST", "/hooks")
        assert seen.headers["content-type"] == "application/json"
        header = seen.headers["x-aimpact-signature"]
        fields = dict(part.split("=", 1) for part in header.split(","))
        expected = hmac.new(hook["secret"].encode(), f"{fields['t']}.".encode() + seen.body, hashlib.sha256)
        assert hmac.compare_digest(fields["v1"], expected.hexdigest())
        assert verify(hook["secret"], seen.body, header)
        assert not verify("whsec_wrong", seen.body, header)
        assert seen.headers["x-aimpact-event"] == "run.completed"
        assert seen.headers["x-aimpact-delivery"] == delivery_id
    event = json.loads(receiver.seen[0].body)
    assert event["id"] == f"{run_id}:run.completed"
    assert event["type"] == "run.completed"
    assert event["data"] == {"run_id": run_id, "output": "42"}
    assert datetime.fromisoformat(event["created_at"]).tzinfo is not None

    log = await _log(api, hook["id"])
    assert (log["id"], log["status"], log["attempts"], log["last_status_code"]) == (delivery_id, "delivered", 3, 200)
    assert log["last_error"] is None
    assert log["delivered_at"] is not None

    # the workflow replays deterministically against its own history
    history = await handle.fetch_history()
    await Replayer(workflows=[WebhookDeliveryWorkflow]).replay_workflow(history)

    # enqueueing the same event again returns the same, already delivered, delivery
    again = await activities.enqueue(EnqueueWebhookDeliveriesInput(tenant.id, run_id, "run.completed", {}))
    assert again == [delivery_id]


async def test_gone_receiver_is_not_retried(
    api: httpx.AsyncClient,
    tenant: TenantCtx,
    engine: AsyncEngine,
    temporal_client: Client,
    webhook_worker: tuple[str, WebhookActivities],
) -> None:
    queue, activities = webhook_worker
    await _shared.allow_loopback(engine, tenant.id)
    async with Receiver([Reply(410, b"no such endpoint")]) as receiver:
        hook = (await api.post("/v1/webhooks", json={"url": receiver.url("/gone"), "events": ["run.completed"]})).json()
        _, handle = await _deliver(temporal_client, queue, activities, tenant.id, hook["id"], new_id("run"))
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert isinstance(failure.value.cause, ApplicationError)
    assert failure.value.cause.type == "WebhookDeliveryFailed"
    assert len(receiver.seen) == 1
    log = await _log(api, hook["id"])
    assert (log["status"], log["attempts"], log["last_status_code"]) == ("failed", 1, 410)
    assert log["last_error"].startswith("HTTP 410")


async def test_exhausted_retries_and_refused_egress_fail(
    api: httpx.AsyncClient,
    tenant: TenantCtx,
    engine: AsyncEngine,
    temporal_client: Client,
    webhook_worker: tuple[str, WebhookActivities],
) -> None:
    queue, activities = webhook_worker
    async with Receiver([Reply(503, b"busy")]) as receiver:
        hook = (await api.post("/v1/webhooks", json={"url": receiver.url("/busy"), "events": ["run.completed"]})).json()
        # not allowlisted yet: refused before anything is sent, not retried
        _, refused = await _deliver(temporal_client, queue, activities, tenant.id, hook["id"], new_id("run"))
        with pytest.raises(WorkflowFailureError):
            await refused.result()
        assert receiver.seen == []
        log = await _log(api, hook["id"])
        assert (log["status"], log["attempts"], log["last_status_code"]) == ("failed", 1, None)
        assert "not allowed" in log["last_error"]

        await _shared.allow_loopback(engine, tenant.id)
        # as the agent run starts it: with the delivery id only (the row names its webhook)
        _, busy = await _deliver(temporal_client, queue, activities, tenant.id, "", new_id("run"), max_attempts=3)
        with pytest.raises(WorkflowFailureError):
            await busy.result()
    assert len(receiver.seen) == 3
    newest = (await api.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["items"][0]
    assert (newest["status"], newest["attempts"], newest["last_status_code"]) == ("failed", 3, 503)
    assert newest["last_error"].startswith("HTTP 503")


async def test_deleting_the_webhook_stops_retries(
    api: httpx.AsyncClient,
    tenant: TenantCtx,
    engine: AsyncEngine,
    temporal_client: Client,
    webhook_worker: tuple[str, WebhookActivities],
) -> None:
    queue, activities = webhook_worker
    await _shared.allow_loopback(engine, tenant.id)
    first_attempt = asyncio.Event()

    def busy(_: Seen) -> Reply:
        first_attempt.set()
        return Reply(503, b"busy")

    async with Receiver(handler=busy) as receiver:
        hook = (await api.post("/v1/webhooks", json={"url": receiver.url("/"), "events": ["run.completed"]})).json()
        delivery_id, handle = await _deliver(
            temporal_client, queue, activities, tenant.id, hook["id"], new_id("run"), retry_initial_interval_s=1.0
        )
        await asyncio.wait_for(first_attempt.wait(), 10)
        assert (await api.delete(f"/v1/webhooks/{hook['id']}")).status_code == 204
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert len(receiver.seen) == 1
    async with make_sessionmaker(engine)() as session:
        row = await WebhookStore(session, tenant.id).delivery(delivery_id)
    assert row is not None
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 1, 503)


async def test_an_event_delivered_again_does_not_fail_the_run(
    tenant: TenantCtx, engine: AsyncEngine, temporal_client: Client
) -> None:
    """A turn that fails again after a retry yields the same delivery while the first still retries: a no-op."""
    await _shared.allow_loopback(engine, tenant.id)
    closed = free_port()  # nothing listens: the delivery keeps retrying
    created = await tenant.http.post(
        "/v1/webhooks", json={"url": f"http://127.0.0.1:{closed}/hook", "events": ["run.failed"]}
    )
    hook = created.json()
    agent = await agent_with_deleted_secret(tenant.http, "MISSING")
    run = (await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "9 * 9"})).json()
    failed = await wait_run(tenant.http, run["id"])
    assert failed["status"] == "failed"
    handle = temporal_client.get_workflow_handle(failed["temporal"]["workflow_id"])
    try:
        assert (await tenant.http.post(f"/v1/runs/{run['id']}/retry")).status_code == 202
        refused_start = None
        for _ in range(300):  # the second failure tries to start the same delivery again
            async for event in handle.fetch_history_events():
                if event.HasField("start_child_workflow_execution_failed_event_attributes"):
                    refused_start = event
            if refused_start is not None:
                break
            await asyncio.sleep(0.1)
        assert refused_start is not None, "the second failure started no delivery"
        for _ in range(100):  # the run still waits for a retry (before the fix, the refusal failed it for good)
            retried = await tenant.http.post(f"/v1/runs/{run['id']}/retry")
            if retried.status_code == 202:
                break
            await asyncio.sleep(0.1)
        assert retried.status_code == 202, retried.text
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        log = (await tenant.http.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["items"]
        assert [(d["event_id"], d["status"]) for d in log] == [(f"{run['id']}:run.failed:1", "pending")]
        await record_history(temporal_client, handle.id, "redelivery")
    finally:
        await tenant.http.delete(f"/v1/webhooks/{hook['id']}")  # the delivery gives up at its next attempt
        await tenant.http.post(f"/v1/runs/{run['id']}/cancel")
