"""Client tests run with no client configuration of the machine: an empty config home, no AIMPACT_* credentials."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``XDG_CONFIG_HOME`` of the test: the client's config file is ``<it>/aimpact/client.toml``."""
    for name in ("AIMPACT_URL", "AIMPACT_API_KEY", "AIMPACT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    return tmp_path
