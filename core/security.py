"""Credential primitives: API keys (SHA-256 at rest) and passwords (argon2id)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

API_KEY_PREFIX = "aim_"
_PREFIX_CHARS = 8

# OWASP: argon2id, 19 MiB, t=2, p=1.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@dataclass(frozen=True)
class NewApiKey:
    """A freshly minted key: ``key`` is shown once; store ``prefix`` and ``key_hash``."""

    key: str
    prefix: str
    key_hash: str


def hash_api_key(key: str) -> str:
    """SHA-256 hex of an API key (keys are 192-bit random, so no slow hash is needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_from_secret(secret: str) -> NewApiKey:
    """Wrap a given key value (e.g. ``AIMPACT_BOOTSTRAP_API_KEY``)."""
    return NewApiKey(key=secret, prefix=secret[: len(API_KEY_PREFIX) + _PREFIX_CHARS], key_hash=hash_api_key(secret))


def mint_api_key() -> NewApiKey:
    """A new random API key ``aim_<48 hex>``."""
    return api_key_from_secret(API_KEY_PREFIX + secrets.token_hex(24))


def hash_password(password: str) -> str:
    """argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A random password for first boot."""
    return secrets.token_urlsafe(18)
