"""The dashboard's build, shared by its tests: ``scripts/build-dashboard.sh`` (npm ci + next build when stale)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboard"
NODE = shutil.which("node")


@pytest.fixture(scope="session")
def dashboard_built() -> Path:
    """The dashboard's static export (and its node_modules), built when missing or stale."""
    assert NODE is not None, "node is needed to build the dashboard (dashboard/.nvmrc)"
    result = subprocess.run(
        [str(ROOT / "scripts" / "build-dashboard.sh")],
        env={**os.environ, "AIMPACT_DASHBOARD_REQUIRED": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return DASHBOARD / "out"
