"""``/v1/tools`` over HTTP, and the ``http_request`` and tenant HTTP tools against a local receiver.

The API tests use the live stack's API when it serves ``/v1/tools``; until the routers
are registered in ``api/app.py`` they run against an in-process app (the same
``create_app()`` on the stack's database, Redis and Temporal, plus these routers).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from core.crypto import Keyring
from core.db.engine import make_sessionmaker
from core.egress import tenant_allowlist_loader
from core.errors import ToolError
from core.settings import Settings
from core.tools.base import ToolContext, ToolRegistry, ToolResolver
from core.tools.builtin import builtin_tools
from core.tools.http_request import MAX_RESPONSE_BYTES, HttpRequestTool
from core.tools.tenant_http import LayeredToolResolver, TenantToolRegistry
from tests.conftest import TenantCtx
from tests.support.receivers import Receiver, Reply
from tests.support.runs import create_agent, wait_run
from tests.support.tools import allow_loopback
from workers.embedded.stack import StackProcess

ClientFor = Callable[[TenantCtx | str], httpx.AsyncClient]


def _local_app(stack: StackProcess) -> FastAPI:
    from api.app import create_app
    from api.routes import tools, webhooks

    app = create_app(
        Settings(database_url=stack.database_url, redis_url=stack.redis_url, temporal_address=stack.temporal_address)
    )
    served = set(app.openapi()["paths"])
    app.openapi_schema = None
    if "/v1/tools" not in served:
        app.include_router(tools.router)
    if "/v1/webhooks" not in served:
        app.include_router(webhooks.router)
    return app


@pytest.fixture(scope="session")
async def api_for(stack: StackProcess) -> AsyncIterator[ClientFor]:
    """``api_for(tenant or key)``: an HTTP client of an API serving ``/v1/tools`` and ``/v1/webhooks``."""
    async with httpx.AsyncClient(base_url=stack.api_url) as probe:
        paths = (await probe.get("/openapi.json")).json()["paths"]
    clients: list[httpx.AsyncClient] = []
    if "/v1/tools" in paths and "/v1/webhooks" in paths:

        def live(who: TenantCtx | str) -> httpx.AsyncClient:
            key = who if isinstance(who, str) else who.key
            client = httpx.AsyncClient(base_url=stack.api_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
            clients.append(client)
            return client

        yield live
    else:
        app = _local_app(stack)
        async with app.router.lifespan_context(app):

            def local(who: TenantCtx | str) -> httpx.AsyncClient:
                key = who if isinstance(who, str) else who.key
                client = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url="http://api.test",
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=30,
                )
                clients.append(client)
                return client

            yield local
    for client in clients:
        await client.aclose()


async def with_weather_key(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """``client``, its tenant now holding ``WEATHER_KEY``, the secret ``WEATHER``'s header names."""
    assert (await client.post("/v1/secrets", json={"name": "WEATHER_KEY", "value": "w-key"})).status_code == 201
    return client


@pytest.fixture
async def api(api_for: ClientFor, tenant: TenantCtx) -> httpx.AsyncClient:
    """The test tenant's owner client (the tenant holds ``WEATHER_KEY``)."""
    return await with_weather_key(api_for(tenant))


@pytest.fixture
def keyring(stack: StackProcess) -> Keyring:
    """The keyring the stack generated at first boot."""
    return Keyring.from_setting(Settings(home=stack.home).encryption_keyring)


WEATHER: dict[str, Any] = {
    "name": "weather",
    "description": "Weather of a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "units": {"type": "string", "enum": ["metric", "imperial"]}},
        "required": ["city"],
    },
    "method": "GET",
    "url": "https://api.weather.example/v1/{city}/now",
    "headers": {"Authorization": "Bearer {{secret:WEATHER_KEY}}", "Accept": "application/json"},
}


