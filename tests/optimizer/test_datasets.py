"""Optimizer datasets over HTTP on the real stack: built from examples and scored runs, hashed, split, immutable."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db.engine import make_sessionmaker
from core.db.repos import Author
from core.optimizer.dataset_store import DatasetLimitReached, DatasetStore
from core.optimizer.datasets import Example, Source, Split, assign_splits, build
from core.settings import Settings
from tests.conftest import TenantCtx
from tests.support.runs import create_agent, wait_for, wait_run

CAP: int = Settings.model_fields["dataset_max_examples"].default
"""The stack runs with the default."""
STORED: dict[str, Any] = {"source": Source.EXAMPLES, "filters": None, "author": Author(kind="user", id="test")}
FIELDS = ("input", "expected", "rubric", "output", "source_run_id", "feedback_score")


def _examples(n: int) -> list[dict[str, Any]]:
    return [{"input": f"What is {i} + {i}?", "expected": str(2 * i)} for i in range(n)]


async def _create(http: httpx.AsyncClient, agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(f"/v1/agents/{agent_id}/datasets", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _all_examples(http: httpx.AsyncClient, dataset_id: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        response = await http.get(f"/v1/datasets/{dataset_id}/examples", params=query)
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


def _documented_hash(examples: list[dict[str, Any]]) -> str:
    """The README's rule: SHA-256 of the canonical JSON of the examples (every field), in order."""
    canonical = [{name: e.get(name) for name in FIELDS} for e in examples]
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


