"""The dashboard: JavaScript its first pages ship and the runs list's time to interactive with 10,000 runs.

One embedded stack with the dashboard's build; the demo tenant gets 10,000 completed runs of 3
steps each, written straight into the database. dashboard/e2e/bench.mjs (Debian's chromium,
playwright-core) then measures, next to each other in the same browser:

- the JavaScript of the sign-in page and of the runs list, cold cache (gzip on the wire, and raw);
- the runs list's time to interactive: navigation start until the hydrated app shows the first 50
  runs (a cold first load, then the median and p90 of repeat loads);
- the same page's API call alone, ``GET /v1/runs?limit=50`` with the same token, timed in the page.

Usage: ``flock /tmp/bench.lock python -m bench.dashboard [--rounds N]`` (bench/dashboard.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.load import BENCH_ENV
from workers.embedded.stack import StackProcess

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "dashboard"
RUNS = 10_000
JS_TARGET_KB = 250
TTI_TARGET_MS = 1000


def seed(stack: StackProcess, tenant_id: str, agent_id: str) -> None:
    """``RUNS`` completed runs of 3 steps, one second apart, in one statement each for runs and steps."""
    with psycopg.connect(stack.database_url.replace("+psycopg", "")) as conn:
        conn.execute(
            "INSERT INTO run (id, tenant_id, agent_id, agent_version, thread_id, status, input, output, metadata,"
            " input_tokens, output_tokens, cost_usd, workflow_id, workflow_run_id, created_at, updated_at)"
            " SELECT 'run_bench' || lpad(n::text, 6, '0'), %(t)s::text, %(a)s::text, 1, 'thr_bench' || n, 'completed',"
            " 'What is ' || n || ' * 7? Show the steps.', n || ' * 7 = ' || n * 7 || '.', '{}', 120, 45,"
            " 0.00042, %(t)s::text || ':run:run_bench' || lpad(n::text, 6, '0'), NULL,"
            " at, at + interval '2 s'"
            " FROM generate_series(1, %(runs)s::int) AS n,"
            " LATERAL (SELECT now() - (%(runs)s::int - n) * interval '1 s') AS c(at)",
            {"t": tenant_id, "a": agent_id, "runs": RUNS},
        )
        conn.execute(
            "INSERT INTO run_step (tenant_id, run_id, step_id, seq, kind, name, status, attempts, input, output,"
            " input_tokens, output_tokens, cost_usd, started_at, ended_at)"
            " SELECT %(t)s::text, r.id, 's' || (s + 1), s, CASE WHEN s = 1 THEN 'tool' ELSE 'llm' END,"
            " CASE WHEN s = 1 THEN 'calculator' ELSE 'local:local-echo' END, 'completed', 1,"
            ' \'{"messages": 2}\', \'{"content": "ok"}\', 40, 15, 0.00014,'
            " r.created_at + s * interval '600 ms', r.created_at + s * interval '600 ms' + interval '400 ms'"
            " FROM run r CROSS JOIN generate_series(0, 2) AS s"
            " WHERE r.tenant_id = %(t)s::text AND r.id LIKE 'run\\_bench%%'",
            {"t": tenant_id},
        )
        conn.execute("ANALYZE run")
        conn.execute("ANALYZE run_step")


def build_dashboard() -> None:
    """The dashboard's export (npm ci + next build when stale)."""
    env = {**os.environ, "AIMPACT_DASHBOARD_REQUIRED": "1"}
    subprocess.run([str(ROOT / "scripts" / "build-dashboard.sh")], check=True, env=env)


def measure(stack: StackProcess, rounds: int) -> dict[str, Any]:
    """Run dashboard/e2e/bench.mjs against the stack; its JSON figures."""
    node = shutil.which("node")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if node is None or chromium is None:
        raise SystemExit("needs node and chromium (apt-get install chromium)")
    result = subprocess.run(
        [node, "e2e/bench.mjs"],
        cwd=DASHBOARD,
        env={
            **os.environ,
            "DASHBOARD_URL": stack.api_url,
            "CHROMIUM": chromium,
            "EMAIL": "owner@demo.aimpact.local",
            "PASSWORD": stack.admin_password,
            "ROUNDS": str(rounds),
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"bench.mjs failed:\n{result.stdout}\n{result.stderr}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def report(figures: dict[str, Any], rounds: int) -> None:
    """Print the figures next to their targets and baseline."""
    kb = 1024
    print(f"\nDashboard, {RUNS:,} runs in the database; headless chromium on this machine, {rounds} repeat loads")
    print(f"{'JavaScript shipped (cold cache)':<44} {'gzip':>9} {'raw':>9} {'files':>6}   target <= {JS_TARGET_KB} KB")
    pages = (("/sign-in (the first page)", "sign_in_js"), ("/runs (the runs list, opened directly)", "runs_js"))
    for name, key in pages:
        js = figures[key]
        mark = "ok" if js["wire_bytes"] <= JS_TARGET_KB * kb else "over target"
        wire, raw = js["wire_bytes"] / kb, js["raw_bytes"] / kb
        print(f"  {name:<42} {wire:>6.0f} KB {raw:>6.0f} KB {js['files']:>6}   {mark}")
    tti, api = figures["tti_warm_ms"], figures["api_ms"]
    mark = "ok" if tti["median"] <= TTI_TARGET_MS else "over target"
    print(f"{'Runs list: time to interactive (first 50 rows shown)':<60} target <= {TTI_TARGET_MS} ms")
    print(f"  cold first load                          {figures['tti_cold_ms']:>7.0f} ms")
    print(f"  repeat loads            median {tti['median']:>7.0f} ms   p90 {tti['p90']:>7.0f} ms   {mark}")
    print(f"  longest main-thread task after the rows  {figures['longest_task_after_ms']:>7.0f} ms")
    print("Baseline: GET /v1/runs?limit=50 alone (same token, from the page)")
    print(f"                          median {api['median']:>7.1f} ms   p90 {api['p90']:>7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    build_dashboard()
    with tempfile.TemporaryDirectory(prefix="aimpact-bench-") as home:
        stack = StackProcess(home=Path(home), extra_env=BENCH_ENV)
        stack.start()
        try:
            key = {"Authorization": f"Bearer {stack.api_key}"}
            with httpx.Client(base_url=stack.api_url, headers=key, timeout=30) as http:
                tenant_id = http.get("/v1/me").json()["tenant_id"]
                agent_id = http.post("/v1/agents", json={"name": "bench", "tools": ["calculator"]}).json()["id"]
            seed(stack, tenant_id, agent_id)
            figures = measure(stack, args.rounds)
        finally:
            stack.stop()
    report(figures, args.rounds)


if __name__ == "__main__":
    main()
