"""Configuration errors stop the CLI with a clear message, before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys


def test_invalid_setting_names_the_variable() -> None:
    env = dict(os.environ, AIMPACT_API_PORT="not-a-port", AIMPACT_ENV="staging")
    result = subprocess.run([sys.executable, "-m", "cli", "migrate"], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "Invalid configuration" in result.stdout
    assert "AIMPACT_API_PORT" in result.stdout
    assert "AIMPACT_ENV" in result.stdout
