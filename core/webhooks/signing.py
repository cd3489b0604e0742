"""Signing secrets and the ``X-AImPact-Signature`` header.

Every delivery is a ``POST`` of the event as JSON with::

    X-AImPact-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

The HMAC key is the whole secret string (``whsec_…``) as UTF-8 and ``<body>`` is
the raw request body. Receivers recompute the HMAC, compare in constant time and
refuse timestamps older than a few minutes (:py:func:`verify` does exactly that).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

SIGNATURE_HEADER = "X-AImPact-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a public prefix, not a secret


def generate_secret() -> str:
    """A new signing secret: ``whsec_`` + 32 random bytes, URL-safe base64 without padding."""
    return SECRET_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def secret_aad(tenant_id: str, webhook_id: str) -> bytes:
    """Associated data binding a webhook secret's ciphertext to its tenant and webhook."""
    return f"{tenant_id}:webhook:{webhook_id}".encode()


def _mac(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-AImPact-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},v1={_mac(secret, body, timestamp)}"


def verify(secret: str, body: bytes, header: str, tolerance_s: int = 300, *, now: float | None = None) -> bool:
    """Whether ``header`` is a valid signature of ``body`` made within ``tolerance_s`` of ``now``.

    Several ``v1=`` values are accepted (any may match), so a sender can sign with
    an old and a new secret while a receiver rotates.
    """
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = _mac(secret, body, timestamp)
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    return matched
