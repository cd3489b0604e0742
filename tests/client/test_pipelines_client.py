"""The synchronous client's pipelines and pipeline runs against the real stack."""

from __future__ import annotations

import pytest

from aimpact_client import ApiError, Client
from tests.conftest import TenantCtx
from workers.embedded.stack import StackProcess

STEPS = [
    {"id": "a", "type": "tool", "tool": "calculator", "args": {"expression": "${input.x} + 1"}},
    {"id": "b", "type": "tool", "tool": "calculator", "args": {"expression": "${input.x} * 2"}},
    {"id": "total", "type": "tool", "tool": "calculator", "needs": ["a", "b"],
     "args": {"expression": "${steps.a.output.value} + ${steps.b.output.value}"}},
]  # fmt: skip


def test_pipelines_version_validate_and_run(stack: StackProcess, tenant: TenantCtx) -> None:
    with Client(stack.api_url, api_key=tenant.key) as client:
        plan = client.pipelines.validate({"steps": STEPS})
        assert plan["valid"]
        assert plan["plan"] is not None
        assert plan["plan"]["waves"] == [["a", "b"], ["total"]]
        invalid = client.pipelines.validate({"steps": [STEPS[2]]})
        assert not invalid["valid"]
        assert {e["field"] for e in invalid["errors"]} >= {"/steps/0/needs/0"}

        pipeline = client.pipelines.create("sums", {"steps": STEPS, "output": "steps.total.output.value"})
        edited = client.pipelines.update(pipeline["id"], {"steps": STEPS[:1], "output": "steps.a.output.value"})
        assert edited["version"] == 2
        assert [v["version"] for v in client.pipelines.versions(pipeline["id"], page_size=1)] == [2, 1]
        assert [p["id"] for p in client.pipelines.list()] == [pipeline["id"]]

        pinned = client.pipelines.run(pipeline["id"], {"x": 5}, version=1, idempotency_key="sums-5")
        again = client.pipelines.run(pipeline["id"], {"x": 5}, version=1, idempotency_key="sums-5")
        assert again["id"] == pinned["id"]
        finished = client.pipeline_runs.wait(pinned["id"], timeout_s=60)
        assert (finished["status"], finished["version"], finished["output"]) == ("completed", 1, 16)
        current = client.pipeline_runs.wait(client.pipelines.run(pipeline["id"], {"x": 5})["id"], timeout_s=60)
        assert (current["version"], current["output"]) == (2, 6)
        listed = [r["id"] for r in client.pipeline_runs.list(pipeline_id=pipeline["id"], status="completed")]
        assert listed == [current["id"], pinned["id"]]

        client.pipelines.delete(pipeline["id"])
        with pytest.raises(ApiError) as archived:
            client.pipelines.run(pipeline["id"], {"x": 1})
        assert archived.value.status == 409
        with pytest.raises(ApiError) as missing:
            client.pipeline_runs.get("prn_missing")
        assert missing.value.status == 404
