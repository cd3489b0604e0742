"""One stack per AIMPACT_HOME, and no service called healthy that failed to start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
import redis

from core.settings import Settings
from workers.embedded import postgres, temporal
from workers.embedded import redis as redis_service
from workers.embedded.home_lock import HomeInUseError, HomeLock, lock_path
from workers.embedded.process import ManagedProcess, ServiceError, ServiceSpec
from workers.embedded.stack import StackProcess
from workers.embedded.supervisor import Supervisor


def test_a_second_up_on_the_same_home_is_refused_and_the_first_stack_keeps_running(stack: StackProcess) -> None:
    pids = stack.pids()
    second = StackProcess(home=stack.home)  # same home, other free ports
    assert second.ports != stack.ports

    result = subprocess.run(
        [sys.executable, "-m", "cli", "up"], env=second.env, capture_output=True, text=True, timeout=120
    )

    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2, output
    assert f"another `aimpact up` (pid {stack.proc.pid if stack.proc else None}) is running" in output
    assert f"AIMPACT_HOME={stack.home}" in output
    assert stack.pids() == pids
    sock = stack.home / "redis" / "redis.sock"
    assert sock.exists()
    client = redis.Redis(unix_socket_path=str(sock))
    try:
        assert client.info("server")["process_id"] == pids["redis"]
    finally:
        client.close()
    assert httpx.get(f"{stack.api_url}/readyz", timeout=10).status_code == 200
    runs = httpx.get(f"{stack.api_url}/v1/runs", headers={"Authorization": f"Bearer {stack.api_key}"}, timeout=10)
    assert runs.status_code == 200


def test_the_lock_goes_with_its_holder_not_with_the_holders_children(tmp_path: Path) -> None:
    holder = textwrap.dedent(
        f"""
        import subprocess, sys, time
        from pathlib import Path
        from workers.embedded.home_lock import HomeLock
        HomeLock(Path({str(tmp_path)!r})).acquire()
        child = subprocess.Popen(["sleep", "60"], close_fds=False)
        print(child.pid, flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    grandchild = int(proc.stdout.readline())
    try:
        with pytest.raises(HomeInUseError) as refused:
            HomeLock(tmp_path).acquire()
        assert refused.value.pid == proc.pid
        assert lock_path(tmp_path).read_text().strip() == str(proc.pid)

        proc.kill()  # no clean exit: the lock must still go
        proc.wait()
        os.kill(grandchild, 0)  # the holder's child outlives it...
        with HomeLock(tmp_path):  # ...without holding the lock
            assert lock_path(tmp_path).read_text().strip() == str(os.getpid())
    finally:
        proc.kill()
        os.kill(grandchild, signal.SIGKILL)


def test_each_probe_passes_only_for_the_process_that_runs_the_service(stack: StackProcess, tmp_path: Path) -> None:
    """The running stack's services answer every probe; only their own pid makes it pass."""
    pids = stack.pids()
    probes = {
        "postgres": postgres.spec(stack.home / "postgres" / "data", tmp_path / "pg.log", None).health,
        "redis": redis_service.spec(stack.home / "redis", tmp_path / "redis.log").health,
        "temporal": temporal.spec(
            db_file=tmp_path / "unused.db",
            log_path=tmp_path / "temporal.log",
            port=stack.ports["TEMPORAL"],
            ui_port=stack.ports["TEMPORAL_UI"],
            http_port=stack.ports["TEMPORAL_HTTP"],
            metrics_port=stack.ports["TEMPORAL_METRICS"],
            namespace="default",
        ).health,
        "api": _api_spec(stack).health,
    }
    for name, probe in probes.items():
        assert probe(pids[name]) is True, name
        assert probe(pids["supervisor"]) is False, name  # alive, but not the one answering


def _api_spec(stack: StackProcess) -> ServiceSpec:
    with pytest.MonkeyPatch.context() as env:
        for name, value in stack.env.items():
            env.setenv(name, value)
        return Supervisor(Settings()).api_spec()


def test_a_postgres_on_a_data_dir_in_use_is_a_start_failure_not_healthy(stack: StackProcess, tmp_path: Path) -> None:
    pgdata = stack.home / "postgres" / "data"
    owner = json.loads((stack.home / "run" / "pids.json").read_text())["postgres"]
    child = ManagedProcess(postgres.spec(pgdata, tmp_path / "postgres.log", postgres.prepare(pgdata)))
    child.start()
    try:
        with pytest.raises(ServiceError) as failed:
            child.wait_healthy()
    finally:
        child.stop()

    message = str(failed.value)
    assert "postgres exited with" in message
    assert "lock file" in message  # the child's own words, from its log
    assert int((pgdata / "postmaster.pid").read_text().splitlines()[0]) == owner
    assert httpx.get(f"{stack.api_url}/readyz", timeout=10).status_code == 200


def test_an_api_that_cannot_bind_is_a_start_failure_though_its_port_answers(stack: StackProcess) -> None:
    """The port answers for the running stack's API; ours cannot bind it ("address already in use")."""
    spec = _api_spec(stack)
    spec.start_timeout_s = 20
    child = ManagedProcess(spec)
    child.start()
    try:
        with pytest.raises(ServiceError) as failed:
            child.wait_healthy()
    finally:
        child.stop()

    message = str(failed.value)
    assert message.startswith(("api exited with", "api not healthy after 20")), message
    assert str(spec.log_path) in message
    assert httpx.get(f"{stack.api_url}/readyz", timeout=10).status_code == 200
