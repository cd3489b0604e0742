"""The AES-256-GCM keyring: round trip, rotation, tamper detection, setting parsing."""

from __future__ import annotations

import base64
import os

import pytest

from core.crypto import KEY_BYTES, DecryptionError, Keyring, decode_base64, generate_key

K1 = os.urandom(KEY_BYTES)
K2 = os.urandom(KEY_BYTES)


def ring(**keys: bytes) -> Keyring:
    """A keyring whose first keyword is active."""
    return Keyring(keys, active=next(iter(keys)))


@pytest.mark.parametrize("plaintext", [b"", b"sk-live-secret", bytes(range(256)) * 4096])
def test_round_trip(plaintext: bytes) -> None:
    keyring = ring(k1=K1)
    blob = keyring.encrypt(plaintext)
    assert keyring.decrypt(blob) == plaintext


def test_ciphertext_layout_is_self_describing_and_random() -> None:
    keyring = ring(k1=K1)
    canary = b"canary-7f3a9c"
    first, second = keyring.encrypt(canary), keyring.encrypt(canary)
    assert first != second  # fresh nonce each time
    assert canary not in first
    assert first[0] == 1  # version
    assert first[1] == 2  # key-id length
    assert first[2:4] == b"k1"  # key id
    assert len(first) == 1 + 1 + 2 + 12 + len(canary) + 16  # nonce + tag
    assert keyring.key_id_of(first) == "k1"


def test_aad_round_trip() -> None:
    keyring = ring(k1=K1)
    blob = keyring.encrypt(b"secret", aad=b"ten_a:llm-credential")
    assert keyring.decrypt(blob, aad=b"ten_a:llm-credential") == b"secret"


def test_rotation_keeps_old_ciphertexts_readable() -> None:
    old_ring = ring(k1=K1)
    old_blob = old_ring.encrypt(b"before rotation")

    new_ring = ring(k2=K2, k1=K1)
    assert new_ring.active_key_id == "k2"
    assert new_ring.decrypt(old_blob) == b"before rotation"
    assert new_ring.needs_rotation(old_blob)

    new_blob = new_ring.encrypt(b"after rotation")
    assert new_ring.key_id_of(new_blob) == "k2"
    assert not new_ring.needs_rotation(new_blob)
    assert new_ring.decrypt(new_blob) == b"after rotation"
    # The old ring does not know k2.
    with pytest.raises(DecryptionError, match="unknown encryption key id 'k2'"):
        old_ring.decrypt(new_blob)


def test_with_active_key_adds_a_key_in_front() -> None:
    old_ring = ring(k1=K1)
    old_blob = old_ring.encrypt(b"x")
    new_ring = old_ring.with_active_key("k2", K2)
    assert new_ring.key_ids == ("k2", "k1")
    assert old_ring.key_ids == ("k1",)  # unchanged
    assert new_ring.decrypt(old_blob) == b"x"
    assert new_ring.key_id_of(new_ring.encrypt(b"y")) == "k2"
    with pytest.raises(ValueError, match="already in the keyring"):
        new_ring.with_active_key("k1", K1)


def _flip(blob: bytes, index: int) -> bytes:
    mutable = bytearray(blob)
    mutable[index] ^= 0x01
    return bytes(mutable)


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (0, "unsupported ciphertext version"),
        (3, "unknown encryption key id"),  # "k1" → "k0"
        (4, "authentication failed"),  # nonce
        (20, "authentication failed"),  # ciphertext
        (-1, "authentication failed"),  # tag
    ],
)
def test_tampering_is_detected(index: int, message: str) -> None:
    keyring = ring(k1=K1)
    blob = keyring.encrypt(b"a secret of some length")
    with pytest.raises(DecryptionError, match=message):
        keyring.decrypt(_flip(blob, index))


def test_key_id_byte_is_authenticated() -> None:
    """Relabelling a ciphertext with another known key id still fails."""
    keyring = ring(k1=K1, k2=K2)
    blob = keyring.encrypt(b"x")
    relabelled = blob[:2] + b"k2" + blob[4:]
    with pytest.raises(DecryptionError, match="authentication failed with key 'k2'"):
        keyring.decrypt(relabelled)


def test_wrong_or_missing_aad_fails() -> None:
    keyring = ring(k1=K1)
    blob = keyring.encrypt(b"secret", aad=b"ten_a")
    with pytest.raises(DecryptionError, match="authentication failed"):
        keyring.decrypt(blob, aad=b"ten_b")
    with pytest.raises(DecryptionError, match="authentication failed"):
        keyring.decrypt(blob)


