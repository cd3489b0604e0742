"""Keys that the embedded stack generates at first boot and keeps under ``AIMPACT_HOME``.

In dev (``aimpact up``), when ``AIMPACT_JWT_SECRET`` or ``AIMPACT_ENCRYPTION_KEYS`` is
not set, the first process that needs a key creates it in ``$AIMPACT_HOME/keys/`` (directory
0700, files 0600) and every later process of the stack reads the same file. Creation is
atomic: concurrent processes agree on one key. No key is a constant of the source code.

Outside dev nothing is generated: the settings refuse to start without strong keys
(:func:`weak_secret_reason`).
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

KEYS_DIR = "keys"
JWT_SECRET_FILE = "jwt-secret"  # noqa: S105 - a file name
ENCRYPTION_KEYS_FILE = "encryption-keys"

LEGACY_DEV_JWT_SECRET = "aimpact-dev-only-jwt-secret-do-not-use-in-production"  # noqa: S105 - refused everywhere
"""The public signing secret of earlier releases: never accepted, listed so that it is refused."""
LEGACY_DEV_ENCRYPTION_KEY = "dev:ZGV2LW9ubHktMzItYnl0ZS1rZXktZm9yLWFpbXBhY3Q="
"""The public keyring of earlier releases: kept decrypt-only for homes created before keys were generated."""

_EXAMPLE_MARKERS = (
    "change-me",
    "change_me",
    "changeme",
    "replace_me",
    "replace-me",
    "replaceme",
    "example",
    "placeholder",
    "secret123",
    "password",
    "dummy",
    "your-",
    "your_",
)
_MIN_SECRET_BYTES = 32
_MIN_DISTINCT = 12


class HomeKeyError(RuntimeError):
    """A key file that cannot be used; the message says why and how to fix it."""


def weak_secret_reason(
    value: bytes, *, min_bytes: int = _MIN_SECRET_BYTES, min_distinct: int = _MIN_DISTINCT
) -> str | None:
    """Why ``value`` is not acceptable as a production secret, or ``None`` when it is.

    Refused: shorter than ``min_bytes``, a public key of an earlier release, an example value
    (``change-me``, ``REPLACE_ME``, ``your-...``), fewer than ``min_distinct`` distinct characters.
    """
    if len(value) < min_bytes:
        return f"is shorter than {min_bytes} bytes"
    text = value.decode("latin-1").lower()
    if value in {LEGACY_DEV_JWT_SECRET.encode(), base64.b64decode(LEGACY_DEV_ENCRYPTION_KEY.partition(":")[2])}:
        return "is the public development key of an earlier release"
    marker = next((m for m in _EXAMPLE_MARKERS if m in text), None)
    if marker:
        return f"looks like an example value (contains {marker!r})"
    if len(set(value)) < min_distinct:
        return f"has fewer than {min_distinct} distinct characters (not random)"
    return None


def _check_private(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise HomeKeyError(f"{path} is readable by other users (mode {mode:o}); run: chmod 600 {path}")


def _read_or_create(path: Path, make: Callable[[], str]) -> str:
    """The content of ``path``; created atomically with ``make()`` (mode 0600) when absent."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(make() + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # a concurrent process created it first
                os.link(temp, path)  # atomic: never a half-written key
        finally:
            temp.unlink(missing_ok=True)
    _check_private(path)
    value = path.read_text().strip()
    if not value:
        raise HomeKeyError(f"{path} is empty; delete it to generate a new key")
    return value


def jwt_secret(home: Path) -> str:
    """The stack's HS256 signing secret (256 random bits)."""
    return _read_or_create(home / KEYS_DIR / JWT_SECRET_FILE, lambda: secrets.token_urlsafe(48))


def encryption_keyring(home: Path) -> str:
    """The stack's AES-256-GCM keyring setting (``kid:base64key[,...]``).

    A home that already holds data from a release that used the public dev key gets that
    key appended as a decrypt-only entry, so its stored secrets stay readable.
    """

    def make() -> str:
        kid = "k" + secrets.token_hex(4)
        ring = f"{kid}:{base64.b64encode(secrets.token_bytes(32)).decode()}"
        earlier_data = (home / "postgres").exists() or (home / "temporal").exists()
        return f"{ring},{LEGACY_DEV_ENCRYPTION_KEY}" if earlier_data else ring

    return _read_or_create(home / KEYS_DIR / ENCRYPTION_KEYS_FILE, make)
