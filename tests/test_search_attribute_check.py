"""A worker refuses a Temporal namespace that lacks the search attributes its runs write."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client

from core.temporal import MissingSearchAttributesError, check_search_attributes
from workers.embedded.stack import StackProcess


async def _bare_namespace(stack: StackProcess, client: Client) -> str:
    """A new namespace on the stack's Temporal, with none of the platform's search attributes."""
    name = f"bare-{uuid.uuid4().hex[:8]}"
    retention = Duration()
    retention.FromTimedelta(timedelta(days=1))
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=name, workflow_execution_retention_period=retention)
    )
    return name


async def test_the_stack_namespace_passes_and_a_bare_one_is_refused_by_name(
    stack: StackProcess, temporal_client: Client
) -> None:
    await check_search_attributes(temporal_client)  # aimpact up registers all four
    bare = await _bare_namespace(stack, temporal_client)
    client = await Client.connect(stack.temporal_address, namespace=bare)
    with pytest.raises(MissingSearchAttributesError) as refused:
        await check_search_attributes(client)
    message = str(refused.value)
    for name in ("TenantId", "AgentId", "RunKind", "RunStatus"):
        assert name in message
    assert f"--namespace {bare} --name RunStatus --type Keyword" in message


async def test_a_worker_on_a_bare_namespace_exits_2_saying_what_to_register(
    stack: StackProcess, temporal_client: Client
) -> None:
    bare = await _bare_namespace(stack, temporal_client)
    env = stack.env | {
        "AIMPACT_TEMPORAL_ADDRESS": stack.temporal_address,
        "AIMPACT_TEMPORAL_NAMESPACE": bare,
        "AIMPACT_WORKER_METRICS_PORT": "0",
        "AIMPACT_WORKER_SDK_METRICS_PORT": "0",
    }
    worker = subprocess.run(
        [sys.executable, "-m", "cli", "worker", "--queue", "agents"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 2, worker.stdout + worker.stderr
    said = " ".join(worker.stdout.split())  # the console wraps long lines
    assert f"namespace '{bare}' lacks the Keyword search attributes TenantId, AgentId, RunKind, RunStatus" in said
    assert f"--namespace {bare} --name RunStatus --type Keyword" in said
