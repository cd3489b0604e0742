"""Temporal payload encryption: a :py:class:`PayloadCodec` over :py:class:`core.crypto.Keyring`.

Each payload is serialized whole (metadata and data) and sealed, so neither the
value nor its original encoding is visible in workflow history. Payloads that do
not carry the encrypted encoding pass through :py:meth:`EncryptionCodec.decode`
unchanged, so histories written before encryption was turned on still read.

Search attributes are never sent through a codec: they stay plaintext (keep PII
out of them). Encryption adds about 90 bytes per payload (with a 2-character key id).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

from core.crypto import DecryptionError, Keyring

__all__ = ["ENCODING", "KEY_ID_METADATA", "EncryptionCodec", "encrypted_data_converter"]

ENCODING = b"binary/encrypted"
"""``encoding`` metadata of an encrypted payload."""

KEY_ID_METADATA = "encryption-key-id"
"""Metadata key naming the key that sealed a payload (informational; the ciphertext names it too)."""

_AAD = b"aimpact/temporal-payload/v1"
"""Binds ciphertexts to this use, so a sealed tenant secret cannot pose as a payload."""


class EncryptionCodec(PayloadCodec):
    """Encrypts every payload with the keyring's active key; decrypts with the key each names."""

    def __init__(self, keyring: Keyring) -> None:
        """Build the codec.

        Args:
            keyring: Keys to seal and open payloads with.
        """
        super().__init__()
        self._keyring = keyring

    @property
    def keyring(self) -> Keyring:
        """The keyring in use."""
        return self._keyring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Seal each payload into a ``binary/encrypted`` payload."""
        return [self._seal(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Open ``binary/encrypted`` payloads; return all others unchanged.

        Raises:
            DecryptionError: An encrypted payload cannot be opened (the message
                gives its index).
        """
        return [self._open(index, payload) for index, payload in enumerate(payloads)]

    def _seal(self, payload: Payload) -> Payload:
        blob = self._keyring.encrypt(payload.SerializeToString(), aad=_AAD)
        key_id = self._keyring.key_id_of(blob)
        return Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode("ascii")}, data=blob)

    def _open(self, index: int, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        try:
            return Payload.FromString(self._keyring.decrypt(payload.data, aad=_AAD))
        except DecryptionError as exc:
            raise DecryptionError(f"payload {index}: {exc}") from None
        except DecodeError:
            raise DecryptionError(f"payload {index}: decrypted bytes are not a payload") from None


def encrypted_data_converter(keyring: Keyring) -> DataConverter:
    """The default data converter with payloads and failure messages encrypted.

    Failures use :py:class:`DefaultFailureConverterWithEncodedAttributes`, which
    moves error messages and stack traces into an encoded (so encrypted)
    attribute; history shows only ``"Encoded failure"``.

    Args:
        keyring: Keys for :py:class:`EncryptionCodec`.

    Returns:
        A converter for ``Client.connect(..., data_converter=...)``.
    """
    return dataclasses.replace(
        DataConverter.default,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
