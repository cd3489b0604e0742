"""The dashboard's committed typed client is the one generated from the document the API serves."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from tests.dashboard.conftest import DASHBOARD, NODE
from workers.embedded.stack import StackProcess

COMMITTED = DASHBOARD / "src" / "api" / "schema.d.ts"


def test_the_committed_client_matches_the_served_document(
    stack: StackProcess, dashboard_built: Path, tmp_path: Path
) -> None:
    document = tmp_path / "openapi.json"
    document.write_bytes(httpx.get(f"{stack.api_url}/openapi.json", timeout=60).content)
    generated = tmp_path / "schema.d.ts"
    assert NODE is not None
    result = subprocess.run(
        [
            NODE,
            "node_modules/openapi-typescript/bin/cli.js",
            str(document),
            "--default-non-nullable",
            "false",
            "-o",
            str(generated),
        ],
        cwd=DASHBOARD,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert generated.read_text() == COMMITTED.read_text(), (
        "dashboard/src/api/schema.d.ts is stale: run `make dashboard-api` and commit it"
    )
