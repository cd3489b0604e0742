"""Tenant-defined HTTP tools (table ``tenant_tool``).

A tenant tool is a URL template, a method, headers and JSON-schema parameters:

- ``{param}`` placeholders in the path or query are filled from the validated
  arguments, percent-encoded (a ``/`` in a value cannot change the path);
- the other arguments go in the query string (``GET``, ``DELETE``) or in a JSON
  body (``POST``, ``PUT``, ``PATCH``);
- header values may reference tenant secrets as ``{{secret:NAME}}``; they are
  resolved from the :py:class:`core.secrets.SecretStore` at call time and only
  ever held in memory for the request;
- side-effecting tools send ``Idempotency-Key: <workflow id + step id>``;
- every request goes through the egress guard (:py:mod:`core.egress`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

import httpx
import jsonschema
from jsonschema.exceptions import SchemaError
from referencing.exceptions import Unresolvable
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.contracts.llm import ToolSchema
from core.crypto import DecryptionError, Keyring
from core.db.engine import make_sessionmaker
from core.db.models import TenantTool
from core.egress import EgressError, guarded_request, tenant_allowlist_loader
from core.errors import ToolError
from core.secrets import SecretStore
from core.tools.base import Tool, ToolContext, ToolResolver
from core.tools.http_request import MAX_RESPONSE_BYTES, check_arguments, check_request_headers, response_for_model

__all__ = [
    "METHODS",
    "RESERVED_TOOL_NAMES",
    "SECRET_REF",
    "TOOL_NAME",
    "LayeredToolResolver",
    "TenantHttpTool",
    "TenantToolRegistry",
    "TenantToolSpec",
    "parameters_problem",
    "secret_references",
    "url_placeholders",
    "url_template_problem",
]

TOOL_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,63}$")
RESERVED_TOOL_NAMES: frozenset[str] = frozenset(
    {"calculator", "current_time", "http_request", "memory_search", "memory_write", "run_agent"}
)
"""Built-in tool names a tenant tool may not take."""
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SECRET_REF = re.compile(r"\{\{secret:([A-Za-z0-9_.\-]{1,100})\}\}")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
MAX_SCHEMA_CHARS = 32_000


def url_placeholders(template: str) -> list[str]:
    """Names of the ``{param}`` placeholders of a URL template, in order (repeats dropped)."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(template)))


def secret_references(value: str) -> list[str]:
    """Secret names referenced as ``{{secret:NAME}}`` in a header value."""
    return SECRET_REF.findall(value)


def url_template_problem(template: str, properties: Mapping[str, Any] | None) -> str | None:
    """Why ``template`` is not a usable URL template for these parameter ``properties``, or ``None``.

    With ``properties=None`` the placeholders are not checked against declared parameters.
    """
    scheme, sep, rest = template.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return "must be an absolute http or https URL"
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "{" in authority or "}" in authority:
        return "placeholders are allowed in the path and query only, not in the host"
    undeclared = [name for name in url_placeholders(template) if properties is not None and name not in properties]
    if undeclared:
        return f"placeholders {', '.join(undeclared)} are not declared in parameters.properties"
    filled = _PLACEHOLDER.sub("x", template)
    if "{" in filled or "}" in filled:
        return "braces must form {name} placeholders"
    try:
        url = httpx.URL(filled)
    except (httpx.InvalidURL, ValueError) as exc:
        return f"not a valid URL: {exc}"
    if not url.host:
        return "has no host"
    if url.userinfo:
        return "must not contain credentials; put them in a header with a {{secret:NAME}} reference"
    return None


def _refs(schema: Any) -> list[str]:
    found: list[str] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                    found.append(value)
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _pointer_resolves(schema: Any, ref: str) -> bool:
    """Whether the local reference ``#/a/b`` names a value inside ``schema``."""
    pointer = unquote(ref[1:])
    if not pointer:
        return True
    if not pointer.startswith("/"):
        return False  # anchors (#name) are not supported
    node = schema
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False
    return True


def parameters_problem(schema: Any) -> str | None:
    """Why ``schema`` is not a usable parameters schema (a JSON Schema of an object), or ``None``."""
    if not isinstance(schema, dict):
        return "must be a JSON Schema object"
    if schema.get("type") != "object":
        return 'must describe an object ("type": "object")'
    if len(json.dumps(schema)) > MAX_SCHEMA_CHARS:
        return f"longer than {MAX_SCHEMA_CHARS} characters"
    refs = _refs(schema)
    remote = [ref for ref in refs if not ref.startswith("#")]
    if remote:
        return f"only local $ref (#/...) are allowed, not {remote[0]!r}"
    dangling = [ref for ref in refs if not _pointer_resolves(schema, ref)]
    if dangling:
        return f"$ref {dangling[0]!r} points to nothing in the schema"
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"not a valid JSON Schema{f' at {where}' if where else ''}: {exc.message}"
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        return "properties must be an object"
    return None