async def test_create_list_get_delete(api: httpx.AsyncClient) -> None:
    created = await api.post("/v1/tools", json=WEATHER)
    assert created.status_code == 201, created.text
    tool = created.json()
    assert tool["headers"] == WEATHER["headers"]
    assert (tool["builtin"], tool["side_effects"], tool["method"], tool["url"]) == (
        False,
        False,
        "GET",
        WEATHER["url"],
    )
    post = await api.post("/v1/tools", json=WEATHER | {"name": "notify", "method": "POST", "url": "https://n.example/"})
    assert post.json()["side_effects"] is True

    listed = (await api.get("/v1/tools")).json()
    by_name = {t["name"]: t for t in listed["items"]}
    assert {"calculator", "current_time", "http_request", "weather", "notify"} <= set(by_name)
    assert by_name["calculator"]["builtin"] is True
    assert by_name["http_request"]["builtin"] is True
    assert by_name["weather"]["builtin"] is False
    assert [t["name"] for t in listed["items"]] == sorted(by_name)

    got = await api.get("/v1/tools/weather")
    assert got.status_code == 200
    assert got.json()["headers"]["Authorization"] == "Bearer {{secret:WEATHER_KEY}}"
    assert (await api.get("/v1/tools/calculator")).json()["builtin"] is True

    assert (await api.delete("/v1/tools/weather")).status_code == 204
    assert (await api.get("/v1/tools/weather")).status_code == 404
    assert (await api.delete("/v1/tools/weather")).status_code == 404
    assert (await api.delete("/v1/tools/calculator")).status_code == 404

    actions = [(e["action"], e["target_id"]) for e in (await api.get("/v1/audit-events")).json()["items"]]
    assert actions[:3] == [("tool.deleted", "weather"), ("tool.created", "notify"), ("tool.created", "weather")]


