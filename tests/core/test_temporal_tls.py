"""Temporal connection options for a secured cluster: validated at startup, used by every client."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import SecretStr, ValidationError
from temporalio.service import TLSConfig

from core.settings import Settings
from core.temporal import TemporalTlsFileError, connect_temporal, tls_config

SERVER_NAME = "temporal.internal"


@dataclass
class Pki:
    """A CA with a server certificate (for ``SERVER_NAME``) and a client certificate, as PEM files."""

    folder: Path
    files: dict[str, Path] = field(default_factory=dict)

    def write(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        self.files[name] = path
        return path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _issue(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, name: str, *, server: bool = False
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca[0].subject if ca else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
    )
    if ca is not None:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    return builder.sign(ca[1] if ca else key, hashes.SHA256()), key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    out = Pki(tmp_path_factory.mktemp("pki"))
    ca = _issue(None, "aimpact test CA")
    server = _issue(ca, SERVER_NAME, server=True)
    client = _issue(ca, "aimpact-worker")
    pem = serialization.Encoding.PEM
    out.write("ca.pem", ca[0].public_bytes(pem))
    out.write("server.pem", server[0].public_bytes(pem))
    out.write("server-key.pem", _key_pem(server[1]))
    out.write("client.pem", client[0].public_bytes(pem))
    out.write("client-key.pem", _key_pem(client[1]))
    out.write("not-pem.txt", b"just text\n")
    return out


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_cert_without_key_names_both_variables(pki: Pki) -> None:
    with pytest.raises(
        ValidationError, match="AIMPACT_TEMPORAL_TLS_CERT_FILE is set without AIMPACT_TEMPORAL_TLS_KEY_FILE"
    ):
        _settings(temporal_address="t:7233", temporal_tls_cert_file=pki.files["client.pem"])
    with pytest.raises(
        ValidationError, match="AIMPACT_TEMPORAL_TLS_KEY_FILE is set without AIMPACT_TEMPORAL_TLS_CERT_FILE"
    ):
        _settings(temporal_address="t:7233", temporal_tls_key_file=pki.files["client-key.pem"])


def test_unreadable_or_non_pem_files_are_named_when_a_client_connects(pki: Pki, tmp_path: Path) -> None:
    """Settings load without reading them (a migrate Job need not mount them); building the client names them."""
    missing = _settings(temporal_address="t:7233", temporal_tls_ca_file=tmp_path / "missing.pem")
    with pytest.raises(TemporalTlsFileError, match=r"AIMPACT_TEMPORAL_TLS_CA_FILE: cannot read .*missing\.pem"):
        tls_config(missing)
    not_pem = _settings(
        temporal_address="t:7233",
        temporal_tls_cert_file=pki.files["client.pem"],
        temporal_tls_key_file=pki.files["not-pem.txt"],
    )
    with pytest.raises(TemporalTlsFileError, match=r"AIMPACT_TEMPORAL_TLS_KEY_FILE: .*not a PEM file"):
        tls_config(not_pem)


def test_contradictions_are_refused(pki: Pki) -> None:
    with pytest.raises(ValidationError, match="AIMPACT_TEMPORAL_TLS is false but AIMPACT_TEMPORAL_TLS_CA_FILE"):
        _settings(temporal_address="t:7233", temporal_tls=False, temporal_tls_ca_file=pki.files["ca.pem"])
    with pytest.raises(ValidationError, match="needs AIMPACT_TEMPORAL_ADDRESS"):
        _settings(temporal_api_key=SecretStr("k" * 40))


def test_client_options_are_built_from_the_settings(pki: Pki) -> None:
    assert tls_config(_settings()) is False
    assert tls_config(_settings(temporal_address="ns.acct.tmprl.cloud:7233", temporal_api_key=SecretStr("x"))) is True
    assert tls_config(_settings(temporal_address="t:7233", temporal_tls=True)) is True
    built = tls_config(
        _settings(
            temporal_address="t:7233",
            temporal_tls_ca_file=pki.files["ca.pem"],
            temporal_tls_cert_file=pki.files["client.pem"],
            temporal_tls_key_file=pki.files["client-key.pem"],
            temporal_tls_server_name=SERVER_NAME,
        )
    )
    assert isinstance(built, TLSConfig)
    assert built.server_root_ca_cert == pki.files["ca.pem"].read_bytes()
    assert built.client_cert == pki.files["client.pem"].read_bytes()
    assert built.client_private_key == pki.files["client-key.pem"].read_bytes()
    assert built.domain == SERVER_NAME


@dataclass
class Handshakes:
    """What a TLS listener saw: the client certificate subjects of completed handshakes."""

    port: int = 0
    clients: list[str] = field(default_factory=list)


@pytest.fixture
async def mtls_listener(pki: Pki) -> AsyncIterator[Handshakes]:
    """A TLS endpoint that requires a client certificate signed by the test CA (it speaks no gRPC after)."""
    seen = Handshakes()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.files["ca.pem"]))
    context.load_cert_chain(pki.files["server.pem"], pki.files["server-key.pem"])
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert")
        seen.clients.append(dict(item[0] for item in peer["subject"])["commonName"])
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=context)
    seen.port = server.sockets[0].getsockname()[1]
    async with server:
        yield seen


async def test_the_platform_client_completes_an_mtls_handshake(pki: Pki, mtls_listener: Handshakes) -> None:
    """``connect_temporal`` presents the client certificate and verifies the server by CA and name."""
    mtls = _settings(
        temporal_address=f"127.0.0.1:{mtls_listener.port}",
        temporal_tls_ca_file=pki.files["ca.pem"],
        temporal_tls_cert_file=pki.files["client.pem"],
        temporal_tls_key_file=pki.files["client-key.pem"],
        temporal_tls_server_name=SERVER_NAME,
    )
    with pytest.raises(RuntimeError):  # the listener is no Temporal frontend: the RPC after the handshake fails
        await connect_temporal(mtls, attempts=1)
    assert "aimpact-worker" in mtls_listener.clients

    no_client_cert = _settings(
        temporal_address=f"127.0.0.1:{mtls_listener.port}",
        temporal_tls_ca_file=pki.files["ca.pem"],
        temporal_tls_server_name=SERVER_NAME,
    )
    accepted = len(mtls_listener.clients)
    with pytest.raises(RuntimeError):
        await connect_temporal(no_client_cert, attempts=1)
    assert len(mtls_listener.clients) == accepted  # refused: no certificate, no handshake

    wrong_name = _settings(
        temporal_address=f"127.0.0.1:{mtls_listener.port}",
        temporal_tls_ca_file=pki.files["ca.pem"],
        temporal_tls_cert_file=pki.files["client.pem"],
        temporal_tls_key_file=pki.files["client-key.pem"],
    )
    with pytest.raises(RuntimeError):  # the certificate names temporal.internal, not 127.0.0.1
        await connect_temporal(wrong_name, attempts=1)
    assert len(mtls_listener.clients) == accepted
