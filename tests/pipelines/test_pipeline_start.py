"""``POST /v1/pipelines/{id}/runs``: a run is pinned to the version it started with; its input is checked."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import TenantCtx
from tests.support.pipelines import steps_of, wait_pipeline_run

INPUTS = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}


def _definition(expression: str, *, pause_s: float) -> dict[str, Any]:
    return {
        "inputs": INPUTS,
        "steps": [
            {"id": "pause", "type": "wait", "seconds": pause_s},
            {
                "id": "calc",
                "type": "tool",
                "tool": "calculator",
                "args": {"expression": expression},
                "needs": ["pause"],
            },
        ],
        "output": "steps.calc.output.value",
    }


async def _start(http: httpx.AsyncClient, pipeline_id: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await http.post(f"/v1/pipelines/{pipeline_id}/runs", json=body, headers=headers)


async def test_a_run_keeps_the_version_it_started_with_and_a_version_can_be_named(tenant: TenantCtx) -> None:
    created = await tenant.http.post(
        "/v1/pipelines", json={"name": "pinned", "definition": _definition("${input.n} * 2", pause_s=1.5)}
    )
    assert created.status_code == 201, created.text
    pipeline_id = created.json()["id"]

    first = await _start(tenant.http, pipeline_id, {"input": {"n": 21}})
    assert first.status_code == 202, first.text
    assert (first.json()["version"], first.json()["status"]) == (1, "queued")
    saved = await tenant.http.put(
        f"/v1/pipelines/{pipeline_id}", json={"definition": _definition("${input.n} + 1000", pause_s=0)}
    )
    assert saved.status_code == 200, saved.text

    pinned = await wait_pipeline_run(tenant.http, first.json()["id"])
    assert pinned["status"] == "completed", pinned
    assert steps_of(pinned)["calc"]["status"] == "completed"
    current = await wait_pipeline_run(
        tenant.http, (await _start(tenant.http, pipeline_id, {"input": {"n": 21}})).json()["id"]
    )
    named = await _start(tenant.http, pipeline_id, {"input": {"n": 21}, "version": 1})
    assert named.status_code == 202, named.text
    older = await wait_pipeline_run(tenant.http, named.json()["id"])
    assert [r["version"] for r in (pinned, current, older)] == [1, 2, 1]
    assert [r["output"] for r in (pinned, current, older)] == [42, 1021, 42]


async def test_bad_starts_are_refused_naming_their_field(tenant: TenantCtx, other_tenant: TenantCtx) -> None:
    created = await tenant.http.post(
        "/v1/pipelines", json={"name": "checked", "definition": _definition("${input.n}", pause_s=0)}
    )
    pipeline_id = created.json()["id"]

    wrong = await _start(tenant.http, pipeline_id, {"input": {"n": "seven"}})
    assert wrong.status_code == 422, wrong.text
    assert [e["field"] for e in wrong.json()["errors"]] == ["/input/n"]
    missing = await _start(tenant.http, pipeline_id, {"input": {}})
    assert [e["field"] for e in missing.json()["errors"]] == ["/input/n"]
    unknown_version = await _start(tenant.http, pipeline_id, {"input": {"n": 1}, "version": 9})
    assert unknown_version.status_code == 422
    assert [e["field"] for e in unknown_version.json()["errors"]] == ["version"]
    assert (await _start(other_tenant.http, pipeline_id, {"input": {"n": 1}})).status_code == 404

    keyed = await _start(tenant.http, pipeline_id, {"input": {"n": 1}}, **{"Idempotency-Key": "nightly-1"})
    again = await _start(tenant.http, pipeline_id, {"input": {"n": 1}}, **{"Idempotency-Key": "nightly-1"})
    assert keyed.status_code == again.status_code == 202
    assert keyed.json()["id"] == again.json()["id"]
    reused = await _start(tenant.http, pipeline_id, {"input": {"n": 2}}, **{"Idempotency-Key": "nightly-1"})
    assert reused.status_code == 422
    assert reused.json()["type"].endswith("/idempotency-key-reused")

    assert (await tenant.http.delete(f"/v1/pipelines/{pipeline_id}")).status_code == 204
    archived = await _start(tenant.http, pipeline_id, {"input": {"n": 1}})
    assert archived.status_code == 409
    assert archived.json()["type"].endswith("/pipeline-archived")
    listed = (await tenant.http.get("/v1/pipeline-runs", params={"pipeline_id": pipeline_id})).json()["items"]
    assert [r["id"] for r in listed] == [keyed.json()["id"]]