def test_same_id_different_key_fails() -> None:
    blob = ring(k1=K1).encrypt(b"x")
    with pytest.raises(DecryptionError, match="authentication failed"):
        ring(k1=K2).decrypt(blob)


@pytest.mark.parametrize(
    "blob", [b"", b"\x01", b"\x01\x00" + bytes(40), b"\x01\x02k1" + bytes(27), b"\x01\x02\xff\xfe" + bytes(40)]
)
def test_malformed_blobs(blob: bytes) -> None:
    keyring = ring(k1=K1)
    with pytest.raises(DecryptionError):
        keyring.decrypt(blob)
    with pytest.raises(DecryptionError):
        keyring.needs_rotation(blob)


def test_from_setting_first_key_is_active() -> None:
    standard = base64.b64encode(K2).decode()
    urlsafe_unpadded = base64.urlsafe_b64encode(K1).decode().rstrip("=")
    keyring = Keyring.from_setting(f" k2:{standard} , k1:{urlsafe_unpadded} ")
    assert keyring.active_key_id == "k2"
    assert keyring.key_ids == ("k2", "k1")
    assert keyring.decrypt(ring(k1=K1).encrypt(b"x")) == b"x"
    assert ring(k2=K2).decrypt(keyring.encrypt(b"y")) == b"y"


def test_from_setting_accepts_generated_keys() -> None:
    first, second = generate_key(), generate_key()
    assert first != second
    assert len(decode_base64(first)) == KEY_BYTES
    keyring = Keyring.from_setting(f"2026-01:{first},2025-07:{second}")
    assert keyring.active_key_id == "2026-01"


SECRET_LOOKING = base64.b64encode(b"0123456789abcdef").decode()  # 16 bytes


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("", "setting is empty"),
        (" , ", "setting is empty"),
        (base64.b64encode(K1).decode(), "entry 1 is not KEY_ID:BASE64KEY"),
        (f"k1:{base64.b64encode(K1).decode()},k2:", "entry 2 is not KEY_ID:BASE64KEY"),
        (f":{base64.b64encode(K1).decode()}", "entry 1 is not KEY_ID:BASE64KEY"),
        (f"bad id:{base64.b64encode(K1).decode()}", "key id 'bad id' must be"),
        (f"-k:{base64.b64encode(K1).decode()}", "key id '-k' must be"),
        (f"{'k' * 65}:{base64.b64encode(K1).decode()}", "must be 1-64 characters"),
        (f"k1:{base64.b64encode(K1).decode()},k1:{base64.b64encode(K2).decode()}", "'k1' appears more than once"),
        ("k1:not*base64!", "encryption key 'k1': not valid base64"),
        ("k1:abcde", "encryption key 'k1': not valid base64"),
        (f"k1:{SECRET_LOOKING}", "'k1' decodes to 16 bytes; expected 32"),
    ],
)
def test_from_setting_errors_name_the_problem(setting: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        Keyring.from_setting(setting)
    for secret in (base64.b64encode(K1).decode(), base64.b64encode(K2).decode(), SECRET_LOOKING):
        assert secret not in str(caught.value)


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="active key id 'k9' is not in the keyring"):
        Keyring({"k1": K1}, active="k9")
    with pytest.raises(ValueError, match="must be 32 bytes, got 16"):
        Keyring({"k1": K1[:16]}, active="k1")
    with pytest.raises(ValueError, match="must be 32 bytes"):
        Keyring({"k1": K1, "k2": b"short"}, active="k1")


def test_repr_hides_key_material() -> None:
    keyring = ring(k1=K1)
    assert repr(keyring) == "Keyring(active='k1', key_ids=('k1',))"
    assert K1.hex() not in repr(keyring)


@pytest.mark.parametrize(
    ("text", "raw"),
    [("+/8=", b"\xfb\xff"), ("-_8=", b"\xfb\xff"), ("-_8", b"\xfb\xff"), ("", b""), ("YQ==", b"a")],
)
def test_decode_base64_accepts_both_alphabets(text: str, raw: bytes) -> None:
    assert decode_base64(text) == raw


@pytest.mark.parametrize("text", ["@@@@", "YQ= =", "Y", "YQ===", "a b c d", "YQ==YQ=="])
def test_decode_base64_rejects_junk(text: str) -> None:
    with pytest.raises(ValueError, match="not valid base64"):
        decode_base64(text)