def _field(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [e["field"] for e in response.json().get("errors", [])]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"name": "1abc"}, "name"),
        ({"name": "a" * 65}, "name"),
        ({"name": "with-dash"}, "name"),
        ({"name": "calculator"}, "name"),
        ({"name": "http_request"}, "name"),
        ({"name": "run_agent"}, "name"),
        ({"parameters": {"type": "object", "properties": {"city": {"type": "strin"}}}}, "parameters"),
        ({"parameters": {"type": "string"}}, "parameters"),
        (
            {"parameters": {"type": "object", "properties": {"a": {"$ref": "https://evil.example/s.json"}}}},
            "parameters",
        ),
        ({"parameters": {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}}, "parameters"),
        ({"parameters": {"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}}}, "parameters"),
        ({"url": "ftp://files.example/{city}"}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "https://api.example/{country}/now"}, "url"),
        ({"url": "https://{city}.example/now"}, "url"),
        ({"url": "https://user:pw@api.example/{city}"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"method": "TRACE"}, "method"),
        ({"headers": {"Host": "internal"}}, "headers"),
        ({"headers": {"X-A": "a\r\nInjected: 1"}}, "headers"),
        ({"headers": {"bad name": "v"}}, "headers"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": 1000}, "timeout_s"),
        ({"description": "nul\x00byte"}, "description"),
        ({"tenant_id": "ten_other"}, "tenant_id"),
    ],
)
async def test_invalid_definitions_name_the_field(api: httpx.AsyncClient, patch: dict[str, Any], field: str) -> None:
    assert field in _field(await api.post("/v1/tools", json=WEATHER | patch))
    assert (await api.get("/v1/tools/weather")).status_code == 404


async def test_duplicate_name_is_409(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v1/tools", json=WEATHER)).status_code == 201
    again = await api.post("/v1/tools", json=WEATHER | {"description": "other"})
    assert again.status_code == 409
    assert again.json()["errors"] == [{"field": "name", "message": "already exists"}]
    assert (await api.get("/v1/tools/weather")).json()["description"] == WEATHER["description"]


async def test_other_tenant_gets_404(api_for: ClientFor, tenant: TenantCtx, other_tenant: TenantCtx) -> None:
    mine, theirs = await with_weather_key(api_for(tenant)), await with_weather_key(api_for(other_tenant))
    assert (await mine.post("/v1/tools", json=WEATHER)).status_code == 201
    assert (await theirs.get("/v1/tools/weather")).status_code == 404
    assert (await theirs.delete("/v1/tools/weather")).status_code == 404
    assert "weather" not in {t["name"] for t in (await theirs.get("/v1/tools")).json()["items"]}
    assert (await theirs.post("/v1/tools", json=WEATHER)).status_code == 201  # names are per tenant
    assert (await mine.get("/v1/tools/weather")).status_code == 200


async def test_permissions(api_for: ClientFor, tenant: TenantCtx, engine: AsyncEngine) -> None:
    await with_weather_key(api_for(tenant))
    viewer = api_for(await tenant.key_for(engine, "viewer"))
    assert (await viewer.get("/v1/tools")).status_code == 200
    assert (await viewer.post("/v1/tools", json=WEATHER)).status_code == 403
    assert (await viewer.delete("/v1/tools/weather")).status_code == 403
    developer = api_for(await tenant.key_for(engine, "developer"))
    assert (await developer.post("/v1/tools", json=WEATHER)).status_code == 201


async def test_list_pages_through_builtins_and_tenant_tools(api: httpx.AsyncClient) -> None:
    for name in ("alpha", "delta", "zulu"):
        assert (await api.post("/v1/tools", json=WEATHER | {"name": name})).status_code == 201
    names: list[str] = []
    cursor = None
    while True:
        page = (await api.get("/v1/tools", params={"limit": 2} | ({"cursor": cursor} if cursor else {}))).json()
        assert len(page["items"]) <= 2
        names += [t["name"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == sorted(["alpha", "calculator", "current_time", "delta", "http_request", "run_agent", "zulu"])
    assert (await api.get("/v1/tools", params={"cursor": "%%%"})).status_code == 422


# --- the http_request tool --------------------------------------------------------------------


def _context(tenant_id: str) -> ToolContext:
    key = f"{tenant_id}:run:run_{uuid.uuid4().hex[:8]}:s2"
    return ToolContext(tenant_id=tenant_id, run_id="run_x", idempotency_key=key)


async def test_http_request_tool(tenant: TenantCtx, other_tenant: TenantCtx, engine: AsyncEngine) -> None:
    await allow_loopback(engine, tenant.id)
    tool = HttpRequestTool(allowlist_for=tenant_allowlist_loader(make_sessionmaker(engine)))
    context = _context(tenant.id)
    big = b"y" * (MAX_RESPONSE_BYTES + 10_000)
    async with Receiver(
        handler=lambda seen: Reply(200, big) if seen.path == "/big" else Reply(201, b'{"ok":true}', {"ETag": "e1"})
    ) as receiver:
        first = await tool.call({"method": "POST", "url": receiver.url("/orders"), "json": {"n": 1}}, context)
        second = await tool.call({"method": "POST", "url": receiver.url("/orders"), "json": {"n": 1}}, context)
        other_step = await tool.call(
            {"method": "PUT", "url": receiver.url("/orders/1"), "body": "x", "headers": {"Idempotency-Key": "mine"}},
            _context(tenant.id),
        )
        read = await tool.call({"method": "GET", "url": receiver.url("/orders?x=1")}, context)
        cut = await tool.call({"method": "GET", "url": receiver.url("/big")}, context)
        with pytest.raises(ToolError, match="not allowed"):
            await tool.call({"method": "GET", "url": receiver.url("/")}, _context(other_tenant.id))
        with pytest.raises(ToolError, match="not allowed"):
            await tool.call({"method": "GET", "url": "http://169.254.169.254/latest/meta-data/"}, context)
        with pytest.raises(ToolError, match="invalid arguments"):
            await tool.call({"method": "TRACE", "url": receiver.url("/")}, context)
        with pytest.raises(ToolError, match="cannot be set"):
            await tool.call({"method": "GET", "url": receiver.url("/"), "headers": {"Host": "x"}}, context)

    assert (first["status"], first["body"], first["truncated"]) == (201, '{"ok":true}', False)
    assert first["headers"]["etag"] == "e1"
    keys = [s.headers.get("idempotency-key") for s in receiver.seen]
    assert keys[0] == keys[1] == context.idempotency_key
    assert keys[2] not in (None, "mine", context.idempotency_key)
    assert keys[3] is None  # GET carries no key
    assert receiver.seen[0].body == b'{"n":1}'
    assert receiver.seen[0].headers["content-type"] == "application/json"
    assert second["status"] == other_step["status"] == read["status"] == 201
    assert cut["truncated"] is True
    assert cut["body"].startswith("y" * 1000)
    assert cut["body"].endswith(f"[truncated: the response is longer than {MAX_RESPONSE_BYTES} bytes]")
    assert len(cut["body"].encode()) < MAX_RESPONSE_BYTES + 100
    assert len(receiver.seen) == 5  # the refused calls never reached the receiver


# --- tenant HTTP tools -------------------------------------------------------------------------


async def test_tenant_tool_fills_template_resolves_secret_and_validates(
    api: httpx.AsyncClient, tenant: TenantCtx, other_tenant: TenantCtx, engine: AsyncEngine, keyring: Keyring
) -> None:
    canary = f"sk-{uuid.uuid4().hex}"
    assert (await api.post("/v1/secrets", json={"name": "NOTES_KEY", "value": canary})).status_code == 201
    await allow_loopback(engine, tenant.id)
    async with Receiver([Reply(200, b'{"saved":true}', {"Content-Type": "application/json"})]) as receiver:
        add_note = {
            "name": "add_note",
            "description": "Add a note to an item.",
            "parameters": {
                "type": "object",
                "properties": {
                    "item_id": {"type": "string", "minLength": 1},
                    "note": {"type": "string"},
                    "priority": {"type": "integer", "minimum": 1, "maximum": 5},
                },
                "required": ["item_id", "note"],
                "additionalProperties": False,
            },
            "method": "POST",
            "url": receiver.url("/items/{item_id}/notes?src=agent"),
            "headers": {"Authorization": "Bearer {{secret:NOTES_KEY}}", "X-Static": "v"},
        }
        search = {
            "name": "search",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}, "limit": {"type": "integer"}}},
            "method": "GET",
            "url": receiver.url("/search"),
        }
        broken = add_note | {"name": "broken", "headers": {"X-Key": "{{secret:MISSING}}"}}
        assert (await api.post("/v1/secrets", json={"name": "MISSING", "value": "deleted below"})).status_code == 201
        for definition in (add_note, search, broken):
            created = await api.post("/v1/tools", json=definition)
            assert created.status_code == 201, created.text
            assert canary not in created.text
        assert (await api.delete("/v1/secrets/MISSING")).status_code == 204  # a run meets a deleted secret

        registry = TenantToolRegistry(engine, keyring)
        tool = await registry.get(tenant.id, "add_note")
        assert tool is not None
        assert tool.side_effects is True
        context = _context(tenant.id)
        result = await tool.call({"item_id": "a/b c", "note": "héllo", "priority": 2}, context)
        assert result["status"] == 200
        assert json.loads(result["body"]) == {"saved": True}

        found = await registry.get(tenant.id, "search")
        assert found is not None
        assert found.side_effects is False
        await found.call({"q": "x y&z", "limit": 3}, context)

        cases: list[tuple[dict[str, Any], str]] = [
            ({"note": "no id"}, "'item_id' is a required property"),
            ({"item_id": 5, "note": "n"}, "5 is not of type 'string'"),
            ({"item_id": "i", "note": "n", "priority": 9}, "9 is greater than the maximum of 5"),
            ({"item_id": "i", "note": "n", "extra": 1}, "Additional properties are not allowed"),
        ]
        for bad, message in cases:
            with pytest.raises(ToolError, match="invalid arguments") as error:
                await tool.call(bad, context)
            assert message in str(error.value)
        broken_tool = await registry.get(tenant.id, "broken")
        assert broken_tool is not None
        with pytest.raises(ToolError, match="secret 'MISSING'"):
            await broken_tool.call({"item_id": "i", "note": "n"}, context)

    assert len(receiver.seen) == 2
    posted, searched = receiver.seen
    assert posted.method == "POST"
    assert posted.path == "/items/a%2Fb%20c/notes?src=agent"
    assert posted.headers["authorization"] == f"Bearer {canary}"
    assert posted.headers["x-static"] == "v"
    assert posted.headers["idempotency-key"] == context.idempotency_key
    assert json.loads(posted.body) == {"note": "héllo", "priority": 2}
    assert searched.method == "GET"
    assert searched.path == "/search?q=x+y%26z&limit=3"
    assert "idempotency-key" not in searched.headers

    stored = (await api.get("/v1/tools/add_note")).json()
    assert stored["headers"]["Authorization"] == "Bearer {{secret:NOTES_KEY}}"
    assert canary not in (await api.get("/v1/tools")).text

    assert [s.name for s in await registry.schemas(tenant.id, ["search", "nope", "calculator", "add_note"])] == [
        "search",
        "add_note",
    ]
    assert await registry.get(other_tenant.id, "add_note") is None
    with pytest.raises(ToolError):
        await tool.call({"item_id": "i", "note": "n"}, _context(other_tenant.id))


async def test_tenant_tool_egress_is_guarded(
    api: httpx.AsyncClient, tenant: TenantCtx, engine: AsyncEngine, keyring: Keyring
) -> None:
    async with Receiver() as receiver:
        definition = WEATHER | {"name": "local", "url": receiver.url("/w/{city}"), "headers": {}}
        assert (await api.post("/v1/tools", json=definition)).status_code == 201
        registry = TenantToolRegistry(engine, keyring)
        tool = await registry.get(tenant.id, "local")
        assert tool is not None
        with pytest.raises(ToolError, match=r"127\.0\.0\.1 \(loopback\) is not allowed"):
            await tool.call({"city": "Paris"}, _context(tenant.id))
        assert receiver.seen == []
        platform = TenantToolRegistry(engine, keyring, platform_allowlist=["127.0.0.0/8"])
        allowed = await platform.get(tenant.id, "local")
        assert allowed is not None
        assert (await allowed.call({"city": "Paris"}, _context(tenant.id)))["status"] == 200
    assert receiver.seen[0].path == "/w/Paris"


async def test_layered_resolver_offers_builtins_then_tenant_tools(
    api: httpx.AsyncClient, tenant: TenantCtx, other_tenant: TenantCtx, engine: AsyncEngine, keyring: Keyring
) -> None:
    assert (await api.post("/v1/tools", json=WEATHER)).status_code == 201
    http_request = HttpRequestTool(allowlist_for=tenant_allowlist_loader(make_sessionmaker(engine)))
    tenant_tools: ToolResolver = TenantToolRegistry(engine, keyring)
    builtins: ToolResolver = ToolRegistry([*builtin_tools(), http_request])
    tools = LayeredToolResolver(builtins, tenant_tools)
    names = ["weather", "calculator", "nope", "http_request", "weather"]
    assert [s.name for s in await tools.schemas(tenant.id, names)] == ["weather", "calculator", "http_request"]
    assert [s.name for s in await tools.schemas(other_tenant.id, names)] == ["calculator", "http_request"]
    assert await tools.get(tenant.id, "http_request") is http_request
    weather = await tools.get(tenant.id, "weather")
    assert weather is not None
    assert weather.schema.parameters == WEATHER["parameters"]
    assert await tools.get(other_tenant.id, "weather") is None


async def test_a_tool_answer_the_database_refuses_fails_the_run_naming_the_step(
    api: httpx.AsyncClient, tenant: TenantCtx, engine: AsyncEngine
) -> None:
    """PostgreSQL cannot store NUL in text: the write fails at once with a typed error, never retried for ever."""
    await allow_loopback(engine, tenant.id)
    async with Receiver([Reply(200, b"nul \x00 here", {"Content-Type": "text/plain"})] * 5) as receiver:
        tool = {"name": "nul_answer", "parameters": {"type": "object"}, "method": "GET", "url": receiver.url("/nul")}
        assert (await api.post("/v1/tools", json=tool)).status_code == 201
        agent = await create_agent(tenant.http, name="nul", tools=["nul_answer"])
        started = await tenant.http.post(f"/v1/agents/{agent['id']}/runs", json={"input": "use nul_answer"})
        assert started.status_code in (200, 201, 202), started.text
        run = await wait_run(tenant.http, started.json()["id"], timeout_s=30)
    assert run["status"] == "failed", run
    assert run["error"]["type"] == "DatabaseRejected", run["error"]
    assert "agent_run.tool" in run["error"]["message"], run["error"]
    assert len(receiver.seen) == 1  # not retried
