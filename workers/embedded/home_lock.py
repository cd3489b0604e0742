"""One ``aimpact up`` per ``AIMPACT_HOME``: an exclusive ``flock`` on ``run/up.lock``.

The lock lives as long as the supervisor's open file: it goes with the process,
however that ends. The descriptor is close-on-exec, so no child holds the lock
after the supervisor is gone. The file keeps the holder's pid for the message
a second ``up`` prints; it is never deleted (deleting a lock file races).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from workers.embedded.process import ServiceError


class HomeInUseError(ServiceError):
    """Another ``aimpact up`` holds the home."""

    def __init__(self, home: Path, pid: int | None):
        self.home = home
        self.pid = pid
        holder = f" (pid {pid})" if pid else ""
        super().__init__(
            f"another `aimpact up`{holder} is running on AIMPACT_HOME={home}; "
            "stop it first, or set another AIMPACT_HOME for a second stack"
        )


def lock_path(home: Path) -> Path:
    """The lock file of ``home``."""
    return home / "run" / "up.lock"


class HomeLock:
    """Exclusive lock on a home, taken with ``with`` (raises :class:`HomeInUseError`)."""

    def __init__(self, home: Path):
        self.home = home
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock without waiting and record our pid in it."""
        path = lock_path(self.home)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise HomeInUseError(self.home, pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let the next ``up`` in."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> HomeLock:
        self.acquire()
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except ValueError:
        return None
