"""``aimpact`` client commands as a subprocess against the real stack, with credentials from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import TenantCtx
from tests.support.runs import create_agent
from workers.embedded.stack import StackProcess


def aimpact(stack: StackProcess, tenant: TenantCtx, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``aimpact ARGS`` with the tenant's key in the environment and an empty config home."""
    env = dict(os.environ, AIMPACT_URL=stack.api_url, AIMPACT_API_KEY=tenant.key, XDG_CONFIG_HOME=str(home))
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


async def test_runs_start_follow_prints_the_answer_and_json_parses(
    stack: StackProcess, tenant: TenantCtx, tmp_path: Path
) -> None:
    agent = await create_agent(tenant.http)
    followed = aimpact(stack, tenant, tmp_path, "runs", "start", agent["id"], "What is 12 * (3 + 4)?", "--follow")
    assert followed.returncode == 0, followed.stderr
    lines = followed.stdout.strip().splitlines()
    assert lines[-1] == "Result — calculator: 84"
    assert any("calculator" in line and "84" in line for line in lines[:-1])  # the tool step, as it happened

    listed = aimpact(stack, tenant, tmp_path, "runs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert [(r["agent_id"], r["status"], r["output"]) for r in runs] == [
        (agent["id"], "completed", "Result — calculator: 84")
    ]
    started = aimpact(stack, tenant, tmp_path, "runs", "start", agent["id"], "2 + 2", "--follow", "--json")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["output"] == "Result — calculator: 4"
    agents = json.loads(aimpact(stack, tenant, tmp_path, "agents", "list", "--json").stdout)
    assert [a["id"] for a in agents] == [agent["id"]]


async def test_a_problem_is_printed_and_the_exit_code_is_not_zero(
    stack: StackProcess, tenant: TenantCtx, tmp_path: Path
) -> None:
    missing = aimpact(stack, tenant, tmp_path, "runs", "get", "run_missing")
    assert missing.returncode == 1
    assert "404 Not Found" in missing.stderr
    assert "run run_missing not found" in missing.stderr
    as_json = aimpact(stack, tenant, tmp_path, "runs", "get", "run_missing", "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["status"] == 404

    await tenant.http.post("/v1/secrets", json={"name": "GONE", "value": "a-value"})
    keyed = await create_agent(tenant.http, model={"provider": "local", "api_key_secret": "GONE"})
    await tenant.http.delete("/v1/secrets/GONE")
    failed = aimpact(stack, tenant, tmp_path, "runs", "start", keyed["id"], "9 * 9", "--follow")
    assert failed.returncode == 1
    assert "run failed" in failed.stderr
    assert "ProviderRejected" in failed.stderr
