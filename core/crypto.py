"""AES-256-GCM keyring for data at rest (tenant secrets) and Temporal payloads.

A ciphertext names the key that sealed it, so keys rotate without re-encrypting
first: put a new key in front of the setting (it becomes the active key used by
:py:meth:`Keyring.encrypt`), keep the old ones behind it for
:py:meth:`Keyring.decrypt`, re-encrypt what :py:meth:`Keyring.needs_rotation`
reports, then drop the old key.

Ciphertext layout (all lengths in bytes)::

    version (1) = 0x01 | key-id length n (1) | key id (n, ASCII) | nonce (12) | ciphertext + GCM tag (16)

The header (version, key-id length, key id) is authenticated together with the
caller's ``aad``, so neither can be altered without :py:class:`DecryptionError`.
Nonces are random (96 bits); rotate a key well before 2**32 encryptions.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import DomainError

__all__ = [
    "KEY_BYTES",
    "DecryptionError",
    "Keyring",
    "decode_base64",
    "generate_key",
    "parse_keyring",
]

KEY_BYTES = 32
"""Length of an AES-256 key."""

_VERSION = 1
_NONCE_BYTES = 12
_TAG_BYTES = 16
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_TO_STANDARD = str.maketrans("-_", "+/")


class DecryptionError(DomainError):
    """A ciphertext cannot be opened: malformed, unknown key id, tampered, or wrong ``aad``."""


def decode_base64(value: str) -> bytes:
    """Decode standard or URL-safe base64, with or without ``=`` padding.

    Unlike :py:func:`base64.b64decode`, stray characters are rejected rather
    than skipped.

    Args:
        value: The base64 text.

    Returns:
        The decoded bytes.

    Raises:
        ValueError: ``value`` is not base64.
    """
    if not _BASE64.fullmatch(value):
        raise ValueError("not valid base64 (unexpected character)")
    unpadded = value.rstrip("=")
    if len(unpadded) % 4 == 1:
        raise ValueError("not valid base64 (truncated)")
    standard = unpadded.translate(_TO_STANDARD) + "=" * (-len(unpadded) % 4)
    try:
        return base64.b64decode(standard, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not valid base64 ({exc})") from None


def generate_key() -> str:
    """A new random 256-bit key as URL-safe base64, for ``Keyring.from_setting``."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def _check_key_id(key_id: str) -> bytes:
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise ValueError(f"key id {key_id!r} must be 1-64 characters of A-Z a-z 0-9 . _ - (not starting with . _ -)")
    return key_id.encode("ascii")


def parse_keyring(value: str) -> dict[str, bytes]:
    """Parse ``"k2:BASE64KEY,k1:BASE64KEY"`` into key id → key, in order (the first is active).

    Keys are standard or URL-safe base64 of exactly 32 bytes. Error messages
    name the entry and the problem, never the key material.

    Raises:
        ValueError: The setting is empty or an entry is malformed.
    """
    entries = [entry.strip() for entry in value.split(",")]
    if not any(entries):
        raise ValueError("encryption key setting is empty; expected KEY_ID:BASE64KEY[,KEY_ID:BASE64KEY...]")
    keys: dict[str, bytes] = {}
    for position, entry in enumerate(entries, start=1):
        key_id, sep, encoded = (part.strip() for part in entry.partition(":"))
        if not sep or not key_id or not encoded:
            raise ValueError(f"encryption key entry {position} is not KEY_ID:BASE64KEY")
        _check_key_id(key_id)
        if key_id in keys:
            raise ValueError(f"encryption key id {key_id!r} appears more than once")
        try:
            key = decode_base64(encoded)
        except ValueError as exc:
            raise ValueError(f"encryption key {key_id!r}: {exc}") from None
        if len(key) != KEY_BYTES:
            raise ValueError(f"encryption key {key_id!r} decodes to {len(key)} bytes; expected {KEY_BYTES}")
        keys[key_id] = key
    return keys


