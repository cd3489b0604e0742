"""Run ``aimpact up`` as a subprocess on an isolated home and free ports.

Tests and benchmarks use this to get the very stack users get, side by side
with any other stack on the machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from workers.embedded.ports import free_port
from workers.embedded.process import die_with_parent


@dataclass
class StackProcess:
    """A supervised embedded stack in its own ``AIMPACT_HOME``."""

    home: Path
    api_key: str = "aim_test_bootstrap_key_0123456789abcdef"
    admin_password: str = "test-admin-password"  # noqa: S105 - test stacks only
    extra_env: dict[str, str] = field(default_factory=dict)
    up_args: list[str] = field(default_factory=list)
    """Options of ``aimpact up``, e.g. ``["--api-processes", "2"]``."""
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        if not self.ports:
            names = ("API", "TEMPORAL", "TEMPORAL_UI", "TEMPORAL_HTTP", "TEMPORAL_METRICS")
            self.ports = {name: free_port() for name in names}

    @property
    def env(self) -> dict[str, str]:
        """Environment of the stack's processes."""
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(
            AIMPACT_HOME=str(self.home),
            AIMPACT_BOOTSTRAP_API_KEY=self.api_key,
            AIMPACT_ADMIN_PASSWORD=self.admin_password,
            AIMPACT_LOG_FORMAT="json",
            **{f"AIMPACT_{name}_PORT": str(port) for name, port in self.ports.items()},
            **self.extra_env,
        )
        return env

    @property
    def api_url(self) -> str:
        """Base URL of the API."""
        return f"http://127.0.0.1:{self.ports['API']}"

    @property
    def temporal_address(self) -> str:
        """host:port of the Temporal frontend."""
        return f"127.0.0.1:{self.ports['TEMPORAL']}"

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL of the app database."""
        return f"postgresql+psycopg://postgres@/aimpact?host={self.home / 'postgres' / 'data'}&port=5432"

    @property
    def redis_url(self) -> str:
        """Redis URL (unix socket) of the stack."""
        return f"unix://{self.home / 'redis' / 'redis.sock'}"

    def start(self, timeout_s: float = 120) -> None:
        """Start ``aimpact up`` and wait until ``/readyz`` answers 200 and the supervisor has listed its children."""
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.home / "up.log", "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "up", *self.up_args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(signal.SIGTERM),  # a killed test run leaves no stack behind
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"aimpact up exited with {self.proc.returncode}; see {self.home / 'up.log'}")
            try:
                pids_written = (self.home / "run" / "pids.json").exists()
                if pids_written and httpx.get(f"{self.api_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"stack not ready after {timeout_s}s; see {self.home / 'up.log'}")

    def pids(self) -> dict[str, int]:
        """PIDs of the supervisor and its children."""
        path = self.home / "run" / "pids.json"
        pids: dict[str, int] = json.loads(path.read_text())
        return pids

    def stop(self, timeout_s: float = 60) -> int | None:
        """SIGTERM the supervisor and wait for it; return its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
