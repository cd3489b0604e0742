"""The AImPact API client: ``Client`` (sync) and ``AsyncClient`` (asyncio), with the same resources and methods.

    from aimpact_client import Client

    with Client() as aimpact:  # AIMPACT_URL, AIMPACT_API_KEY, or ~/.config/aimpact/client.toml
        run = aimpact.runs.start("agt_…", "What is 12 * (3 + 4)?")
        for event in aimpact.runs.follow(run["id"]):
            print(event.event, event.data)

It depends on httpx and the standard library only.
"""

from aimpact_client._async.client import AsyncClient
from aimpact_client._sync.client import Client
from aimpact_client.config import Credentials, config_path
from aimpact_client.errors import ApiError, ConfigError
from aimpact_client.sse import Event

__all__ = ["ApiError", "AsyncClient", "Client", "ConfigError", "Credentials", "Event", "config_path"]
