"""A supervised child process: start, health-wait, stop, restart with backoff."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent(sig: int) -> Callable[[], None]:
    """``preexec_fn`` that makes the child receive ``sig`` when the supervisor dies."""

    def _apply() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        os.setpgrp()

    return _apply


class ServiceError(RuntimeError):
    """A service that failed to start or become healthy."""


@dataclass
class ServiceSpec:
    """How to run and probe one service."""

    name: str
    argv: Sequence[str]
    health: Callable[[int], bool]
    """Probe given the child's pid: true once the service answers (and, where it can tell, it is that child)."""
    log_path: Path
    env: dict[str, str] | None = None
    user: str | None = None
    cwd: Path | None = None
    stop_signal: int = signal.SIGTERM
    start_timeout_s: float = 60.0
    stop_timeout_s: float = 15.0


@dataclass
class ManagedProcess:
    """A running service and its restart bookkeeping."""

    spec: ServiceSpec
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    next_restart_at: float | None = None
    history: list[float] = field(default_factory=list)
    log_offset: int = 0

    @property
    def pid(self) -> int | None:
        """PID of the running child."""
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        """Spawn the child (logging to its file); does not wait for health."""
        self.spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.spec.log_path, "ab") as out:
            self.log_offset = out.tell()
            self.proc = subprocess.Popen(
                list(self.spec.argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.spec.env,
                cwd=self.spec.cwd,
                user=self.spec.user,
                preexec_fn=die_with_parent(self.spec.stop_signal),
            )
        self.started_at = time.monotonic()
        log.info("service started", service=self.spec.name, pid=self.proc.pid)

    def wait_healthy(self) -> None:
        """Block until the probe passes while the child is alive; ``ServiceError`` on exit or timeout.

        A probe that passes counts only if our child is still running afterwards: a
        service that failed to start must not pass on another instance's answer.
        """
        if self.proc is None:
            raise ServiceError(f"{self.spec.name} was not started")
        deadline = time.monotonic() + self.spec.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise ServiceError(f"{self.spec.name} exited with {code} during start{self._log_tail()}")
            try:
                if self.spec.health(self.proc.pid) and self.proc.poll() is None:
                    log.info(
                        "service healthy", service=self.spec.name, after_s=round(time.monotonic() - self.started_at, 2)
                    )
                    return
            except Exception as exc:  # a probe error means "not yet"
                log.debug("health probe failed", service=self.spec.name, error=str(exc))
            time.sleep(0.1)
        raise ServiceError(f"{self.spec.name} not healthy after {self.spec.start_timeout_s}s{self._log_tail()}")

    def _log_tail(self, lines: int = 15) -> str:
        """The last lines this start wrote to the log, as the end of an error message."""
        try:
            with open(self.spec.log_path, "rb") as log_file:
                log_file.seek(max(self.log_offset, log_file.seek(0, os.SEEK_END) - 16_384))
                text = log_file.read().decode(errors="replace")
        except OSError:
            text = ""
        tail = "\n".join(f"  {line}" for line in text.splitlines()[-lines:])
        return f"; last lines of {self.spec.log_path}:\n{tail}" if tail else f"; see {self.spec.log_path}"

    def exited(self) -> bool:
        """Whether the child has exited."""
        return self.proc is not None and self.proc.poll() is not None

    def stop(self) -> None:
        """Stop the child gracefully, killing it after the stop timeout."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(self.spec.stop_signal)
            self.proc.wait(timeout=self.spec.stop_timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("service did not stop; killing", service=self.spec.name)
            self.proc.kill()
            self.proc.wait()
        log.info("service stopped", service=self.spec.name, code=self.proc.returncode)

    def backoff_s(self) -> float:
        """Delay before the next restart: 1 s doubling to 30 s; reset after 60 s of uptime."""
        now = time.monotonic()
        self.history = [t for t in self.history if now - t < 60]
        return min(30.0, float(2 ** len(self.history)) / 2)
