"""The egress guard: refused address classes, allowlists, IP pinning, redirects, size cap, timeout."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import time
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core import egress
from core.egress import EgressDenied, EgressFailed, blocked_reason, check_url, guarded_request, parse_allowlist
from tests.support.receivers import Receiver, Reply

REFUSED = [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.1:8080/", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://10.1.2.3/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://169.254.10.1/", "link-local"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://[::1]/", "loopback"),
    ("http://[::]/", "unspecified"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fc00::1]/", "private"),
    ("http://[ff02::1]/", "multicast"),
    ("http://[fd00:ec2::254]/", "cloud metadata"),
    ("http://[::ffff:127.0.0.1]/", "loopback (embedded in IPv6)"),
    ("http://[::ffff:169.254.169.254]/", "cloud metadata (embedded in IPv6)"),
    ("http://[::ffff:10.0.0.1]/", "private (embedded in IPv6)"),
    ("http://[2002:7f00:1::]/", "loopback (embedded in IPv6)"),
    ("http://[64:ff9b::a00:1]/", "private (embedded in IPv6)"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
async def test_internal_addresses_are_refused(url: str, reason: str) -> None:
    with pytest.raises(EgressDenied) as denied:
        await check_url(url, allowlist=[])
    assert f"({reason})" in denied.value.reason


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)", "//example.com/"],
)
async def test_only_http_and_https(url: str) -> None:
    with pytest.raises(EgressDenied, match="scheme"):
        await check_url(url, allowlist=["0.0.0.0/0"])


async def test_credentials_in_url_are_refused() -> None:
    with pytest.raises(EgressDenied, match="credentials"):
        await check_url("https://user:pw@93.184.215.14/", allowlist=[])


async def test_public_address_is_allowed() -> None:
    target = await check_url("https://93.184.215.14:8443/x?y=1", allowlist=[])
    assert (target.scheme, target.host, target.port, target.addresses) == (
        "https",
        "93.184.215.14",
        8443,
        ("93.184.215.14",),
    )
    assert blocked_reason(ipaddress.ip_address("2606:4700:4700::1111")) is None


async def test_localhost_refused_unless_allowlisted_by_name_ip_or_cidr() -> None:
    with pytest.raises(EgressDenied, match=r"localhost resolves to 127\.0\.0\.1 \(loopback\)"):
        await check_url("http://localhost:9/", allowlist=["10.0.0.0/8", "example.com"])
    for entry in ("localhost", "LOCALHOST.", "127.0.0.1", "127.0.0.0/8"):
        target = await check_url("http://localhost:9/", allowlist=[entry])
        assert "127.0.0.1" in target.addresses
    assert (await check_url("http://127.0.0.1/", allowlist=["127.0.0.0/8"])).addresses == ("127.0.0.1",)
    assert (await check_url("http://[::1]/", allowlist=["::1"])).addresses == ("::1",)


async def test_metadata_needs_the_exact_address() -> None:
    for entries in (["169.254.0.0/16"], ["0.0.0.0/0"], ["169.254.169.254/31"]):
        with pytest.raises(EgressDenied, match="cloud metadata"):
            await check_url("http://169.254.169.254/", allowlist=entries)
    assert (await check_url("http://169.254.169.254/", allowlist=["169.254.169.254"])).addresses


def _fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    real = egress._resolve

    async def resolve(url: str, host: str, port: int) -> list[Any]:
        if host in answers:
            return [ipaddress.ip_address(a) for a in answers[host]]
        return await real(url, host, port)

    monkeypatch.setattr(egress, "_resolve", resolve)


async def test_suffix_patterns_and_mixed_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dns(
        monkeypatch,
        {
            "db.corp.example": ["10.0.0.5"],
            "corp.example": ["10.0.0.6"],
            "mixed.example": ["10.0.0.7", "93.184.215.14"],
            "meta.corp.example": ["169.254.169.254"],
        },
    )
    assert (await check_url("https://db.corp.example/", allowlist=["*.corp.example"])).addresses == ("10.0.0.5",)
    with pytest.raises(EgressDenied, match=r"corp\.example resolves to 10\.0\.0\.6 \(private\)"):
        await check_url("https://corp.example/", allowlist=["*.corp.example"])
    # only the public address of a mixed answer may be used
    assert (await check_url("https://mixed.example/", allowlist=[])).addresses == ("93.184.215.14",)
    # an allowlisted name still cannot reach the metadata service
    with pytest.raises(EgressDenied, match="cloud metadata"):
        await check_url("http://meta.corp.example/", allowlist=["*.corp.example"])


def test_parse_allowlist() -> None:
    assert parse_allowlist(" a.example, 10.0.0.0/8 ,,*.b.example ") == ["a.example", "10.0.0.0/8", "*.b.example"]
    assert parse_allowlist(None) == parse_allowlist("") == []


async def test_guarded_request_refuses_before_sending() -> None:
    async with Receiver() as receiver:
        with pytest.raises(EgressDenied):
            await guarded_request("GET", receiver.url(), allowlist=[])
        assert receiver.seen == []
        response = await guarded_request("GET", receiver.url("/a?b=1"), allowlist=["127.0.0.1"])
    assert (response.status, response.body, response.truncated) == (200, b"ok", False)
    assert receiver.seen[0].path == "/a?b=1"


async def test_connects_to_the_checked_address_with_the_original_host(monkeypatch: pytest.MonkeyPatch) -> None:
    # "pinned.invalid" does not resolve anywhere: the request can only succeed by using the checked address
    _fake_dns(monkeypatch, {"pinned.invalid": ["127.0.0.1"]})
    async with Receiver() as receiver:
        response = await guarded_request(
            "POST",
            receiver.url("/hook", host="pinned.invalid"),
            allowlist=["127.0.0.1"],
            headers={"Host": "evil.example", "X-Test": "1"},
            json={"a": 1},
        )
    assert response.status == 200
    seen = receiver.seen[0]
    assert seen.headers["host"] == f"pinned.invalid:{receiver.port}"
    assert seen.headers["x-test"] == "1"
    assert seen.headers["content-type"] == "application/json"
    assert seen.body == b'{"a":1}'


async def test_redirects_are_rechecked() -> None:
    async with Receiver() as receiver:
        receiver.handler = lambda seen: {
            "/to-metadata": Reply(302, headers={"Location": "http://169.254.169.254/latest/"}),
            "/to-private": Reply(307, headers={"Location": "http://10.0.0.1/"}),
            "/to-other-origin": Reply(302, headers={"Location": receiver.url("/final", host="localhost")}),
            "/loop": Reply(302, headers={"Location": "/loop"}),
            "/final": Reply(200, b"final"),
        }[seen.path.split("?")[0]]
        allow = ["127.0.0.1", "localhost"]
        with pytest.raises(EgressDenied, match="cloud metadata"):
            await guarded_request("GET", receiver.url("/to-metadata"), allowlist=allow, follow_redirects=True)
        with pytest.raises(EgressDenied, match="private"):
            await guarded_request("GET", receiver.url("/to-private"), allowlist=allow, follow_redirects=True)
        with pytest.raises(EgressFailed, match="more than 3 redirects"):
            await guarded_request("GET", receiver.url("/loop"), allowlist=allow, follow_redirects=True)
        assert len([s for s in receiver.seen if s.path == "/loop"]) == 4
        receiver.seen.clear()
        followed = await guarded_request(
            "GET",
            receiver.url("/to-other-origin"),
            allowlist=allow,
            headers={"Authorization": "Bearer secret", "X-Api-Key": "k", "Accept": "text/plain"},
            follow_redirects=True,
        )
        not_followed = await guarded_request("GET", receiver.url("/to-metadata"), allowlist=allow)
    assert (followed.status, followed.body, followed.url) == (200, b"final", receiver.url("/final", host="localhost"))
    first, second = receiver.seen[:2]
    assert first.headers["authorization"] == "Bearer secret"
    assert "authorization" not in second.headers
    assert "x-api-key" not in second.headers
    assert second.headers["accept"] == "text/plain"
    assert not_followed.status == 302
    assert not_followed.headers["location"] == "http://169.254.169.254/latest/"


async def test_response_size_cap() -> None:
    big = b"x" * (1024 * 1024)
    async with Receiver([Reply(200, big)]) as receiver:
        response = await guarded_request("GET", receiver.url(), allowlist=["127.0.0.1"], max_response_bytes=1000)
        whole = await guarded_request("GET", receiver.url(), allowlist=["127.0.0.1"], max_response_bytes=len(big))
    assert (len(response.body), response.truncated) == (1000, True)
    assert (len(whole.body), whole.truncated) == (len(big), False)


async def test_timeout_covers_the_whole_exchange() -> None:
    async with Receiver([Reply(200, b"late", delay_s=3)]) as receiver:
        started = time.monotonic()
        with pytest.raises(EgressFailed, match="timed out"):
            await guarded_request("GET", receiver.url(), allowlist=["127.0.0.1"], timeout_s=0.3)
        assert time.monotonic() - started < 2


async def test_unresolvable_and_unreachable_hosts_fail_typed() -> None:
    with pytest.raises(EgressFailed, match="cannot resolve"):
        await check_url("https://no-such-host.invalid/", allowlist=[])
    async with Receiver() as receiver:
        port = receiver.port
    with pytest.raises(EgressFailed, match="cannot connect"):
        await guarded_request("GET", f"http://127.0.0.1:{port}/", allowlist=["127.0.0.1"], timeout_s=2)


def _tls_contexts(tmp_path: Any, server_name: str) -> tuple[ssl.SSLContext, ssl.SSLContext, list[str]]:
    """(server context with a certificate for ``server_name``, client context trusting its CA, SNI names seen)."""
    now = dt.datetime.now(dt.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("test ca"))
        .issuer_name(name("test ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name(server_name))
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(server_name)]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "leaf.pem", tmp_path / "leaf.key"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    sni: list[str] = []

    def record_sni(_sock: ssl.SSLObject, requested: str | None, _ctx: ssl.SSLContext) -> None:
        sni.append(requested or "")

    server.sni_callback = record_sni
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server, client, sni


async def test_https_pins_the_address_but_verifies_the_host_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    _fake_dns(monkeypatch, {"api.pinned.invalid": ["127.0.0.1"], "evil.pinned.invalid": ["127.0.0.1"]})
    server, client, sni = _tls_contexts(tmp_path, "api.pinned.invalid")
    async with Receiver(tls=server) as receiver:
        response = await guarded_request(
            "GET", receiver.url("/secure", host="api.pinned.invalid"), allowlist=["127.0.0.1"], verify=client
        )
        # the certificate does not name this host: refused although the address is the same
        with pytest.raises(EgressFailed):
            await guarded_request(
                "GET", receiver.url("/", host="evil.pinned.invalid"), allowlist=["127.0.0.1"], verify=client
            )
    assert response.status == 200
    assert sni[0] == "api.pinned.invalid"
    assert sni[1] == "evil.pinned.invalid"
    assert receiver.seen[0].headers["host"] == f"api.pinned.invalid:{receiver.port}"
    assert len(receiver.seen) == 1
