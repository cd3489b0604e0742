"""Keys generated at first boot: private files, one key per home, weak and example keys refused."""

from __future__ import annotations

import base64
import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from core import home_keys
from core.crypto import Keyring
from core.settings import Settings

REPO = Path(__file__).resolve().parents[2]
STRONG_KEYRING = "k1:" + base64.b64encode(os.urandom(32)).decode()


def _secret_of(home: str) -> str:
    return home_keys.jwt_secret(Path(home))


def test_first_boot_generates_private_random_keys(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, _env_file=None)  # type: ignore[call-arg]
    secret = settings.jwt_secrets[0]
    ring = Keyring.from_setting(settings.encryption_keyring)
    keys = tmp_path / home_keys.KEYS_DIR
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    for name in (home_keys.JWT_SECRET_FILE, home_keys.ENCRYPTION_KEYS_FILE):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
    assert home_keys.weak_secret_reason(secret.encode()) is None
    assert secret != home_keys.LEGACY_DEV_JWT_SECRET
    assert ring.decrypt(ring.encrypt(b"x", aad=b"a"), aad=b"a") == b"x"
    assert home_keys.LEGACY_DEV_ENCRYPTION_KEY not in settings.encryption_keyring  # a fresh home has no old data
    again = Settings(home=tmp_path, _env_file=None)  # type: ignore[call-arg]
    assert again.jwt_secrets[0] == secret
    assert again.encryption_keyring == settings.encryption_keyring
    other = Settings(home=tmp_path / "other", _env_file=None)  # type: ignore[call-arg]
    assert other.jwt_secrets[0] != secret


def test_concurrent_first_boots_agree_on_one_key(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        secrets = pool.map(_secret_of, [str(tmp_path)] * 12)
    assert len(set(secrets)) == 1
    assert [p.name for p in (tmp_path / home_keys.KEYS_DIR).iterdir()] == [home_keys.JWT_SECRET_FILE]


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    home_keys.jwt_secret(tmp_path)
    path = tmp_path / home_keys.KEYS_DIR / home_keys.JWT_SECRET_FILE
    path.chmod(0o644)
    with pytest.raises(home_keys.HomeKeyError, match="chmod 600"):
        home_keys.jwt_secret(tmp_path)


def test_a_home_with_earlier_data_keeps_the_legacy_key_for_decryption_only(tmp_path: Path) -> None:
    (tmp_path / "postgres").mkdir()
    ring_setting = home_keys.encryption_keyring(tmp_path)
    assert ring_setting.endswith("," + home_keys.LEGACY_DEV_ENCRYPTION_KEY)
    assert not ring_setting.startswith("dev:")  # the public key never encrypts anything new


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"short", "shorter"),
        (home_keys.LEGACY_DEV_JWT_SECRET.encode(), "public development key"),
        (b"change-me-change-me-change-me-change-me", "example value"),
        (b"x" * 40, "distinct"),
        (base64.b64decode(home_keys.LEGACY_DEV_ENCRYPTION_KEY.partition(":")[2]), "public development key"),
    ],
)
def test_weak_secrets_are_named(value: bytes, reason: str) -> None:
    found = home_keys.weak_secret_reason(value)
    assert found is not None
    assert reason in found


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.partition("=") for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, _, v in pairs}


def test_production_refuses_the_shipped_example_keys() -> None:
    example = _env_file(REPO / "docker" / ".env.example")
    keyring = SecretStr(STRONG_KEYRING)
    with pytest.raises(ValidationError, match="example value"):
        Settings(env="prod", jwt_secret=SecretStr(example["AIMPACT_JWT_SECRET"]), encryption_keys=keyring)
    strong_secret = SecretStr(base64.b64encode(os.urandom(40)).decode())
    with pytest.raises(ValidationError, match=r"AIMPACT_ENCRYPTION_KEYS key 'k1'.*example value"):
        Settings(env="prod", jwt_secret=strong_secret, encryption_keys=SecretStr(example["AIMPACT_ENCRYPTION_KEYS"]))
    with pytest.raises(ValidationError, match="AIMPACT_JWT_SECRET must be set"):
        Settings(env="prod", encryption_keys=keyring, _env_file=None)  # type: ignore[call-arg]
    Settings(env="prod", jwt_secret=strong_secret, encryption_keys=keyring)


def test_a_bootstrap_key_that_could_never_sign_in_stops_startup() -> None:
    with pytest.raises(ValidationError, match="AIMPACT_BOOTSTRAP_API_KEY must start with 'aim_'"):
        Settings(bootstrap_api_key=SecretStr("my-automation-key-0123456789abcdef"))
    with pytest.raises(ValidationError, match="at least 24"):
        Settings(bootstrap_api_key=SecretStr("aim_short"))
    Settings(bootstrap_api_key=SecretStr("aim_test_bootstrap_key_0123456789abcdef"))
