"""JwtService: pinned algorithms, required claims, kid lookup, rotation, asymmetric keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from pydantic import SecretStr

from core.auth.jwt_keys import JwtService, TokenError
from core.settings import Settings

SECRET = "s" * 40


def _settings(**kw: Any) -> Settings:
    return Settings(jwt_secret=SecretStr(SECRET), **kw)


def _claims(**override: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": "aimpact", "aud": "aimpact-api", "iat": now, "exp": now + 60, "sub": "usr_1", "tid": "ten_1"}
    return {k: v for k, v in (base | override).items() if v is not None}


def _hs_kid(service: JwtService) -> str:
    return str(jwt.get_unverified_header(service.issue(subject="x", tenant_id="y"))["kid"])


def test_issue_and_verify_round_trip() -> None:
    service = JwtService(_settings())
    claims = service.verify(service.issue(subject="usr_1", tenant_id="ten_1"))
    assert (claims["sub"], claims["tid"], claims["iss"], claims["aud"]) == ("usr_1", "ten_1", "aimpact", "aimpact-api")


@pytest.mark.parametrize(
    "override",
    [
        {"exp": int(time.time()) - 60},
        {"exp": None},
        {"iat": None},
        {"aud": "someone-else"},
        {"iss": "evil"},
        {"sub": None},
        {"tid": None},
    ],
    ids=["expired", "no-exp", "no-iat", "wrong-aud", "wrong-iss", "no-sub", "no-tid"],
)
def test_bad_claims_are_rejected(override: dict[str, Any]) -> None:
    service = JwtService(_settings())
    token = jwt.encode(_claims(**override), SECRET, algorithm="HS256", headers={"kid": _hs_kid(service)})
    with pytest.raises(TokenError):
        service.verify(token)


def test_alg_none_unknown_kid_and_tampering_are_rejected() -> None:
    service = JwtService(_settings())
    kid = _hs_kid(service)
    unsigned = jwt.encode(_claims(), None, algorithm="none", headers={"kid": kid})
    with pytest.raises(TokenError):
        service.verify(unsigned)
    with pytest.raises(TokenError):
        service.verify(jwt.encode(_claims(), SECRET, algorithm="HS256", headers={"kid": "other"}))
    good = service.issue(subject="a", tenant_id="b")
    head, body, signature = good.split(".")
    tampered = f"{head}.{body}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}{signature[-1]}"
    with pytest.raises(TokenError):
        service.verify(tampered)
    with pytest.raises(TokenError):
        service.verify("not-a-token")


def test_rotation_keeps_tokens_of_the_previous_secret_valid() -> None:
    old = JwtService(_settings())
    token = old.issue(subject="usr_1", tenant_id="ten_1")
    rotated = JwtService(Settings(jwt_secret=SecretStr("n" * 40), jwt_previous_secrets=[SecretStr(SECRET)]))
    assert rotated.verify(token)["sub"] == "usr_1"
    assert jwt.get_unverified_header(rotated.issue(subject="a", tenant_id="b"))["kid"] != _hs_kid(old)
    dropped = JwtService(Settings(jwt_secret=SecretStr("n" * 40)))
    with pytest.raises(TokenError):
        dropped.verify(token)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _pem(key: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def test_eddsa_keys_jwks_and_hs256_with_public_key_is_rejected(tmp_path: Path) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    service = JwtService(_settings(jwt_signing_keys=f"ed1:{_pem(private, tmp_path, 'ed1.pem')}"))
    token = service.issue(subject="usr_1", tenant_id="ten_1")
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
    assert service.verify(token)["tid"] == "ten_1"
    jwks = service.jwks()["keys"]
    assert [(k["kid"], k["kty"], k["alg"]) for k in jwks] == [("ed1", "OKP", "EdDSA")]

    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "ed1"}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    signature = _b64(hmac.new(public_pem, f"{head}.{payload}".encode(), hashlib.sha256).digest())
    forged = f"{head}.{payload}.{signature}"
    with pytest.raises(TokenError):
        service.verify(forged)


def test_rsa_rotation_old_key_still_verifies(tmp_path: Path) -> None:
    old_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    new_key = ed25519.Ed25519PrivateKey.generate()
    old_pem, new_pem = _pem(old_key, tmp_path, "old.pem"), _pem(new_key, tmp_path, "new.pem")
    before = JwtService(_settings(jwt_signing_keys=f"r1:{old_pem}"))
    token = before.issue(subject="usr_1", tenant_id="ten_1")
    after = JwtService(_settings(jwt_signing_keys=f"e2:{new_pem},r1:{old_pem}"))
    assert after.verify(token)["sub"] == "usr_1"
    assert jwt.get_unverified_header(after.issue(subject="a", tenant_id="b"))["kid"] == "e2"
    assert {k["kid"] for k in after.jwks()["keys"]} == {"e2", "r1"}


def test_default_secret_refused_outside_dev() -> None:
    keyring = SecretStr("k:" + base64.b64encode(os.urandom(32)).decode())
    strong = SecretStr(base64.b64encode(os.urandom(40)).decode())
    with pytest.raises(ValueError, match="AIMPACT_JWT_SECRET must be set"):
        Settings(env="prod", encryption_keys=keyring, _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="AIMPACT_JWT_SECRET is shorter"):
        Settings(env="prod", jwt_secret=SecretStr("short"), encryption_keys=keyring)
    with pytest.raises(ValueError, match="AIMPACT_ENCRYPTION_KEYS key 'k'"):  # 32 zero bytes: not a random key
        Settings(env="prod", jwt_secret=strong, encryption_keys=SecretStr("k:" + "A" * 43 + "="))
    Settings(env="prod", jwt_secret=strong, encryption_keys=keyring)
