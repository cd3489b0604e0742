# Generated from aimpact_client/_async/client.py by `python -m aimpact_client._unasync`: edit that file.
"""``Client``: the AImPact API for synchronous programs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import TracebackType

import httpx

from aimpact_client._common import TIMEOUT, params
from aimpact_client._sync.resources import (
    Agents,
    ApiKeys,
    Memories,
    PipelineRuns,
    Pipelines,
    Recommendations,
    Runs,
    Secrets,
    Tenants,
    Tools,
    Users,
    Webhooks,
)
from aimpact_client._sync.transport import Transport
from aimpact_client.config import config_path, forget_session, resolve, save_session
from aimpact_client.types import Me, TokenPair, UsageReport


class Client:
    """The AImPact API: ``runs``, ``agents``, ``tenants``, ``users``, ``api_keys``, ``tools``, ``webhooks``,
    ``memories``, ``secrets``, ``pipelines``, ``pipeline_runs``, ``recommendations``, and ``me()``, ``usage()``,
    ``login()``, ``logout()``.

    The URL and credentials come from the arguments, else ``AIMPACT_URL`` and
    ``AIMPACT_API_KEY`` / ``AIMPACT_TOKEN``, else the config file (see :mod:`aimpact_client.config`).
    Every answer outside 2xx raises :class:`aimpact_client.ApiError`.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        token: str | None = None,
        config_file: Path | None = None,
        timeout: httpx.Timeout | float = TIMEOUT,
    ) -> None:
        self._config_file = config_file or config_path()
        self.credentials = resolve(url, api_key=api_key, token=token, config_file=self._config_file)
        self._t = Transport(self.credentials, timeout=timeout)
        self.runs = Runs(self._t)
        self.agents = Agents(self._t)
        self.tenants = Tenants(self._t)
        self.users = Users(self._t)
        self.api_keys = ApiKeys(self._t)
        self.tools = Tools(self._t)
        self.webhooks = Webhooks(self._t)
        self.memories = Memories(self._t)
        self.secrets = Secrets(self._t)
        self.pipelines = Pipelines(self._t)
        self.pipeline_runs = PipelineRuns(self._t)
        self.recommendations = Recommendations(self._t)

    @property
    def url(self) -> str:
        """The API's base URL."""
        return self.credentials.url

    def me(self) -> Me:
        """Who the credentials belong to and what they may do."""
        return self._t.call(Me, "GET", "/v1/me")

    def usage(self, *, start: datetime | str | None = None, end: datetime | str | None = None) -> UsageReport:
        """Tokens, cost and runs per agent for runs created in [``start``, ``end``)."""
        query = params(**{"from": _stamp(start), "to": _stamp(end)})
        return self._t.call(UsageReport, "GET", "/v1/usage", params=query)

    def login(self, email: str, password: str, *, remember: bool = False) -> TokenPair:
        """Sign in: this client uses the tokens from now on (refreshing them as they expire).

        With ``remember``, the sign-in is stored in the config file (mode 0600) for later clients.
        """
        pair = self._t.call(TokenPair, "POST", "/v1/auth/token", json={"email": email, "password": password})
        self.credentials.token, self.credentials.refresh_token = pair["access_token"], pair["refresh_token"]
        if remember:
            save_session(
                self._config_file,
                url=self.url,
                email=email,
                access_token=pair["access_token"],
                refresh_token=pair["refresh_token"],
            )
            self.credentials.file = self._config_file
        return pair

    def logout(self) -> None:
        """End the sign-in: its refresh token stops working and the config file forgets it."""
        refresh = self.credentials.refresh_token
        if refresh is not None:
            self._t.send("POST", "/v1/auth/logout", json={"refresh_token": refresh})
        if self.credentials.file is not None:
            forget_session(self.credentials.file)
        self.credentials.token = self.credentials.refresh_token = self.credentials.file = None

    def close(self) -> None:
        """Close the client's connections."""
        self._t.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _stamp(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value
