"""Configuration errors stop the CLI with a clear message, before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.ops.support import DOCKER, read_env_file


def test_invalid_setting_names_the_variable() -> None:
    env = dict(os.environ, AIMPACT_API_PORT="not-a-port", AIMPACT_ENV="staging")
    result = subprocess.run([sys.executable, "-m", "cli", "migrate"], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "Invalid configuration" in result.stdout
    assert "AIMPACT_API_PORT" in result.stdout
    assert "AIMPACT_ENV" in result.stdout


def test_production_placeholders_stop_the_cli_naming_each_variable(tmp_path: Path) -> None:
    example = read_env_file(DOCKER / ".env.example")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMPACT_")}
    env |= {k: v for k, v in example.items() if k.startswith("AIMPACT_")} | {"AIMPACT_ENV": "prod"}
    result = subprocess.run(
        [sys.executable, "-m", "cli", "migrate"], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    for name in (
        "AIMPACT_JWT_SECRET",
        "AIMPACT_ENCRYPTION_KEYS",
        "AIMPACT_BOOTSTRAP_API_KEY",
        "AIMPACT_ADMIN_PASSWORD",
    ):
        assert any(line.strip().startswith(name) for line in lines), (name, result.stdout)
