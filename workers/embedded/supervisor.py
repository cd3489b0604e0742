"""``aimpact up``: start the embedded stack in order, keep it running, stop it cleanly.

Order: PostgreSQL → Redis → Temporal → migrations → first-boot seed →
``workers_per_queue`` workers per task queue → ``api_processes`` API processes
(sharing one port). Each service must be healthy before the next
starts, and each phase is reported as it runs; a child that dies is restarted
with backoff; SIGINT/SIGTERM stops every child in reverse order. Children also
get ``PR_SET_PDEATHSIG`` so none outlives a supervisor that is killed outright.
One supervisor per home: a second one is refused (:mod:`workers.embedded.home_lock`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from types import FrameType
from typing import Protocol

import httpx
import structlog

from core.db.engine import make_engine
from core.db.migrate import upgrade
from core.seed import SeedResult, seed_if_empty
from core.settings import Settings
from workers import registry
from workers.embedded import postgres, redis, temporal
from workers.embedded.home_lock import HomeLock
from workers.embedded.ports import listens_on, port_is_free
from workers.embedded.process import ManagedProcess, ServiceError, ServiceSpec
from workers.health import port_from_env

log = structlog.get_logger(__name__)


class ShutdownRequested(Exception):  # noqa: N818 - a request, not an error
    """Raised by the signal handler to unwind into an orderly stop."""


class StartPhases(Protocol):
    """Shows each start phase while it runs (``phase`` is entered for its whole duration)."""

    def phase(self, title: str) -> AbstractContextManager[object]:
        """Context of one phase, e.g. ``"Starting Redis"``."""
        ...


class _Quiet:
    def phase(self, title: str) -> AbstractContextManager[object]:
        return nullcontext()


def numbered(name: str, count: int) -> list[str]:
    """Names of ``count`` children of one kind: ``name`` alone, or ``name-1`` … ``name-count``."""
    return [name] if count == 1 else [f"{name}-{n}" for n in range(1, count + 1)]


WORKER_PORT_STEP = 10
"""The n-th worker of a queue (from 0) serves its metrics ports ``n * WORKER_PORT_STEP`` above the queue's."""


def metrics_ports(queue: registry.Queue, *, offset: int) -> dict[str, str]:
    """Variables moving the queue's metrics ports (those not disabled) up by ``offset``; none for offset 0."""
    moved: dict[str, str] = {}
    for port in (queue.metrics, queue.sdk_metrics) if offset else ():
        try:
            value = port_from_env(port.env, port.default)
        except ValueError:
            continue  # the worker itself refuses it, naming the variable
        if value:
            moved[port.env] = str(value + offset)
    return moved