async def test_a_dataset_of_uploaded_examples(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    uploaded = [*_examples(9), {"input": "Is 7 prime?", "rubric": "Says yes."}, _examples(1)[0]]  # one repeated
    dataset = await _create(tenant.http, agent["id"], {"name": "basics", "examples": uploaded})

    assert (dataset["agent_id"], dataset["name"], dataset["source"], dataset["filters"]) == (
        agent["id"],
        "basics",
        "examples",
        None,
    )
    assert dataset["id"].startswith("dst_")
    assert dataset["size"] == 10, "the repeated example is kept once"
    assert dataset["hash"] == _documented_hash(uploaded[:10])
    assert sum(dataset["splits"].values()) == 10
    assert min(dataset["splits"].values()) >= 1
    assert (await tenant.http.get(f"/v1/datasets/{dataset['id']}")).json() == dataset
    listed = (await tenant.http.get(f"/v1/agents/{agent['id']}/datasets")).json()
    assert listed == {"items": [dataset], "next_cursor": None}

    examples = await _all_examples(tenant.http, dataset["id"])
    assert [e["position"] for e in examples] == list(range(10))
    assert [(e["input"], e["expected"], e["rubric"]) for e in examples] == [
        (u["input"], u.get("expected"), u.get("rubric")) for u in uploaded[:10]
    ]
    assert all(e["source_run_id"] is None and e["feedback_score"] is None for e in examples)
    assert len({e["id"] for e in examples}) == 10
    for split in Split:
        assert len([e for e in examples if e["split"] == split]) == dataset["splits"][split]


async def _scored_run(tenant: TenantCtx, agent_id: str, text: str, *feedback: dict[str, Any]) -> dict[str, Any]:
    run = (await tenant.http.post(f"/v1/agents/{agent_id}/runs", json={"input": text})).json()
    finished = await wait_run(tenant.http, run["id"])
    assert finished["status"] == "completed", finished
    for entry in feedback:
        assert (await tenant.http.post(f"/v1/runs/{run['id']}/feedback", json=entry)).status_code == 201
    return finished


async def test_a_dataset_of_runs_selected_by_feedback(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    old = await _scored_run(tenant, agent["id"], "1 + 1", {"score": 1.0})
    good = [
        await _scored_run(tenant, agent["id"], "2 + 2", {"score": 1.0, "label": "good"}),
        await _scored_run(tenant, agent["id"], "3 + 3", {"score": 0.6}, {"score": 1.0}),  # mean 0.8
        await _scored_run(tenant, agent["id"], "4 + 4", {"score": 0.9, "label": "good"}),
    ]
    bad = await _scored_run(tenant, agent["id"], "5 + 5", {"score": 0.1, "label": "good"}, {"score": 0.3})
    unscored = await _scored_run(tenant, agent["id"], "6 + 6")
    two_turns = await _scored_run(tenant, agent["id"], "7 + 7")
    sent = await tenant.http.post(f"/v1/runs/{two_turns['id']}/messages", json={"input": "and 2 * 3?"})
    assert sent.status_code == 202, sent.text
    await wait_for(tenant, two_turns["id"], lambda r: r["status"] == "completed" and r["output"] != two_turns["output"])
    assert (await tenant.http.post(f"/v1/runs/{two_turns['id']}/feedback", json={"score": 1.0})).status_code == 201
    since = good[0]["created_at"]

    dataset = await _create(tenant.http, agent["id"], {"name": "good", "from_runs": {"min_score": 0.8, "since": since}})
    assert (dataset["size"], dataset["source"]) == (3, "runs")
    filters = dataset["filters"]
    assert (filters.keys(), filters["min_score"], filters["limit"]) == ({"min_score", "since", "limit"}, 0.8, CAP)
    assert datetime.fromisoformat(filters["since"]) == datetime.fromisoformat(since)
    examples = await _all_examples(tenant.http, dataset["id"])
    assert [e["source_run_id"] for e in examples] == [r["id"] for r in good], "oldest first"
    assert [e["expected"] for e in examples] == [r["output"] for r in good]
    assert [e["output"] for e in examples] == [r["output"] for r in good]
    assert [e["input"] for e in examples] == [r["input"] for r in good]
    assert [e["feedback_score"] for e in examples] == pytest.approx([1.0, 0.8, 0.9])
    assert [e["split"] for e in examples].count("train") == dataset["splits"]["train"]

    everything = await _create(tenant.http, agent["id"], {"name": "all", "from_runs": {}})
    runs = await _all_examples(tenant.http, everything["id"])
    assert [e["source_run_id"] for e in runs] == [r["id"] for r in (old, *good, bad, unscored)], "single turns only"
    assert all(e["expected"] is None for e in runs), "no min_score: no run's output is taken as expected"
    assert runs[-1]["feedback_score"] is None

    labelled = await _create(tenant.http, agent["id"], {"name": "l", "from_runs": {"label": "good", "limit": 3}})
    picked = await _all_examples(tenant.http, labelled["id"])
    assert [e["source_run_id"] for e in picked] == [good[0]["id"], good[2]["id"], bad["id"]]

    failures = {"max_score": 0.5}
    refused = await tenant.http.post(f"/v1/agents/{agent['id']}/datasets", json={"name": "f", "from_runs": failures})
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["from_runs"]
    assert "1 completed runs matched" in refused.json()["errors"][0]["message"]
    mixed = await _create(tenant.http, agent["id"], {"name": "m", "from_runs": failures, "examples": _examples(2)})
    assert (mixed["size"], mixed["source"]) == (3, "mixed")
    rows = await _all_examples(tenant.http, mixed["id"])
    assert [e["source_run_id"] for e in rows] == [None, None, bad["id"]], "uploaded first, then the runs"
    assert rows[2]["feedback_score"] == pytest.approx(0.2)
    assert rows[2]["expected"] is None


async def test_the_same_examples_hash_and_split_the_same(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    other = await create_agent(tenant.http)
    examples = _examples(40)
    first = await _create(tenant.http, agent["id"], {"name": "a", "examples": examples})
    second = await _create(tenant.http, other["id"], {"name": "b", "examples": examples})
    assert first["id"] != second["id"]
    assert (first["hash"], first["splits"]) == (second["hash"], second["splits"])
    one, two = await _all_examples(tenant.http, first["id"]), await _all_examples(tenant.http, second["id"])
    assert [(e["id"], e["split"]) for e in one] == [(e["id"], e["split"]) for e in two]

    shuffled = await _create(tenant.http, agent["id"], {"name": "c", "examples": examples[::-1]})
    assert shuffled["hash"] != first["hash"], "the hash covers the order"
    again = {e["id"]: e["split"] for e in await _all_examples(tenant.http, shuffled["id"])}
    assert again == {e["id"]: e["split"] for e in one}, "an example's split follows its content, not its place"


def test_the_split_rule_fills_every_split_and_follows_the_shares() -> None:
    for n in range(3, 40):
        built = build(Example(input=f"q{i}-{n}") for i in range(n))
        assert all(count >= 1 for count in built.splits.values()), n
        assert built == build(Example(input=f"q{i}-{n}") for i in range(n))
    assert assign_splits(["ex_a", "ex_b"]).count(Split.TRAIN) <= 2
    ids = [f"ex_{i}" for i in range(3000)]
    splits = assign_splits(ids)
    shares = [splits.count(s) / len(ids) for s in Split]
    assert shares == pytest.approx([0.6, 0.2, 0.2], abs=0.03)


async def test_datasets_are_immutable(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    dataset = await _create(tenant.http, agent["id"], {"name": "fixed", "examples": _examples(3)})
    for method in ("PUT", "PATCH", "DELETE"):
        response = await tenant.http.request(method, f"/v1/datasets/{dataset['id']}", json={"name": "changed"})
        assert response.status_code == 405, (method, response.text)
        examples = await tenant.http.request(method, f"/v1/datasets/{dataset['id']}/examples", json={})
        assert examples.status_code == 405, (method, examples.text)
    assert (await tenant.http.get(f"/v1/datasets/{dataset['id']}")).json() == dataset


BAD_BODIES: list[tuple[dict[str, Any], list[str]]] = [
    ({"examples": _examples(3)}, ["name"]),
    ({"name": "none"}, ["examples", "from_runs"]),
    ({"name": "empty", "examples": []}, ["examples"]),
    ({"name": "two", "examples": _examples(2)}, ["examples"]),
    ({"name": "same", "examples": _examples(1) * 3}, ["examples"]),
    ({"name": "no runs", "from_runs": {}}, ["from_runs"]),
    ({"name": "both few", "from_runs": {"min_score": 0.5}, "examples": _examples(1)}, ["examples", "from_runs"]),
    ({"name": "range", "from_runs": {"min_score": 0.9, "max_score": 0.1}}, ["from_runs.min_score"]),
    ({"name": "score", "from_runs": {"min_score": 1.5}}, ["from_runs.min_score"]),
    ({"name": "boolean", "from_runs": {"max_score": True}}, ["from_runs.max_score"]),
    ({"name": "limit", "from_runs": {"limit": 0}}, ["from_runs.limit"]),
    ({"name": "when", "from_runs": {"since": 1767225600}}, ["from_runs.since"]),
    (
        {"name": "time", "from_runs": {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}},
        ["from_runs.since"],
    ),
    ({"name": "capped", "examples": _examples(CAP + 1)}, ["examples"]),
    ({"name": "room", "examples": _examples(10), "from_runs": {"limit": CAP - 9}}, ["from_runs.limit"]),
    ({"name": "long", "examples": [{"input": "x" * 200_001}, *_examples(2)]}, ["examples[0].input"]),
    ({"name": "blank", "examples": [{"input": ""}, *_examples(2)]}, ["examples[0].input"]),
    ({"name": "nul", "examples": [{"input": "a\x00b"}, *_examples(2)]}, ["examples[0].input"]),
    ({"name": "extra", "examples": _examples(3), "tenant_id": "t"}, ["tenant_id"]),
]


async def test_bad_input_is_refused_naming_the_field(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    for body, fields in BAD_BODIES:
        response = await tenant.http.post(f"/v1/agents/{agent['id']}/datasets", json=body)
        assert response.status_code == 422, (body.get("name"), response.text[:300])
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == fields, body.get("name")
    assert (await tenant.http.get(f"/v1/agents/{agent['id']}/datasets")).json()["items"] == []

    dataset = await _create(tenant.http, agent["id"], {"name": "ok", "examples": _examples(3)})
    for params, field in (({"split": "holdout"}, "split"), ({"cursor": "bm90LWEtY3Vyc29y"}, "cursor")):
        response = await tenant.http.get(f"/v1/datasets/{dataset['id']}/examples", params=params)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == field


async def test_archived_agents_and_other_tenants(tenant: TenantCtx, other_tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    dataset = await _create(tenant.http, agent["id"], {"name": "kept", "examples": _examples(3)})
    assert (await tenant.http.delete(f"/v1/agents/{agent['id']}")).status_code == 204
    body = {"name": "x", "examples": _examples(3)}
    archived = await tenant.http.post(f"/v1/agents/{agent['id']}/datasets", json=body)
    assert archived.status_code == 409, archived.text
    assert archived.json()["type"].endswith("/agent-archived")
    assert (await tenant.http.get(f"/v1/agents/{agent['id']}/datasets")).json()["items"] == [dataset]

    for response in (
        await other_tenant.http.post(f"/v1/agents/{agent['id']}/datasets", json=body),
        await other_tenant.http.get(f"/v1/agents/{agent['id']}/datasets"),
        await other_tenant.http.get(f"/v1/datasets/{dataset['id']}"),
        await other_tenant.http.get(f"/v1/datasets/{dataset['id']}/examples"),
    ):
        assert response.status_code == 404, response.text
        assert "What is" not in response.text


async def test_roles_read_and_build(tenant: TenantCtx, engine: AsyncEngine) -> None:
    agent = await create_agent(tenant.http)
    body = {"name": "r", "examples": _examples(3)}
    viewer = {"Authorization": f"Bearer {await tenant.key_for(engine, 'viewer')}"}
    developer = {"Authorization": f"Bearer {await tenant.key_for(engine, 'developer')}"}
    operator = {"Authorization": f"Bearer {await tenant.key_for(engine, 'operator')}"}
    for headers in (viewer, operator):
        refused = await tenant.http.post(f"/v1/agents/{agent['id']}/datasets", json=body, headers=headers)
        assert refused.status_code == 403, refused.text
    built = await tenant.http.post(f"/v1/agents/{agent['id']}/datasets", json=body, headers=developer)
    assert built.status_code == 201, built.text
    assert built.json()["created_by"]["kind"] == "user"
    read = await tenant.http.get(f"/v1/datasets/{built.json()['id']}/examples", headers=viewer)
    assert read.status_code == 200
    assert len(read.json()["items"]) == 3


async def test_examples_and_datasets_page_through(tenant: TenantCtx) -> None:
    agent = await create_agent(tenant.http)
    dataset = await _create(tenant.http, agent["id"], {"name": "p", "examples": _examples(25)})
    everything = await _all_examples(tenant.http, dataset["id"], limit=4)
    assert [e["position"] for e in everything] == list(range(25))
    first = (await tenant.http.get(f"/v1/datasets/{dataset['id']}/examples", params={"limit": 4})).json()
    assert len(first["items"]) == 4
    assert first["next_cursor"]
    for split in Split:
        part = await _all_examples(tenant.http, dataset["id"], split=split.value, limit=2)
        assert [e["id"] for e in part] == [e["id"] for e in everything if e["split"] == split]
        assert len(part) == dataset["splits"][split]

    more = [await _create(tenant.http, agent["id"], {"name": f"n{i}", "examples": _examples(3)}) for i in range(4)]
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await tenant.http.get(f"/v1/agents/{agent['id']}/datasets", params=params)).json()
        ids += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert ids == [d["id"] for d in [*more[::-1], dataset]], "newest first"


async def test_a_tenant_keeps_a_bounded_number_of_datasets(tenant: TenantCtx, engine: AsyncEngine) -> None:
    agent = await create_agent(tenant.http)
    await _create(tenant.http, agent["id"], {"name": "one", "examples": _examples(3)})
    built = build(Example(input=f"q{i}") for i in range(3))
    async with make_sessionmaker(engine)() as session:
        store = DatasetStore(session, tenant.id)
        with pytest.raises(DatasetLimitReached, match="at most 1 datasets"):
            await store.create(agent["id"], "two", built, **STORED, limit=1)
        await session.rollback()
        stored = await store.create(agent["id"], "two", built, **STORED, limit=2)
        await session.commit()
    assert (await tenant.http.get(f"/v1/datasets/{stored.id}")).json()["hash"] == built.hash
    assert len((await tenant.http.get(f"/v1/agents/{agent['id']}/datasets")).json()["items"]) == 2