@dataclass(frozen=True)
class TenantToolSpec:
    """What a tenant tool does (the ``tenant_tool`` row, detached from the session)."""

    tenant_id: str
    name: str
    description: str
    parameters: dict[str, Any]
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    side_effects: bool = True
    timeout_s: float = 30.0

    @classmethod
    def of(cls, row: TenantTool) -> TenantToolSpec:
        """The spec of a stored tool."""
        return cls(
            tenant_id=row.tenant_id,
            name=row.name,
            description=row.description,
            parameters=dict(row.parameters),
            method=row.method.upper(),
            url=row.url,
            headers=dict(row.headers),
            side_effects=row.side_effects,
            timeout_s=row.timeout_s,
        )


SecretResolver = Callable[[str, str], Awaitable[str | None]]
"""``resolve(tenant_id, name)`` → the secret's plaintext, or ``None`` when unset."""
AllowlistFor = Callable[[str], Awaitable[list[str]]]


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class TenantHttpTool:
    """One tenant tool, callable by the model like a built-in one."""

    def __init__(
        self,
        spec: TenantToolSpec,
        *,
        resolve_secret: SecretResolver,
        allowlist_for: AllowlistFor,
        platform_allowlist: Sequence[str] = (),
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ):
        """Build the tool from its spec and the resolvers it needs at call time."""
        self.spec = spec
        self.schema = ToolSchema(name=spec.name, description=spec.description, parameters=spec.parameters)
        self.side_effects = spec.side_effects
        self.pure = False  # it reaches the network
        self._resolve_secret = resolve_secret
        self._allowlist_for = allowlist_for
        self._platform = list(platform_allowlist)
        self._max_bytes = max_response_bytes

    def _validate(self, arguments: dict[str, Any]) -> None:
        try:
            check_arguments(jsonschema.Draft202012Validator(self.spec.parameters), arguments)
        except (SchemaError, Unresolvable, re.error, RecursionError) as exc:
            raise ToolError(f"the tool's parameter schema is invalid: {type(exc).__name__}") from None

    def _url(self, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The filled URL and the arguments it did not use."""
        used = url_placeholders(self.spec.url)
        missing = [name for name in used if arguments.get(name) is None]
        if missing:
            raise ToolError(f"missing argument(s) for the URL: {', '.join(missing)}")

        def fill(match: re.Match[str]) -> str:
            return quote(_as_text(arguments[match.group(1)]), safe="")

        rest = {k: v for k, v in arguments.items() if k not in used}
        return _PLACEHOLDER.sub(fill, self.spec.url), rest

    async def _headers(self, tenant_id: str) -> dict[str, str]:
        cache: dict[str, str] = {}
        resolved: dict[str, str] = {}
        for name, value in self.spec.headers.items():
            for secret in secret_references(value):
                if secret not in cache:
                    try:
                        plaintext = await self._resolve_secret(tenant_id, secret)
                    except DecryptionError:
                        plaintext = None
                    if plaintext is None:
                        raise ToolError(f"secret {secret!r} referenced by header {name!r} is not set")
                    if any(c in plaintext for c in "\r\n\x00"):
                        raise ToolError(f"secret {secret!r} cannot be used in a header (line breaks)")
                    cache[secret] = plaintext
            resolved[name] = SECRET_REF.sub(lambda m: cache[m.group(1)], value)
        return resolved

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> Any:
        """Validate the arguments, fill the template, resolve secrets, send the request."""
        if context.tenant_id != self.spec.tenant_id:
            raise ToolError(f"unknown tool {self.spec.name!r}")
        if not isinstance(arguments, dict):
            raise ToolError("arguments must be an object")
        self._validate(arguments)
        url, rest = self._url(arguments)
        method = self.spec.method
        headers = await self._headers(context.tenant_id)
        try:
            headers = check_request_headers(headers)
        except ToolError as exc:
            raise ToolError(f"the tool's headers are invalid: {exc}") from None
        if self.side_effects:
            headers = {k: v for k, v in headers.items() if k.lower() != "idempotency-key"}
            headers["Idempotency-Key"] = context.idempotency_key
        body: Any = None
        if method in _BODY_METHODS:
            body = rest
        elif rest:
            query = httpx.QueryParams(
                [(k, _as_text(item)) for k, v in rest.items() for item in (v if isinstance(v, list) else [v])]
            )
            url = str(httpx.URL(url).copy_merge_params(query))
        allowlist = self._platform + await self._allowlist_for(context.tenant_id)
        try:
            response = await guarded_request(
                method,
                url,
                allowlist=allowlist,
                headers=headers,
                json=body,
                timeout_s=self.spec.timeout_s,
                max_response_bytes=self._max_bytes,
                follow_redirects=not self.side_effects,
            )
        except EgressError as exc:
            raise ToolError(str(exc)) from None
        return response_for_model(response, cap=self._max_bytes)


class TenantToolRegistry:
    """Loads a tenant's tools from the database, with secrets resolved through the keyring."""

    def __init__(
        self,
        sessions: AsyncEngine | async_sessionmaker[AsyncSession],
        keyring: Keyring,
        *,
        platform_allowlist: Sequence[str] = (),
        allowlist_for: AllowlistFor | None = None,
    ):
        """Build the registry.

        Args:
            sessions: An engine or session factory of the app database.
            keyring: Decrypts tenant secrets.
            platform_allowlist: Entries of ``AIMPACT_EGRESS_ALLOWLIST``.
            allowlist_for: Tenant allowlist loader (default: the tenant row's ``egress_allowlist``).
        """
        self._sessions = make_sessionmaker(sessions) if isinstance(sessions, AsyncEngine) else sessions
        self._keyring = keyring
        self._platform = list(platform_allowlist)
        self._allowlist_for = allowlist_for or tenant_allowlist_loader(self._sessions)

    async def _resolve_secret(self, tenant_id: str, name: str) -> str | None:
        async with self._sessions() as session:
            return await SecretStore(session, tenant_id, self._keyring).reveal(name)

    def _tool(self, row: TenantTool) -> TenantHttpTool:
        return TenantHttpTool(
            TenantToolSpec.of(row),
            resolve_secret=self._resolve_secret,
            allowlist_for=self._allowlist_for,
            platform_allowlist=self._platform,
        )

    async def get(self, tenant_id: str, name: str) -> Tool | None:
        """The tenant's tool ``name``, or ``None``."""
        async with self._sessions() as session:
            result = await session.exec(
                select(TenantTool).where(TenantTool.tenant_id == tenant_id, TenantTool.name == name)
            )
            row = result.first()
        return self._tool(row) if row is not None else None

    async def tools(self, tenant_id: str, names: Sequence[str] | None = None) -> list[Tool]:
        """The tenant's tools (those in ``names`` when given), by name."""
        query = select(TenantTool).where(TenantTool.tenant_id == tenant_id)
        if names is not None:
            if not names:
                return []
            query = query.where(col(TenantTool.name).in_(list(names)))
        async with self._sessions() as session:
            rows = (await session.exec(query.order_by(col(TenantTool.name)))).all()
        return [self._tool(row) for row in rows]

    async def schemas(self, tenant_id: str, names: Sequence[str]) -> list[ToolSchema]:
        """Schemas of the tenant's tools among ``names`` (unknown names are skipped), in ``names`` order."""
        found = {tool.schema.name: tool.schema for tool in await self.tools(tenant_id, names)}
        return [found[name] for name in dict.fromkeys(names) if name in found]


class LayeredToolResolver:
    """Several resolvers as one: the first that knows a name wins (built-ins first, then tenant tools)."""

    def __init__(self, *resolvers: ToolResolver):
        self._resolvers = resolvers

    async def get(self, tenant_id: str, name: str) -> Tool | None:
        """The tool ``name`` as seen by ``tenant_id``."""
        for resolver in self._resolvers:
            tool = await resolver.get(tenant_id, name)
            if tool is not None:
                return tool
        return None

    async def schemas(self, tenant_id: str, names: list[str]) -> list[ToolSchema]:
        """Schemas of the named tools that exist, in ``names`` order."""
        found: dict[str, ToolSchema] = {}
        for resolver in self._resolvers:
            missing = [name for name in dict.fromkeys(names) if name not in found]
            if not missing:
                break
            for schema in await resolver.schemas(tenant_id, missing):
                found.setdefault(schema.name, schema)
        return [found[name] for name in dict.fromkeys(names) if name in found]
