"""Another ``aimpact api`` process on a running stack's services (as a second API replica would be)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from workers.embedded.ports import free_port
from workers.embedded.process import die_with_parent
from workers.embedded.stack import StackProcess


@contextmanager
def api_process(stack: StackProcess, timeout_s: float = 60, **env: str) -> Iterator[str]:
    """Run ``aimpact api`` with the stack's environment plus ``env`` on a free port; yield its base URL."""
    port = free_port()
    log_path = stack.home / f"api-{port}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "api"],
            env=stack.env | {"AIMPACT_API_PORT": str(port)} | env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while not _ready(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the extra API process did not start; see {log_path}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
