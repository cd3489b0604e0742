"""JWT signing and verification with pinned algorithms, key ids and rotation.

HS256 with ``AIMPACT_JWT_SECRET`` by default (earlier secrets in
``AIMPACT_JWT_PREVIOUS_SECRETS`` still verify; in dev, unset, the secret generated under
``AIMPACT_HOME``). With
``AIMPACT_JWT_SIGNING_KEYS`` set, Ed25519 (EdDSA) or RSA (RS256) private keys
sign instead, and their public halves are published at
``/.well-known/jwks.json``. Every token carries a ``kid``; verification looks
the key up by ``kid`` and accepts only that key's algorithm.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from core.settings import Settings

REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "tid")


class TokenError(Exception):
    """A token that must not be accepted; the message says why (for logs, not clients)."""


@dataclass(frozen=True)
class _Key:
    kid: str
    algorithm: str
    signing: Any
    verifying: Any
    public_jwk: dict[str, Any] | None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs_kid(secret: str) -> str:
    """The ``kid`` of an HS256 secret (a digest prefix: it names the key without revealing it)."""
    return "hs-" + hashlib.sha256(secret.encode()).hexdigest()[:12]


def _hs_key(secret: str) -> _Key:
    kid = hs_kid(secret)
    return _Key(kid=kid, algorithm="HS256", signing=secret, verifying=secret, public_jwk=None)


def _asymmetric_key(kid: str, pem: bytes) -> _Key:
    private = serialization.load_pem_private_key(pem, password=None)
    if isinstance(private, ed25519.Ed25519PrivateKey):
        public = private.public_key()
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw), "kid": kid, "alg": "EdDSA", "use": "sig"}
        return _Key(kid=kid, algorithm="EdDSA", signing=private, verifying=public, public_jwk=jwk)
    if isinstance(private, rsa.RSAPrivateKey):
        if private.key_size < 2048:
            raise ValueError(f"RSA key {kid!r} is shorter than 2048 bits")
        public_rsa = private.public_key()
        numbers = public_rsa.public_numbers()
        jwk = {
            "kty": "RSA",
            "n": _b64(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": _b64(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
            "kid": kid,
            "alg": "RS256",
            "use": "sig",
        }
        return _Key(kid=kid, algorithm="RS256", signing=private, verifying=public_rsa, public_jwk=jwk)
    raise ValueError(f"key {kid!r}: only Ed25519 and RSA private keys are supported")


def parse_signing_keys(spec: str) -> list[tuple[str, bytes]]:
    """``"kid:path,kid2:path2"`` → ``[(kid, pem bytes), ...]``."""
    pairs = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        kid, sep, path = item.partition(":")
        if not sep or not kid or not path:
            raise ValueError(f"expected 'kid:path.pem', got {item!r}")
        pairs.append((kid, Path(path).read_bytes()))
    return pairs


class JwtService:
    """Issues and verifies access tokens."""

    def __init__(self, settings: Settings):
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._ttl_s = settings.access_token_ttl_s
        if settings.jwt_signing_keys:
            keys = [_asymmetric_key(kid, pem) for kid, pem in parse_signing_keys(settings.jwt_signing_keys)]
        else:
            keys = [_hs_key(secret) for secret in settings.jwt_secrets]
        if not keys:
            raise ValueError("no JWT signing key configured")
        self._active = keys[0]
        self._keys = {k.kid: k for k in keys}

    @property
    def ttl_s(self) -> int:
        """Lifetime of access tokens."""
        return self._ttl_s

    def issue(
        self, *, subject: str, tenant_id: str, platform: bool = False, extra: dict[str, Any] | None = None
    ) -> str:
        """A signed access token for ``subject`` in ``tenant_id`` (``plat``: a platform administrator)."""
        now = int(time.time())
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "iat": now,
            "nbf": now,
            "exp": now + self._ttl_s,
            "sub": subject,
            "tid": tenant_id,
            "plat": platform,
            "jti": uuid.uuid4().hex,
            **(extra or {}),
        }
        key = self._active
        return jwt.encode(claims, key.signing, algorithm=key.algorithm, headers={"kid": key.kid})

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; ``TokenError`` otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError(f"malformed token: {exc}") from exc
        key = self._keys.get(str(header.get("kid", "")))
        if key is None:
            raise TokenError("unknown kid")
        if header.get("alg") != key.algorithm:
            raise TokenError(f"algorithm {header.get('alg')!r} not allowed for this key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.verifying,
                algorithms=[key.algorithm],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": list(REQUIRED_CLAIMS)},
                leeway=5,
            )
        except jwt.PyJWTError as exc:
            raise TokenError(str(exc)) from exc
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("tid"), str):
            raise TokenError("sub and tid must be strings")
        return claims

    def jwks(self) -> dict[str, Any]:
        """Public keys (empty for HS256)."""
        return {"keys": [k.public_jwk for k in self._keys.values() if k.public_jwk]}