class Supervisor:
    """Owns every child process of ``aimpact up``."""

    def __init__(
        self,
        settings: Settings,
        *,
        on_ready: Callable[[Settings, SeedResult | None], None] | None = None,
        phases: StartPhases | None = None,
    ):
        self.settings = settings
        self.on_ready = on_ready
        self.phases = phases or _Quiet()
        self.children: list[ManagedProcess] = []
        self._stopping = False

    @property
    def logs_dir(self) -> os.PathLike[str]:
        """Where child output goes."""
        return self.settings.home / "logs"

    def run(self) -> int:
        """Lock the home, start everything and supervise until a signal; return the exit code.

        Raises ``HomeInUseError``, having touched nothing, when another supervisor holds the home.
        """
        try:
            queues = registry.queues_to_run(self.settings)
        except registry.UnknownQueueError as exc:
            log.error("startup failed", error=str(exc))
            return 1
        with HomeLock(self.settings.home):
            return self._run_locked(queues)

    def _run_locked(self, queues: list[registry.Queue]) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            seeded = self._start_all(queues)
            if self.on_ready:
                self.on_ready(self.settings, seeded)
            self._supervise()
            return 0
        except ShutdownRequested:
            return 0
        except ServiceError as exc:
            log.error("startup failed", error=str(exc))
            return 1
        finally:
            self._stopping = True
            for sig, handler in previous.items():
                signal.signal(sig, signal.SIG_IGN if sig == signal.SIGINT else handler)
            self.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        if not self._stopping:
            self._stopping = True
            raise ShutdownRequested

    def _start_all(self, queues: list[registry.Queue]) -> SeedResult | None:
        s = self.settings
        self._check_ports()
        if not s.database_url:
            pgdata = s.embedded_pgdata
            first = not postgres.initialized(pgdata)
            with self.phases.phase("Creating the PostgreSQL database (initdb)") if first else nullcontext():
                user = postgres.prepare(pgdata)
            with self.phases.phase("Starting PostgreSQL"):
                self._launch(postgres.spec(pgdata, s.home / "logs" / "postgres.log", user))
                postgres.ensure_database(pgdata)
        if not s.redis_url:
            with self.phases.phase("Starting Redis"):
                self._launch(redis.spec(s.embedded_redis_dir, s.home / "logs" / "redis.log"))
        if not s.temporal_address:
            with self.phases.phase("Starting Temporal"):
                self._launch(self._temporal_spec())
        with self.phases.phase("Applying database migrations"):
            upgrade(s.database_target)
        log.info("migrations applied")
        with self.phases.phase("Seeding the admin and the demo tenant (first start only)"):
            seeded = asyncio.run(self._seed())
        per_queue = s.workers_per_queue
        for queue in queues:
            title = f"Starting the {queue.name} worker" + ("s" if per_queue > 1 else "")
            with self.phases.phase(f"{title} ({per_queue})" if per_queue > 1 else title):
                for n, name in enumerate(numbered(f"worker-{queue.name}", per_queue)):
                    args = ["worker", "--queue", queue.name]
                    env = metrics_ports(queue, offset=n * WORKER_PORT_STEP)
                    self._launch(self._python_child(name, args, health=lambda _pid: True, env=env))
        count = s.api_processes
        with self.phases.phase(f"Starting the API ({count} processes)" if count > 1 else "Starting the API"):
            for name in numbered("api", count):
                self._launch(self.api_spec(name))
        self._write_pids()
        return seeded

    def _temporal_spec(self) -> ServiceSpec:
        s = self.settings
        return temporal.spec(
            db_file=s.home / "temporal" / "temporal.db",
            log_path=s.home / "logs" / "temporal.log",
            port=s.temporal_port,
            ui_port=s.temporal_ui_port,
            http_port=s.temporal_http_port,
            metrics_port=s.temporal_metrics_port,
            namespace=s.temporal_namespace,
            ui_codec_endpoint=f"{s.api_url}/codec" if s.encrypt_payloads else None,
        )

    async def _seed(self) -> SeedResult | None:
        engine = make_engine(self.settings.database_target, pool_size=2)
        try:
            return await seed_if_empty(engine, self.settings)
        finally:
            await engine.dispose()

    def _check_ports(self) -> None:
        s = self.settings
        wanted = {"AIMPACT_API_PORT": s.api_port}
        if not s.temporal_address:
            wanted |= {
                "AIMPACT_TEMPORAL_PORT": s.temporal_port,
                "AIMPACT_TEMPORAL_UI_PORT": s.temporal_ui_port,
                "AIMPACT_TEMPORAL_HTTP_PORT": s.temporal_http_port,
                "AIMPACT_TEMPORAL_METRICS_PORT": s.temporal_metrics_port,
            }
        busy = [f"{name}={port}" for name, port in wanted.items() if not port_is_free(port)]
        if busy:
            raise ServiceError(f"ports already in use: {', '.join(busy)}; set other values for these variables")

    def _python_child(
        self,
        name: str,
        args: list[str],
        *,
        health: Callable[[int], bool],
        start_timeout_s: float = 30,
        env: dict[str, str] | None = None,
    ) -> ServiceSpec:
        env = dict(os.environ, AIMPACT_HOME=str(self.settings.home), PYTHONUNBUFFERED="1") | (env or {})
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return ServiceSpec(
            name=name,
            argv=[sys.executable, "-m", "cli", *args],
            health=health,
            log_path=self.settings.home / "logs" / f"{name}.log",
            env=env,
            cwd=None,
            start_timeout_s=start_timeout_s,
        )

    def api_spec(self, name: str = "api") -> ServiceSpec:
        """One API process: healthy once it listens on its port and ``/healthz`` answers there.

        With several API processes each binds the port with ``SO_REUSEPORT`` and the kernel
        spreads connections over them; the listening-socket check tells each child's own start.
        """
        args = ["api", "--reuse-port"] if self.settings.api_processes > 1 else ["api"]
        return self._python_child(name, args, health=self._api_healthy, start_timeout_s=60)

    def _api_healthy(self, pid: int) -> bool:
        if not listens_on(pid, self.settings.api_port):
            return False
        response = httpx.get(f"http://{self.settings.api_host}:{self.settings.api_port}/healthz", timeout=1)
        return response.status_code == 200

    def _launch(self, spec: ServiceSpec) -> ManagedProcess:
        child = ManagedProcess(spec)
        self.children.append(child)
        child.start()
        child.wait_healthy()
        return child

    def _supervise(self) -> None:
        while True:
            now = time.monotonic()
            for child in self.children:
                if child.next_restart_at is None and child.exited():
                    delay = child.backoff_s()
                    child.next_restart_at = now + delay
                    log.warning(
                        "service exited; restarting",
                        service=child.spec.name,
                        code=child.proc.returncode if child.proc else None,
                        in_s=delay,
                    )
                elif child.next_restart_at is not None and now >= child.next_restart_at:
                    child.next_restart_at = None
                    child.history.append(now)
                    child.restarts += 1
                    child.start()
                    self._write_pids()
            time.sleep(0.2)

    def _write_pids(self) -> None:
        path = self.settings.home / "run" / "pids.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        pids = {"supervisor": os.getpid()} | {c.spec.name: c.pid for c in self.children}
        path.write_text(json.dumps(pids))

    def stop_all(self) -> None:
        """Stop every child, last started first."""
        for child in reversed(self.children):
            try:
                child.stop()
            except Exception as exc:  # keep stopping the others
                log.error("stop failed", service=child.spec.name, error=str(exc))
        self.children.clear()
        pids = self.settings.home / "run" / "pids.json"
        pids.unlink(missing_ok=True)