class Keyring:
    """AES-256-GCM keys by id; one of them is active for new ciphertexts.

    Instances are immutable and safe to share between tasks and threads.
    """

    __slots__ = ("_active", "_ciphers", "_headers")

    def __init__(self, keys: Mapping[str, bytes], *, active: str) -> None:
        """Build a keyring.

        Args:
            keys: Key id → 32-byte key.
            active: Id of the key that encrypts; must be in ``keys``.

        Raises:
            ValueError: A key id is malformed, a key is not 32 bytes, or
                ``active`` is not one of the ids.
        """
        if active not in keys:
            raise ValueError(f"active key id {active!r} is not in the keyring")
        self._ciphers: dict[str, AESGCM] = {}
        self._headers: dict[str, bytes] = {}
        for key_id in (active, *(k for k in keys if k != active)):
            raw_id = _check_key_id(key_id)
            key = keys[key_id]
            if not isinstance(key, bytes) or len(key) != KEY_BYTES:
                size = len(key) if isinstance(key, bytes) else type(key).__name__
                raise ValueError(f"key {key_id!r} must be {KEY_BYTES} bytes, got {size}")
            self._ciphers[key_id] = AESGCM(key)
            self._headers[key_id] = bytes((_VERSION, len(raw_id))) + raw_id
        self._active = active

    @classmethod
    def from_setting(cls, value: str) -> Keyring:
        """Parse ``"k2:BASE64KEY,k1:BASE64KEY"``; the first key is active.

        Raises:
            ValueError: The setting is empty or an entry is malformed (see :func:`parse_keyring`).
        """
        keys = parse_keyring(value)
        return cls(keys, active=next(iter(keys)))

    def with_active_key(self, key_id: str, key: bytes) -> Keyring:
        """A new keyring with ``key`` added as the active key; the old keys still decrypt.

        Raises:
            ValueError: ``key_id`` is already in the keyring, or the key is invalid.
        """
        if key_id in self._ciphers:
            raise ValueError(f"key id {key_id!r} is already in the keyring")
        ring = Keyring({key_id: key}, active=key_id)
        ring._ciphers.update(self._ciphers)
        ring._headers.update(self._headers)
        return ring

    @property
    def active_key_id(self) -> str:
        """Id of the key that :py:meth:`encrypt` uses."""
        return self._active

    @property
    def key_ids(self) -> tuple[str, ...]:
        """All key ids, the active one first."""
        return tuple(self._ciphers)

    def __repr__(self) -> str:
        return f"Keyring(active={self._active!r}, key_ids={self.key_ids!r})"

    def encrypt(self, plaintext: bytes, *, aad: bytes = b"") -> bytes:
        """Seal ``plaintext`` with the active key.

        Args:
            plaintext: Bytes to encrypt.
            aad: Associated data that must be given again to decrypt (for
                example the tenant id and purpose), bound but not stored.

        Returns:
            The self-describing ciphertext.
        """
        header = self._headers[self._active]
        nonce = os.urandom(_NONCE_BYTES)
        return header + nonce + self._ciphers[self._active].encrypt(nonce, plaintext, header + aad)

    def decrypt(self, blob: bytes, *, aad: bytes = b"") -> bytes:
        """Open a ciphertext from :py:meth:`encrypt` with the key it names.

        Args:
            blob: The ciphertext.
            aad: The associated data given to :py:meth:`encrypt`.

        Returns:
            The plaintext.

        Raises:
            DecryptionError: Malformed blob, unknown key id, tampering, or wrong ``aad``.
        """
        key_id, body_at = self._parse(blob)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise DecryptionError(f"unknown encryption key id {key_id!r}")
        header, nonce, sealed = blob[: body_at - _NONCE_BYTES], blob[body_at - _NONCE_BYTES : body_at], blob[body_at:]
        try:
            return cipher.decrypt(nonce, sealed, header + aad)
        except InvalidTag:
            raise DecryptionError(
                f"authentication failed with key {key_id!r} (tampered data or wrong associated data)"
            ) from None

    def key_id_of(self, blob: bytes) -> str:
        """The key id a ciphertext names (the key may be absent from this keyring).

        Raises:
            DecryptionError: ``blob`` is not a ciphertext of this format.
        """
        return self._parse(blob)[0]

    def needs_rotation(self, blob: bytes) -> bool:
        """Whether ``blob`` was sealed with a key other than the active one.

        Raises:
            DecryptionError: ``blob`` is not a ciphertext of this format.
        """
        return self.key_id_of(blob) != self._active

    @staticmethod
    def _parse(blob: bytes) -> tuple[str, int]:
        """Key id and offset of the sealed body (after the nonce)."""
        if len(blob) < 2:
            raise DecryptionError("ciphertext is too short")
        if blob[0] != _VERSION:
            raise DecryptionError(f"unsupported ciphertext version {blob[0]}")
        id_end = 2 + blob[1]
        body_at = id_end + _NONCE_BYTES
        if blob[1] == 0 or len(blob) < body_at + _TAG_BYTES:
            raise DecryptionError("ciphertext is truncated")
        try:
            return blob[2:id_end].decode("ascii"), body_at
        except UnicodeDecodeError:
            raise DecryptionError("ciphertext has a malformed key id") from None
