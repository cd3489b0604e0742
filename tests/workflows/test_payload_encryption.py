"""Encrypted payloads: raw history holds ciphertext; the codec endpoint lets an operator read it."""

from __future__ import annotations

import uuid

import httpx
from google.protobuf import json_format
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.common.v1 import Payloads
from temporalio.client import Client
from temporalio.worker import Worker

from core.contracts.agent_run import AgentRunInput
from core.db.projection import RunProjection
from core.events import RunEventLog
from core.settings import Settings
from core.temporal import data_converter
from tests.conftest import TenantCtx
from tests.support.runs import create_agent, insert_run
from tests.support.users import login
from workers.capabilities.agent_run import build_agent_activities, build_agent_worker
from workers.embedded.stack import StackProcess
from workflows.agent_run import AgentRunWorkflow


async def test_history_is_encrypted_and_the_codec_endpoint_decrypts(
    stack: StackProcess, temporal_client: Client, engine: AsyncEngine, tenant: TenantCtx
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    encrypted = await Client.connect(
        stack.temporal_address, data_converter=data_converter(Settings(home=stack.home, payload_encryption=True))
    )
    redis = Redis.from_url(stack.redis_url)
    queue = f"test-{uuid.uuid4().hex}"
    agent = await create_agent(tenant.http, tools=[])
    run = await insert_run(engine, tenant.id, agent, f"remember {canary}")
    worker: Worker = build_agent_worker(
        encrypted, build_agent_activities(RunProjection(engine), RunEventLog(redis)), queue
    )
    async with worker:
        result = await encrypted.execute_workflow(
            AgentRunWorkflow.run,
            AgentRunInput(tenant.id, run.id, str(agent["id"]), 1),
            id=run.workflow_id,
            task_queue=queue,
        )
    await redis.aclose()
    assert canary in result.output

    raw = (await temporal_client.get_workflow_handle(run.workflow_id).fetch_history()).to_json()
    assert canary not in raw
    assert "YmluYXJ5L2VuY3J5cHRlZA" in raw  # base64 of "binary/encrypted"

    history = await temporal_client.get_workflow_handle(run.workflow_id).fetch_history()
    completed = next(e for e in history.events if e.HasField("workflow_execution_completed_event_attributes"))
    body = json_format.MessageToDict(
        Payloads(payloads=completed.workflow_execution_completed_event_attributes.result.payloads)
    )
    admin_token = (await login(stack, "admin@aimpact.local", stack.admin_password)).json()["access_token"]
    async with httpx.AsyncClient(base_url=stack.api_url) as client:
        anonymous = await client.post("/codec/decode", json=body)
        assert anonymous.status_code == 401
        tenant_key = await client.post("/codec/decode", json=body, headers={"Authorization": f"Bearer {tenant.key}"})
        assert tenant_key.status_code == 403
        decoded = await client.post("/codec/decode", json=body, headers={"Authorization": f"Bearer {admin_token}"})
        assert decoded.status_code == 200
        plain = Payloads()
        json_format.ParseDict(decoded.json(), plain)
        assert canary in plain.payloads[0].data.decode()

        session = await client.post("/v1/auth/codec-session", headers={"Authorization": f"Bearer {admin_token}"})
        assert session.status_code == 204
        cookie = session.cookies.get("aimpact_codec")
        assert cookie
        async with httpx.AsyncClient(base_url=stack.api_url, cookies={"aimpact_codec": cookie}) as browser:
            assert (await browser.post("/codec/decode", json=body)).status_code == 200
        ui_origin = f"http://127.0.0.1:{stack.ports['TEMPORAL_UI']}"
        preflight = await client.options(
            "/codec/decode",
            headers={
                "Origin": ui_origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ui_origin
        assert preflight.headers["access-control-allow-credentials"] == "true"
