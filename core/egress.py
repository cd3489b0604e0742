"""Outbound request guard for every URL a tenant configures.

Tenant tools, the ``http_request`` tool, webhooks (and provider ``base_url``\\ s)
send requests to URLs that tenants choose. Before such a request is made,
:py:func:`check_url` resolves the host and refuses addresses inside the
platform: private, loopback, link-local, multicast, reserved, unspecified,
CGNAT (``100.64.0.0/10``), IPv6 forms that embed one of those (IPv4-mapped,
IPv4-compatible, 6to4, Teredo, NAT64) and cloud metadata endpoints — unless
the host name or the address is on the allowlist.

The allowlist is the platform's (``AIMPACT_EGRESS_ALLOWLIST``, comma-separated,
see :py:func:`parse_allowlist`) plus the tenant's own ``egress_allowlist``.
An entry is an exact host name (``api.internal``), a suffix pattern
(``*.corp.example`` — any subdomain, not the apex), an IP address or a CIDR
(``10.1.0.0/16``). Metadata addresses are the one exception: they are only
reachable when the allowlist names that exact address.

:py:func:`guarded_request` is the HTTP client for such URLs. It connects to an
address that :py:func:`check_url` approved — never resolving the name a second
time, so a DNS answer that changes between check and connect (DNS rebinding)
cannot steer it inside — while the ``Host`` header and TLS SNI/certificate
checks still use the host name. Redirects are re-checked hop by hop, response
bodies are capped, and one deadline covers resolution, connection, redirects
and the body. Proxy environment variables are ignored.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json as _json
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from core.db.models import Tenant
from core.errors import DomainError

__all__ = [
    "METADATA_ADDRESSES",
    "EgressDenied",
    "EgressError",
    "EgressFailed",
    "GuardedResponse",
    "ResolvedTarget",
    "blocked_reason",
    "check_url",
    "guarded_request",
    "parse_allowlist",
    "tenant_allowlist_loader",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, ...
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
    }
)
"""Cloud instance-metadata endpoints: reachable only when the allowlist names the exact address."""

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SAFE_ACROSS_ORIGINS = frozenset({"accept", "accept-language", "user-agent", "idempotency-key"})
"""Headers kept when a redirect leaves the origin; the others may carry credentials."""
_MAX_REDIRECTS = 3


class EgressError(DomainError):
    """An outbound request was not made or did not complete."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{reason} ({_redact(url)})")
        self.url = url
        self.reason = reason


class EgressDenied(EgressError):  # noqa: N818 - the name the platform documents
    """The egress policy refuses the URL: bad scheme, or an address inside the platform."""


class EgressFailed(EgressError):  # noqa: N818 - pairs with EgressDenied
    """The request was allowed but failed: DNS, connection, TLS, timeout or too many redirects."""


@dataclass(frozen=True)
class ResolvedTarget:
    """A URL that passed the egress check, with the addresses it may connect to."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]
    """Permitted addresses in resolution order; connect only to these."""
    allowlisted: bool
    """Whether the host name itself matched the allowlist."""


@dataclass(frozen=True)
class GuardedResponse:
    """The response of :py:func:`guarded_request` (body read up to the cap)."""

    status: int
    headers: dict[str, str]
    """Lower-cased names; repeated headers joined with ``", "``."""
    body: bytes
    truncated: bool
    url: str = ""
    """The URL that answered (after redirects)."""
    redirects: list[str] = field(default_factory=list)

    def text(self) -> str:
        """The body as text (charset from ``Content-Type``, else UTF-8; undecodable bytes replaced)."""
        charset = "utf-8"
        for part in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip("\"' ")
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


def parse_allowlist(setting: str | None) -> list[str]:
    """``"host,*.suffix,10.0.0.0/8"`` → its entries (blanks dropped)."""
    return [entry.strip() for entry in (setting or "").split(",") if entry.strip()]


@dataclass(frozen=True)
class _Allowlist:
    hosts: frozenset[str]
    suffixes: tuple[str, ...]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def of(cls, entries: Sequence[str]) -> _Allowlist:
        hosts: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*."):
                suffixes.append(entry[1:])
            else:
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(suffixes), tuple(networks))

    def host_allowed(self, host: str) -> bool:
        return host in self.hosts or any(host.endswith(suffix) for suffix in self.suffixes)

    def address_allowed(self, address: IPAddress) -> bool:
        if address in METADATA_ADDRESSES:
            return any(net.num_addresses == 1 and address in net for net in self.networks)
        return any(address.version == net.version and address in net for net in self.networks)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo client, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` is inside the platform (``"loopback"``, ``"private"``…), or ``None`` if public."""
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = blocked_reason(embedded)
            if inner is not None:
                return f"{inner} (embedded in IPv6)"
    checks: tuple[tuple[bool, str], ...] = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "carrier-grade NAT"),
        (address.is_reserved, "reserved"),
        (address.is_private, "private"),
        (not address.is_global, "not globally routable"),
    )
    for blocked, reason in checks:
        if blocked:
            return reason
    return None


