"""Another API on a running stack's services: an ``aimpact api`` process (as a second replica would be), or an
in-process one whose Temporal cannot be reached."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
from temporalio.client import Client

from api.app import create_app
from core.settings import Settings
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


@asynccontextmanager
async def temporal_out_of_reach(stack: StackProcess, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client (API key ``key``) of an in-process API on the stack's database and Redis, its Temporal unreachable."""
    app = create_app(
        Settings(database_url=stack.database_url, redis_url=stack.redis_url, temporal_address=stack.temporal_address)
    )
    async with app.router.lifespan_context(app):
        state = app.state.aimpact
        live, state.temporal = state.temporal, await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {key}"}
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://api.test", headers=headers) as http:
                yield http
        finally:
            state.temporal = live
