"""Where the client finds the API and its credentials: arguments, then environment, then a config file.

Environment: ``AIMPACT_URL``, ``AIMPACT_API_KEY`` (an API key) or ``AIMPACT_TOKEN`` (a bearer
token: an API key or an access token). The config file is
``$XDG_CONFIG_HOME/aimpact/client.toml`` (``~/.config/aimpact/client.toml`` by default), a flat
TOML table::

    url = "http://127.0.0.1:8000"
    api_key = "aim_…"            # or, as `aimpact login` writes it:
    access_token = "eyJ…"
    refresh_token = "…"

It holds credentials, so it must be private to its owner (mode 0600): a file others can read
is refused. The access token of a sign-in is refreshed with its refresh token when it expires,
and the new pair is written back to the file it came from.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets
import stat
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aimpact_client.errors import ConfigError

DEFAULT_URL = "http://127.0.0.1:8000"
ENV_URL = "AIMPACT_URL"
ENV_API_KEY = "AIMPACT_API_KEY"
ENV_TOKEN = "AIMPACT_TOKEN"  # noqa: S105 - a variable name
SESSION_KEYS = ("access_token", "refresh_token", "email")
"""What a sign-in stores; signing out removes them."""
_KEYS = frozenset({"url", "api_key", *SESSION_KEYS})


def config_path() -> Path:
    """The config file: ``$XDG_CONFIG_HOME/aimpact/client.toml`` (``~/.config/…`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "aimpact" / "client.toml"


def read_config(path: Path) -> dict[str, str]:
    """The settings of the config file at ``path`` (empty when it does not exist); :class:`ConfigError` if unusable."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return {}
    if os.name == "posix" and mode & 0o077:
        raise ConfigError(f"{path} is readable by other users (mode {mode:o}); run: chmod 600 {path}")
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} is not a readable TOML file: {exc}") from None
    unknown = sorted(set(document) - _KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown setting {unknown[0]!r}; known: {', '.join(sorted(_KEYS))}")
    bad = [key for key, value in document.items() if not isinstance(value, str)]
    if bad:
        raise ConfigError(f"{path}: {bad[0]} must be a string")
    return {key: str(value) for key, value in document.items()}


def write_config(path: Path, values: dict[str, str]) -> None:
    """Replace the config file atomically with ``values`` (mode 0600, directory 0700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = "".join(f"{key} = {json.dumps(value)}\n" for key, value in sorted(values.items()))  # JSON strings are TOML
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def token_expires_at(token: str) -> float | None:
    """The ``exp`` claim of a JWT (read, not verified: the server verifies), ``None`` for other tokens."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims: Any = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) else None


@dataclass
class Credentials:
    """The API's URL and the bearer token to send; a sign-in also has a refresh token."""

    url: str
    token: str | None = None
    refresh_token: str | None = None
    file: Path | None = None
    """The config file the sign-in came from: refreshed tokens are written back to it."""

    def expiring(self, margin_s: float = 30) -> bool:
        """Whether the access token of a sign-in expires within ``margin_s`` (and can be refreshed)."""
        if self.refresh_token is None or self.token is None:
            return False
        expires = token_expires_at(self.token)
        return expires is not None and expires - margin_s < time.time()

    def rotate(self, access_token: str, refresh_token: str) -> None:
        """Use a new token pair from now on and store it where the old one came from."""
        self.token, self.refresh_token = access_token, refresh_token
        if self.file is not None:
            stored = read_config(self.file)
            write_config(self.file, stored | {"access_token": access_token, "refresh_token": refresh_token})


def save_session(path: Path, *, url: str, email: str, access_token: str, refresh_token: str) -> None:
    """Store a sign-in in the config file (in place of an API key it held: the sign-in is used from now on)."""
    kept = {k: v for k, v in read_config(path).items() if k != "api_key"}
    session = {"email": email, "access_token": access_token, "refresh_token": refresh_token}
    write_config(path, kept | session | {"url": url})


def forget_session(path: Path) -> None:
    """Remove a sign-in from the config file (its other settings stay)."""
    stored = read_config(path)
    if any(key in stored for key in SESSION_KEYS):
        write_config(path, {k: v for k, v in stored.items() if k not in SESSION_KEYS})


def resolve(
    url: str | None = None,
    *,
    api_key: str | None = None,
    token: str | None = None,
    config_file: Path | None = None,
) -> Credentials:
    """Credentials from the arguments, else the environment, else the config file.

    The URL and the token are looked up separately, each in that order; the URL defaults to
    ``http://127.0.0.1:8000``. A token from the arguments or the environment is used as it is
    (no refresh); the file's ``api_key`` is preferred to its sign-in tokens, and the file's
    credentials are used only with the file's URL.
    """
    path = config_file or config_path()
    stored = read_config(path)
    chosen_url = url or os.environ.get(ENV_URL) or stored.get("url") or DEFAULT_URL
    if not chosen_url.startswith(("http://", "https://")):
        raise ConfigError(f"the API URL must start with http:// or https://, not {chosen_url!r}")
    chosen_url = chosen_url.rstrip("/")
    given = api_key or token or os.environ.get(ENV_API_KEY) or os.environ.get(ENV_TOKEN)
    if given:
        return Credentials(url=chosen_url, token=given)
    if stored.get("url", DEFAULT_URL).rstrip("/") != chosen_url:
        return Credentials(url=chosen_url)  # the file's credentials belong to another server: never send them here
    if stored.get("api_key"):
        return Credentials(url=chosen_url, token=stored["api_key"])
    return Credentials(
        url=chosen_url,
        token=stored.get("access_token"),
        refresh_token=stored.get("refresh_token"),
        file=path if stored.get("refresh_token") else None,
    )
