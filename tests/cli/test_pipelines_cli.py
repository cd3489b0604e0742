"""``aimpact pipelines`` and ``aimpact pipeline-runs`` as a subprocess against the real stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cli.test_client_cli import aimpact
from tests.conftest import TenantCtx
from workers.embedded.stack import StackProcess

DEFINITION = {
    "inputs": {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
    "steps": [
        {"id": "sum", "type": "tool", "tool": "calculator", "args": {"expression": "${input.expression}"}},
        {"id": "check", "type": "approval", "needs": ["sum"], "prompt": "Publish ${steps.sum.output}?"},
    ],
    "output": "steps.sum.output",
}


async def test_define_validate_run_approve_and_wait(stack: StackProcess, tenant: TenantCtx, tmp_path: Path) -> None:
    definition = tmp_path / "pipeline.json"
    definition.write_text(json.dumps(DEFINITION))
    broken = aimpact(
        stack, tenant, tmp_path, "pipelines", "validate", "-d", json.dumps({"steps": [DEFINITION["steps"][1]]})
    )
    assert broken.returncode == 1
    assert "/steps/0/needs/0" in broken.stderr

    valid = aimpact(stack, tenant, tmp_path, "pipelines", "validate", "-d", f"@{definition}")
    assert valid.returncode == 0, valid.stderr
    assert "1. sum" in valid.stdout
    assert "2. check" in valid.stdout

    created = aimpact(stack, tenant, tmp_path, "pipelines", "create", "publish", "-d", f"@{definition}", "--json")
    assert created.returncode == 0, created.stderr
    pipeline = json.loads(created.stdout)
    assert pipeline["version"] == 1

    started = aimpact(
        stack, tenant, tmp_path, "pipelines", "run", pipeline["id"], "-i", '{"expression": "6 * 7"}', "--json"
    )
    assert started.returncode == 0, started.stderr
    run_id = json.loads(started.stdout)["id"]
    waiting = tenant_wait(stack, tenant, tmp_path, run_id, "waiting_approval")
    assert [s["status"] for s in waiting["steps"]] == ["completed", "waiting_approval"]

    approved = aimpact(stack, tenant, tmp_path, "pipeline-runs", "approve", run_id, "check", "--comment", "fine")
    assert approved.returncode == 0, approved.stderr
    finished = aimpact(stack, tenant, tmp_path, "pipeline-runs", "get", run_id, "--wait", "--json")
    assert finished.returncode == 0, finished.stderr
    run = json.loads(finished.stdout)
    assert (run["status"], run["output"]) == ("completed", {"expression": "6 * 7", "value": 42})

    listed = json.loads(
        aimpact(stack, tenant, tmp_path, "pipeline-runs", "list", "--pipeline", pipeline["id"], "--json").stdout
    )
    assert [r["id"] for r in listed] == [run_id]

    rejected_run = json.loads(
        aimpact(
            stack, tenant, tmp_path, "pipelines", "run", pipeline["id"], "-i", '{"expression": "1 + 1"}', "--json"
        ).stdout
    )
    tenant_wait(stack, tenant, tmp_path, rejected_run["id"], "waiting_approval")
    assert aimpact(stack, tenant, tmp_path, "pipeline-runs", "reject", rejected_run["id"], "check").returncode == 0
    failed = aimpact(stack, tenant, tmp_path, "pipeline-runs", "get", rejected_run["id"], "--wait")
    assert failed.returncode == 1
    assert "PipelineApprovalRejected" in failed.stderr

    bad_input = aimpact(stack, tenant, tmp_path, "pipelines", "run", pipeline["id"], "-i", "{}")
    assert bad_input.returncode == 1
    assert "/input" in bad_input.stderr


def tenant_wait(stack: StackProcess, tenant: TenantCtx, home: Path, run_id: str, status: str) -> dict[str, Any]:
    """The run once ``aimpact pipeline-runs get`` shows it in ``status`` (bounded)."""
    for _ in range(120):
        shown = aimpact(stack, tenant, home, "pipeline-runs", "get", run_id, "--json")
        assert shown.returncode == 0, shown.stderr
        run = json.loads(shown.stdout)
        if run["status"] == status:
            return run
    raise AssertionError(f"{run_id} never became {status}: {run['status']}")