def _redact(url: str) -> str:
    """The URL without userinfo, query or fragment (they may carry secrets)."""
    try:
        parsed = httpx.URL(url)
        return str(parsed.copy_with(query=None, fragment=None, username=None, password=None))
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid url>"


def _parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise EgressDenied(url, f"not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise EgressDenied(url, f"scheme {parsed.scheme or '(none)'!r} is not allowed; use http or https")
    if not parsed.host:
        raise EgressDenied(url, "the URL has no host")
    if parsed.userinfo:
        raise EgressDenied(url, "credentials in the URL are not allowed; send them in a header")
    return parsed


async def _resolve(url: str, host: str, port: int) -> list[IPAddress]:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise EgressFailed(url, f"cannot resolve {host}: {exc}") from None
    addresses: list[IPAddress] = []
    for family, *_, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise EgressFailed(url, f"{host} has no IPv4/IPv6 address")
    return addresses


async def check_url(url: str, *, allowlist: Sequence[str]) -> ResolvedTarget:
    """Validate ``url`` and resolve its host against the egress policy.

    Args:
        url: An absolute ``http``/``https`` URL without credentials.
        allowlist: Platform and tenant entries (hosts, ``*.suffix``, IPs, CIDRs).

    Returns:
        The target with the addresses a request may connect to.

    Raises:
        EgressDenied: Bad scheme or URL, or every address is inside the platform.
        EgressFailed: The host does not resolve.
    """
    parsed = _parse(url)
    host = parsed.raw_host.decode("ascii").lower().rstrip(".")  # IDNA (punycode) form
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    rules = _Allowlist.of(allowlist)
    host_allowed = rules.host_allowed(host)
    permitted: list[str] = []
    refused: list[str] = []
    addresses = await _resolve(url, host, port)
    for address in addresses:
        reason = blocked_reason(address)
        if address in METADATA_ADDRESSES:
            ok = rules.address_allowed(address)
        else:
            ok = reason is None or host_allowed or rules.address_allowed(address)
        if ok:
            permitted.append(str(address))
        else:
            refused.append(f"{address} ({reason})")
    if not permitted:
        literal = len(addresses) == 1 and str(addresses[0]) == host.strip("[]")
        subject = ", ".join(refused) if literal else f"{host} resolves to {', '.join(refused)}, which"
        raise EgressDenied(url, f"{subject} is not allowed; add the host or its CIDR to the egress allowlist")
    return ResolvedTarget(
        url=url,
        scheme=parsed.scheme,
        host=host,
        port=port,
        addresses=tuple(permitted),
        allowlisted=host_allowed,
    )


def _pinned_url(parsed: httpx.URL, address: str) -> httpx.URL:
    ip = ipaddress.ip_address(address)
    return parsed.copy_with(host=f"[{ip}]" if ip.version == 6 else str(ip))


def _host_header(parsed: httpx.URL) -> str:
    host = parsed.raw_host.decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    return host if parsed.port is None else f"{host}:{parsed.port}"


def _same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return (a.scheme, a.raw_host.lower(), a.port) == (b.scheme, b.raw_host.lower(), b.port)


def _joined_headers(headers: httpx.Headers) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.multi_items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


async def _send_once(
    client: httpx.AsyncClient,
    target: ResolvedTarget,
    method: str,
    headers: httpx.Headers,
    content: bytes | None,
    max_response_bytes: int,
) -> tuple[httpx.Response, bytes, bool]:
    parsed = httpx.URL(target.url)
    request_headers = httpx.Headers(headers)
    request_headers["Host"] = _host_header(parsed)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    last_error: Exception | None = None
    for address in target.addresses:
        try:
            async with client.stream(
                method,
                _pinned_url(parsed, address),
                headers=request_headers,
                content=content,
                extensions=extensions,
            ) as response:
                chunks: list[bytes] = []
                size = 0
                truncated = False
                async for chunk in response.aiter_bytes():
                    if size + len(chunk) > max_response_bytes:
                        chunks.append(chunk[: max_response_bytes - size])
                        truncated = True
                        break
                    chunks.append(chunk)
                    size += len(chunk)
                return response, b"".join(chunks), truncated
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            last_error = exc  # nothing was sent: try the next permitted address
    raise EgressFailed(target.url, f"cannot connect to {target.host}:{target.port}: {last_error}")


async def guarded_request(
    method: str,
    url: str,
    *,
    allowlist: Sequence[str],
    headers: Mapping[str, str] | None = None,
    content: bytes | str | None = None,
    json: Any = None,
    timeout_s: float = 15.0,
    max_response_bytes: int = 256 * 1024,
    follow_redirects: bool = False,
    max_redirects: int = _MAX_REDIRECTS,
    verify: bool | ssl.SSLContext = True,
) -> GuardedResponse:
    """Send one HTTP request to a tenant-configured URL under the egress policy.

    Args:
        method: HTTP method.
        url: Absolute http(s) URL.
        allowlist: Platform + tenant allowlist entries.
        headers: Request headers (a ``Host`` header is replaced).
        content: Raw body; mutually exclusive with ``json``.
        json: A value sent as a JSON body.
        timeout_s: Deadline for the whole exchange, redirects and body included.
        max_response_bytes: Body bytes kept (after content decoding); the rest is not read.
        follow_redirects: Follow up to ``max_redirects`` redirects, each re-checked.
        max_redirects: Hop limit when following.
        verify: Verify TLS certificates against the host name (or the trust store of this context).

    Returns:
        Status, headers and (possibly truncated) body.

    Raises:
        EgressDenied: The URL or a redirect target is refused by the policy.
        EgressFailed: Resolution, connection, TLS or protocol failure, timeout, or too many redirects.
    """
    if content is not None and json is not None:
        raise ValueError("give content or json, not both")
    body: bytes | None
    request_headers = httpx.Headers(dict(headers or {}))
    if json is not None:
        body = _json.dumps(json, separators=(",", ":"), ensure_ascii=False).encode()
        request_headers.setdefault("Content-Type", "application/json")
    else:
        body = content.encode() if isinstance(content, str) else content
    for hop in ("host", "content-length", "transfer-encoding", "connection"):
        request_headers.pop(hop, None)
    method = method.upper()
    current = url
    redirects: list[str] = []
    try:
        async with (
            asyncio.timeout(timeout_s),
            httpx.AsyncClient(
                trust_env=False,
                follow_redirects=False,
                verify=verify,
                timeout=httpx.Timeout(timeout_s),
            ) as client,
        ):
            while True:
                target = await check_url(current, allowlist=allowlist)
                response, data, truncated = await _send_once(
                    client, target, method, request_headers, body, max_response_bytes
                )
                location = response.headers.get("location")
                if not follow_redirects or response.status_code not in _REDIRECTS or not location:
                    return GuardedResponse(
                        status=response.status_code,
                        headers=_joined_headers(response.headers),
                        body=data,
                        truncated=truncated,
                        url=current,
                        redirects=redirects,
                    )
                if len(redirects) >= max_redirects:
                    raise EgressFailed(url, f"more than {max_redirects} redirects")
                try:
                    following = httpx.URL(current).join(location)
                except (httpx.InvalidURL, ValueError) as exc:
                    raise EgressFailed(url, f"invalid redirect location: {exc}") from None
                if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                    method = "GET" if method != "HEAD" else method
                    body = None
                    request_headers.pop("content-type", None)
                if not _same_origin(httpx.URL(current), following):
                    for name in list(request_headers.keys()):
                        if name.lower() not in _SAFE_ACROSS_ORIGINS and not (
                            body is not None and name.lower() == "content-type"
                        ):
                            request_headers.pop(name, None)
                current = str(following)
                redirects.append(current)
    except TimeoutError:
        raise EgressFailed(url, f"timed out after {timeout_s:g}s") from None
    except httpx.TimeoutException:
        raise EgressFailed(url, f"timed out after {timeout_s:g}s") from None
    except httpx.HTTPError as exc:
        raise EgressFailed(url, f"request failed: {type(exc).__name__}: {exc}") from None


def tenant_allowlist_loader(
    sessions: async_sessionmaker[AsyncSession],
) -> Callable[[str], Awaitable[list[str]]]:
    """``allowlist_for(tenant_id)``: the tenant's own ``egress_allowlist`` (read at each call)."""

    async def allowlist_for(tenant_id: str) -> list[str]:
        async with sessions() as session:
            tenant = await session.get(Tenant, tenant_id)
        return list(tenant.egress_allowlist) if tenant is not None else []

    return allowlist_for
