"""With ``AIMPACT_ENV=prod`` every example or weak secret is refused, named by its variable."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from core.settings import Settings
from tests.ops.support import DOCKER, K8S, interpolate, read_env_file

SECRET_VARIABLES = (
    "AIMPACT_JWT_SECRET",
    "AIMPACT_ENCRYPTION_KEYS",
    "AIMPACT_BOOTSTRAP_API_KEY",
    "AIMPACT_ADMIN_PASSWORD",
    "AIMPACT_DATABASE_URL",
    "AIMPACT_REDIS_URL",
    "AIMPACT_TEMPORAL_API_KEY",
    "AIMPACT_EMBEDDER_API_KEY",
)


def _strong() -> dict[str, str]:
    """Production settings with a random value for every secret."""
    token = base64.urlsafe_b64encode(os.urandom(24)).decode()
    return {
        "AIMPACT_ENV": "prod",
        "AIMPACT_JWT_SECRET": base64.b64encode(os.urandom(48)).decode(),
        "AIMPACT_ENCRYPTION_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode(),
        "AIMPACT_BOOTSTRAP_API_KEY": "aim_" + os.urandom(24).hex(),
        "AIMPACT_ADMIN_PASSWORD": base64.b64encode(os.urandom(18)).decode(),
        "AIMPACT_DATABASE_URL": f"postgresql+psycopg://aimpact:{token}@postgres:5432/aimpact",
        "AIMPACT_REDIS_URL": f"redis://:{token}@redis:6379/0",
        "AIMPACT_TEMPORAL_ADDRESS": "temporal.example.com:7233",
        "AIMPACT_TEMPORAL_API_KEY": base64.b64encode(os.urandom(30)).decode(),
        "AIMPACT_EMBEDDER_API_KEY": "sk-" + os.urandom(20).hex(),
    }


def _settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in [k for k in os.environ if k.startswith("AIMPACT_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def _refused_names(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The secret variables the refusal names."""
    with pytest.raises(ValidationError) as refused:
        _settings(env, monkeypatch)
    message = " ".join(error["msg"] for error in refused.value.errors())
    return {name for name in SECRET_VARIABLES if name in message}


def _compose_examples() -> dict[str, str]:
    """The app's secrets as docker/compose.yml builds them from docker/.env.example."""
    compose: dict[str, Any] = interpolate(
        yaml.safe_load((DOCKER / "compose.yml").read_text()), read_env_file(DOCKER / ".env.example")
    )
    app = compose["services"]["api"]["environment"]
    return {name: str(app[name]) for name in SECRET_VARIABLES if name in app}


def _k8s_examples() -> dict[str, str]:
    secret = yaml.safe_load((K8S / "base" / "secret.yaml").read_text())
    return {name: value for name, value in secret["stringData"].items() if name in SECRET_VARIABLES}


README_EXAMPLES = {
    "AIMPACT_ENCRYPTION_KEYS": "k2:<base64 32 bytes>,k1:<…>",
    "AIMPACT_JWT_SECRET": "<output of openssl rand -base64 48, pasted here>",
}


def test_strong_values_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(_strong(), monkeypatch)
    assert settings.env == "prod"


def test_the_example_files_carry_every_secret() -> None:
    assert set(_compose_examples()) >= {
        "AIMPACT_JWT_SECRET",
        "AIMPACT_ENCRYPTION_KEYS",
        "AIMPACT_BOOTSTRAP_API_KEY",
        "AIMPACT_ADMIN_PASSWORD",
        "AIMPACT_DATABASE_URL",
    }
    assert set(_k8s_examples()) >= {
        "AIMPACT_JWT_SECRET",
        "AIMPACT_ENCRYPTION_KEYS",
        "AIMPACT_BOOTSTRAP_API_KEY",
        "AIMPACT_ADMIN_PASSWORD",
        "AIMPACT_DATABASE_URL",
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        *(pytest.param(n, v, id=f"compose-{n}") for n, v in _compose_examples().items() if "REDIS" not in n),
        *(pytest.param(n, v, id=f"k8s-{n}") for n, v in _k8s_examples().items() if "REDIS" not in n),
        *(pytest.param(n, v, id=f"readme-{n}") for n, v in README_EXAMPLES.items()),
    ],
)
def test_each_example_value_is_refused_by_name(name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _refused_names(_strong() | {name: value}, monkeypatch) == {name}


LOW_ENTROPY = {
    "AIMPACT_JWT_SECRET": "ab" * 24,
    "AIMPACT_ENCRYPTION_KEYS": "k1:" + base64.b64encode(b"0123" * 8).decode(),
    "AIMPACT_BOOTSTRAP_API_KEY": "aim_" + "0" * 48,
    "AIMPACT_ADMIN_PASSWORD": "aaaaaaaaaaaaaaaa",
    "AIMPACT_DATABASE_URL": "postgresql+psycopg://aimpact:short@postgres:5432/aimpact",
    "AIMPACT_REDIS_URL": "redis://:111111111111111111@redis:6379/0",
    "AIMPACT_TEMPORAL_API_KEY": "<temporal cloud api key>",
    "AIMPACT_EMBEDDER_API_KEY": "sk-xxxxxxxxxxxxxxxxxxxxxxxx",
}


@pytest.mark.parametrize(("name", "value"), LOW_ENTROPY.items(), ids=list(LOW_ENTROPY))
def test_low_entropy_values_are_refused_by_name(name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _refused_names(_strong() | {name: value}, monkeypatch) == {name}


def test_symbols_in_a_strong_password_are_no_template(monkeypatch: pytest.MonkeyPatch) -> None:
    env = _strong() | {"AIMPACT_ADMIN_PASSWORD": "q<7>Zr!x#9Lm$w>"}
    assert _settings(env, monkeypatch).admin_password is not None


def test_previous_jwt_secrets_are_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    env = _strong() | {"AIMPACT_JWT_PREVIOUS_SECRETS": '["change-me-change-me-change-me-change-me"]'}
    with pytest.raises(ValidationError, match=r"AIMPACT_JWT_PREVIOUS_SECRETS \(entry 1\) looks like an example"):
        _settings(env, monkeypatch)


def test_every_problem_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    examples = _compose_examples()
    assert _refused_names(_strong() | examples, monkeypatch) == set(examples) - {"AIMPACT_REDIS_URL"}


def test_dev_keeps_accepting_local_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {"AIMPACT_HOME": str(tmp_path), "AIMPACT_ADMIN_PASSWORD": "test-admin-password"}
    assert _settings(env, monkeypatch).env == "dev"
