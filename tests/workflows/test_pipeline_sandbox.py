"""The pipeline domain layer runs inside a real sandboxed Temporal workflow (celpy imports and evaluates there)."""

from __future__ import annotations

import uuid

from temporalio.client import Client
from temporalio.worker import Worker

from core.contracts.pipelines import EXPRESSION_ERROR
from tests.workflows.pipeline_probe import PipelineProbeWorkflow, ProbeInput
from workers.embedded.stack import StackProcess

DEFINITION = {
    "steps": [
        {"id": "total", "type": "tool", "tool": "calculator", "args": {"expression": "${input.n} * 2"}},
        {"id": "later", "type": "wait", "seconds": 1, "needs": ["total"]},
    ]
}


async def test_cel_evaluates_inside_the_workflow_sandbox(stack: StackProcess, temporal_client: Client) -> None:
    queue = f"test-pipeline-probe-{uuid.uuid4().hex}"
    probe = ProbeInput(
        expression="input.items.filter(x, x > 1).map(x, x * input.n)",
        template={"at": "${timestamp('2024-01-01T00:00:00Z') + duration('90s')}", "n": "${input.n}"},
        run_input={"n": 3, "items": [1, 2, 5]},
        definition=DEFINITION,
    )
    async with Worker(temporal_client, task_queue=queue, workflows=[PipelineProbeWorkflow]):
        result = await temporal_client.execute_workflow(
            PipelineProbeWorkflow.run, probe, id=f"test-pipeline-probe-{uuid.uuid4().hex}", task_queue=queue
        )
        failing = await temporal_client.execute_workflow(
            PipelineProbeWorkflow.run,
            ProbeInput(expression="input.missing", template="${input.n}", run_input={"n": 1}, definition=DEFINITION),
            id=f"test-pipeline-probe-{uuid.uuid4().hex}",
            task_queue=queue,
        )

    assert result.value == [6, 15]
    assert result.rendered == {"at": "2024-01-01T00:01:30Z", "n": 3}
    assert result.error is None
    assert result.launches == {"total": {"args": {"expression": "3 * 2"}}}
    assert failing.rendered == 1
    assert failing.error == {
        "type": EXPRESSION_ERROR,
        "message": "no such member in mapping: 'missing'",
        "expression": "input.missing",
    }
