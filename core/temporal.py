"""Temporal client construction shared by the API and the workers.

Connection options come from the settings: address and namespace, and for a secured cluster
or Temporal Cloud TLS (a CA bundle, an mTLS client certificate and key, a server name
override) and an API key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import structlog
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, Interceptor
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime
from temporalio.service import RPCError, TLSConfig

from core.codec import encrypted_data_converter
from core.crypto import Keyring
from core.ids import SEARCH_ATTRIBUTES
from core.settings import Settings
from core.type_hints import memoize_converter_type_hints

log = structlog.get_logger(__name__)


class TemporalTlsFileError(RuntimeError):
    """A Temporal TLS file of the settings cannot be read or is not PEM; the message names its variable."""


class MissingSearchAttributesError(RuntimeError):
    """The namespace lacks search attributes the platform's workflows write."""


def data_converter(settings: Settings) -> DataConverter:
    """Payload encryption (AES-GCM, failure attributes too) when enabled, else the default."""
    if settings.encrypt_payloads:
        return encrypted_data_converter(Keyring.from_setting(settings.encryption_keyring))
    return DataConverter.default


def tls_config(settings: Settings) -> TLSConfig | bool:
    """The ``tls`` argument of ``Client.connect``: ``False``, system roots (``True``), or a ``TLSConfig``."""
    if not settings.temporal_tls_enabled:
        return False
    ca, cert, key = settings.temporal_tls_ca_file, settings.temporal_tls_cert_file, settings.temporal_tls_key_file
    if not (ca or cert or settings.temporal_tls_server_name):
        return True
    return TLSConfig(
        server_root_ca_cert=_read_pem("AIMPACT_TEMPORAL_TLS_CA_FILE", ca),
        client_cert=_read_pem("AIMPACT_TEMPORAL_TLS_CERT_FILE", cert),
        client_private_key=_read_pem("AIMPACT_TEMPORAL_TLS_KEY_FILE", key),
        domain=settings.temporal_tls_server_name,
    )


def _read_pem(variable: str, path: Path | None) -> bytes | None:
    """The PEM file ``path`` names, read when a client connects (processes that never connect need not mount it).

    Raises:
        TemporalTlsFileError: It cannot be read or holds no PEM block.
    """
    if path is None:
        return None
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise TemporalTlsFileError(f"{variable}: cannot read {path} ({exc.strerror or exc})") from None
    if b"-----BEGIN " not in text:
        raise TemporalTlsFileError(f"{variable}: {path} is not a PEM file (no '-----BEGIN' line)")
    return text


async def connect_temporal(
    settings: Settings,
    *,
    attempts: int = 30,
    runtime: Runtime | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """Connect to the configured Temporal frontend, retrying while it starts."""
    memoize_converter_type_hints()
    delay = 0.2
    for attempt in range(1, attempts + 1):
        try:
            return await Client.connect(
                settings.temporal_target,
                namespace=settings.temporal_namespace,
                tls=tls_config(settings),
                api_key=settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None,
                data_converter=data_converter(settings),
                runtime=runtime,
                interceptors=interceptors,
            )
        except RuntimeError:
            if attempt == attempts:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


async def check_search_attributes(client: Client) -> None:
    """Refuse a namespace without the platform's Keyword search attributes (a run could not write them).

    A cluster that does not let this client list them (Temporal Cloud without operator rights)
    is only warned about: the README's operator guide says to register them first.

    Raises:
        MissingSearchAttributesError: One or more are absent or not of type Keyword.
    """
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError as exc:
        names = ", ".join(key.name for key in SEARCH_ATTRIBUTES)
        log.warning(
            f"search attributes not checked: make sure {names} are Keyword attributes of the namespace, "
            "or runs stop at their first status change",
            namespace=client.namespace,
            error=str(exc),
        )
        return
    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    missing = [key.name for key in SEARCH_ATTRIBUTES if listed.custom_attributes.get(key.name) != keyword]
    if missing:
        create = " && ".join(
            f"temporal operator search-attribute create --namespace {client.namespace} --name {name} --type Keyword"
            for name in missing
        )
        raise MissingSearchAttributesError(
            f"namespace {client.namespace!r} lacks the Keyword search attributes {', '.join(missing)}; "
            f"register them before starting workers (add --address and your TLS options): {create}"
        )
