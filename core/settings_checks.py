"""Checks of settings that cannot work: weak or example secrets in production, Temporal TLS settings.

Each check returns problems as sentences that name the ``AIMPACT_*`` variable; the settings
model raises them together, so one start shows everything to fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from core import home_keys
from core.crypto import parse_keyring
from core.security import API_KEY_PREFIX

if TYPE_CHECKING:
    from core.settings import Settings

_MIN_PASSWORD_CHARS = 12
_MIN_PASSWORD_DISTINCT = 8
_MIN_TOKEN_CHARS = 16
_TEMPLATE = re.compile(r"<[A-Za-z][^<>]{2,}>|\u2026|\{\{|\$\{")
"""A placeholder to fill in: ``<your key>``, an ellipsis, ``{{ value }}``, ``${VAR}``."""
_GENERATE = {
    "secret": "`openssl rand -base64 48`",
    "key": "`echo aim_$(openssl rand -hex 24)`",
    "password": "`openssl rand -base64 24`",
}


def production_problems(settings: Settings) -> list[str]:
    """Why the secrets of ``settings`` may not run in production (empty when they may)."""
    return [f"{name} {reason}" for name, reason in _weak_secrets(settings)]


def _weak_secrets(s: Settings) -> Iterator[tuple[str, str]]:
    if not s.jwt_signing_keys:
        if s.jwt_secret is None:
            yield "AIMPACT_JWT_SECRET", f"must be set outside dev (32+ random bytes: {_GENERATE['secret']})"
        else:
            yield from _secret("AIMPACT_JWT_SECRET", s.jwt_secret.get_secret_value())
    for position, previous in enumerate(s.jwt_previous_secrets, start=1):
        yield from _secret(f"AIMPACT_JWT_PREVIOUS_SECRETS (entry {position})", previous.get_secret_value())
    if s.encryption_keys is None:
        yield "AIMPACT_ENCRYPTION_KEYS", "must be set outside dev (`k1:$(openssl rand -base64 32)`)"
    else:
        try:
            keyring = parse_keyring(s.encryption_keys.get_secret_value())
        except ValueError as exc:
            yield "AIMPACT_ENCRYPTION_KEYS", str(exc)
        else:
            for kid, key in keyring.items():
                reason = home_keys.weak_secret_reason(key)
                if reason:
                    yield "AIMPACT_ENCRYPTION_KEYS", f"key {kid!r} {reason}; use `openssl rand -base64 32`"
    if s.bootstrap_api_key is not None:
        value = s.bootstrap_api_key.get_secret_value()
        reason = _text_reason(value.removeprefix(API_KEY_PREFIX), min_bytes=24, min_distinct=12)
        if reason:
            yield "AIMPACT_BOOTSTRAP_API_KEY", f"{reason}; generate one with {_GENERATE['key']}"
    if s.admin_password is not None:
        yield from _password("AIMPACT_ADMIN_PASSWORD", s.admin_password.get_secret_value())
    for name, url in (("AIMPACT_DATABASE_URL", s.database_url), ("AIMPACT_REDIS_URL", s.redis_url)):
        password = _url_password(url)
        if password is not None:
            yield from _password(f"{name} (its password)", password)
    for name, token in (
        ("AIMPACT_TEMPORAL_API_KEY", s.temporal_api_key),
        ("AIMPACT_EMBEDDER_API_KEY", s.embedder_api_key),
        ("AIMPACT_VOICE_STT_API_KEY", s.voice_stt_api_key),
        ("AIMPACT_VOICE_TTS_API_KEY", s.voice_tts_api_key),
    ):
        if token is not None:
            reason = _text_reason(
                token.get_secret_value(), min_bytes=_MIN_TOKEN_CHARS, min_distinct=_MIN_PASSWORD_DISTINCT
            )
            if reason:
                yield name, reason


def _text_reason(value: str, *, min_bytes: int, min_distinct: int) -> str | None:
    """``weak_secret_reason`` of a typed-in value, which also must not be a template such as ``<key>``."""
    template = _TEMPLATE.search(value)
    if template:
        return f"looks like a template to fill in (contains {template.group()!r})"
    return home_keys.weak_secret_reason(value.encode(), min_bytes=min_bytes, min_distinct=min_distinct)


def _secret(name: str, value: str) -> Iterator[tuple[str, str]]:
    reason = _text_reason(value, min_bytes=32, min_distinct=12)
    if reason:
        yield name, f"{reason}; set 32+ random bytes (e.g. {_GENERATE['secret']})"


def _password(name: str, value: str) -> Iterator[tuple[str, str]]:
    reason = _text_reason(value, min_bytes=_MIN_PASSWORD_CHARS, min_distinct=_MIN_PASSWORD_DISTINCT)
    if reason:
        yield name, f"{reason}; use a random password (e.g. {_GENERATE['password']})"


def _url_password(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def voice_problems(s: Settings) -> list[str]:
    """Why the chosen cloud speech engines cannot work (empty when they can)."""
    problems = []
    for kind, url in (("stt", s.voice_stt_url), ("tts", s.voice_tts_url)):
        chosen = s.voice_stt if kind == "stt" else s.voice_tts
        name = f"AIMPACT_VOICE_{kind.upper()}_URL"
        if chosen == "openai" and not url:
            problems.append(f"{name} must be set when AIMPACT_VOICE_{kind.upper()}=openai (e.g. https://host/v1)")
        elif url and urlsplit(url).scheme not in ("http", "https"):
            problems.append(f"{name} must be an http(s) URL")
    return problems


def temporal_tls_problems(s: Settings) -> list[str]:
    """Why the Temporal connection settings cannot work (empty when they can)."""
    problems = []
    files = {
        "AIMPACT_TEMPORAL_TLS_CA_FILE": s.temporal_tls_ca_file,
        "AIMPACT_TEMPORAL_TLS_CERT_FILE": s.temporal_tls_cert_file,
        "AIMPACT_TEMPORAL_TLS_KEY_FILE": s.temporal_tls_key_file,
    }
    if (s.temporal_tls_cert_file is None) != (s.temporal_tls_key_file is None):
        given, missing = (
            ("AIMPACT_TEMPORAL_TLS_CERT_FILE", "AIMPACT_TEMPORAL_TLS_KEY_FILE")
            if s.temporal_tls_key_file is None
            else ("AIMPACT_TEMPORAL_TLS_KEY_FILE", "AIMPACT_TEMPORAL_TLS_CERT_FILE")
        )
        problems.append(f"{given} is set without {missing} (mTLS needs the client certificate and its key)")
    configured = [name for name, path in files.items() if path is not None]
    if s.temporal_tls_server_name:
        configured.append("AIMPACT_TEMPORAL_TLS_SERVER_NAME")
    if s.temporal_tls is False and configured:
        problems.append(f"AIMPACT_TEMPORAL_TLS is false but {', '.join(configured)} is set")
    if (s.temporal_tls or configured or s.temporal_api_key) and not s.temporal_address:
        problems.append(
            "Temporal TLS or an API key needs AIMPACT_TEMPORAL_ADDRESS (the embedded dev server speaks neither)"
        )
    return problems
