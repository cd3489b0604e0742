"""EncryptionCodec and the encrypted data converter, with real AES-GCM."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from temporalio.api.common.v1 import Payload, WorkflowExecution
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.exceptions import ApplicationError

from core.codec import ENCODING, KEY_ID_METADATA, EncryptionCodec, encrypted_data_converter
from core.crypto import KEY_BYTES, DecryptionError, Keyring

CANARY = "canary-0b7e41d2"
K1 = os.urandom(KEY_BYTES)
K2 = os.urandom(KEY_BYTES)


@dataclass
class Sample:
    """A dataclass value like the project's contracts."""

    name: str
    count: int = 0


VALUES: list[object] = [
    None,
    CANARY.encode(),
    f"plain {CANARY}",
    {"input": CANARY, "n": 3},
    Sample(name=CANARY, count=2),
    WorkflowExecution(workflow_id=CANARY, run_id="r"),
]


def _payloads() -> list[Payload]:
    return DataConverter.default.payload_converter.to_payloads(VALUES)


def test_sample_payloads_cover_several_encodings() -> None:
    encodings = {p.metadata["encoding"] for p in _payloads()}
    assert {b"binary/null", b"binary/plain", b"json/plain", b"json/protobuf"} <= encodings


async def test_round_trip_of_every_encoding() -> None:
    codec = EncryptionCodec(Keyring({"k1": K1}, active="k1"))
    originals = _payloads()
    encoded = await codec.encode(originals)
    assert len(encoded) == len(originals)
    for payload in encoded:
        assert dict(payload.metadata) == {"encoding": ENCODING, KEY_ID_METADATA: b"k1"}
        assert CANARY.encode() not in payload.SerializeToString()
    decoded = await codec.decode(encoded)
    assert decoded == originals
    assert (
        DataConverter.default.payload_converter.from_payloads(decoded, [type(None), bytes, str, dict, Sample])
        == VALUES[:5]
    )


async def test_encode_does_not_mutate_input() -> None:
    codec = EncryptionCodec(Keyring({"k1": K1}, active="k1"))
    originals = _payloads()
    snapshot = [Payload.FromString(p.SerializeToString()) for p in originals]
    await codec.encode(originals)
    assert originals == snapshot


async def test_decode_leaves_unencrypted_payloads_untouched() -> None:
    codec = EncryptionCodec(Keyring({"k1": K1}, active="k1"))
    plain = _payloads()
    encrypted = await codec.encode(plain[:2])
    mixed = [plain[2], encrypted[0], plain[3], encrypted[1], Payload()]
    decoded = await codec.decode(mixed)
    assert decoded == [plain[2], plain[0], plain[3], plain[1], Payload()]
    assert decoded[0] is plain[2]  # passed through as is


async def test_rotation_through_the_codec() -> None:
    old = EncryptionCodec(Keyring({"k1": K1}, active="k1"))
    encoded_with_k1 = await old.encode(_payloads())

    new = EncryptionCodec(old.keyring.with_active_key("k2", K2))
    assert await new.decode(encoded_with_k1) == _payloads()
    encoded_with_k2 = await new.encode(_payloads())
    assert {p.metadata[KEY_ID_METADATA] for p in encoded_with_k2} == {b"k2"}
    assert all(new.keyring.needs_rotation(p.data) for p in encoded_with_k1)
    with pytest.raises(DecryptionError, match="payload 0: unknown encryption key id 'k2'"):
        await old.decode(encoded_with_k2)


async def test_tampered_payload_names_its_index() -> None:
    codec = EncryptionCodec(Keyring({"k1": K1}, active="k1"))
    encoded = await codec.encode(_payloads()[:2])
    data = bytearray(encoded[1].data)
    data[-1] ^= 0x80
    tampered = [encoded[0], Payload(metadata=dict(encoded[1].metadata), data=bytes(data))]
    with pytest.raises(DecryptionError, match="payload 1: authentication failed"):
        await codec.decode(tampered)


async def test_other_ciphertexts_of_the_keyring_are_not_payloads() -> None:
    """A sealed tenant secret cannot be replayed into history as a payload (distinct aad)."""
    keyring = Keyring({"k1": K1}, active="k1")
    secret_blob = keyring.encrypt(Payload(data=b"x").SerializeToString())
    forged = Payload(metadata={"encoding": ENCODING}, data=secret_blob)
    with pytest.raises(DecryptionError, match="payload 0: authentication failed"):
        await EncryptionCodec(keyring).decode([forged])


async def test_encrypted_data_converter_round_trip() -> None:
    converter = encrypted_data_converter(Keyring({"k1": K1}, active="k1"))
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert isinstance(converter.failure_converter, DefaultFailureConverterWithEncodedAttributes)
    assert converter.payload_converter_class is DataConverter.default.payload_converter_class
    payloads = await converter.encode(VALUES[:5])
    assert all(p.metadata["encoding"] == ENCODING for p in payloads)
    assert await converter.decode(payloads, [type(None), bytes, str, dict, Sample]) == VALUES[:5]
    # The shared default converter is left alone.
    assert DataConverter.default.payload_codec is None


async def test_failure_message_and_stack_trace_are_encrypted() -> None:
    converter = encrypted_data_converter(Keyring({"k1": K1}, active="k1"))
    try:
        raise ApplicationError(f"tool failed for {CANARY}", {"detail": CANARY}, type="ToolFailed")
    except ApplicationError as exc:
        error = exc
    failure = Failure()
    await converter.encode_failure(error, failure)
    assert failure.message == "Encoded failure"
    assert CANARY.encode() not in failure.SerializeToString()
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING

    decoded = await converter.decode_failure(failure)
    assert isinstance(decoded, ApplicationError)
    assert decoded.message == f"tool failed for {CANARY}"
    assert decoded.type == "ToolFailed"
    assert decoded.details == ({"detail": CANARY},)
