"""Where the client finds its URL and credentials, the private config file, a sign-in refreshed and the SSE decoder."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from aimpact_client import Client, ConfigError
from aimpact_client._unasync import main as unasync
from aimpact_client.config import DEFAULT_URL, config_path, read_config, resolve, write_config
from aimpact_client.sse import SSEDecoder
from tests.conftest import TenantCtx
from tests.support.users import PASSWORD, make_user
from workers.embedded.stack import StackProcess


def test_arguments_then_environment_then_the_config_file(config_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert config_path() == config_home / "aimpact" / "client.toml"
    assert (resolve().url, resolve().token) == (DEFAULT_URL, None)
    write_config(config_path(), {"url": "http://file:1/", "api_key": "aim_file"})
    assert (resolve().url, resolve().token) == ("http://file:1", "aim_file")
    monkeypatch.setenv("AIMPACT_API_KEY", "aim_env")
    assert (resolve().url, resolve().token) == ("http://file:1", "aim_env")
    assert resolve("http://arg:2", api_key="aim_arg").token == "aim_arg"
    monkeypatch.delenv("AIMPACT_API_KEY")
    assert resolve("http://elsewhere:3").token is None  # the file's key is never sent to another server
    with pytest.raises(ConfigError, match="http:// or https://"):
        resolve("ftp://x")


def test_a_config_file_others_can_read_is_refused(config_home: Path) -> None:
    path = config_path()
    write_config(path, {"api_key": "aim_secret"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        Client()
    path.chmod(0o600)
    path.write_text('api_key = "aim"\ncolour = "blue"\n')
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        read_config(path)


async def test_login_is_stored_and_an_expired_access_token_is_refreshed(
    stack: StackProcess, tenant: TenantCtx, engine: AsyncEngine
) -> None:
    email = await make_user(engine, tenant.id, role="viewer")
    with Client(stack.api_url) as client:
        client.login(email, PASSWORD, remember=True)
    stored = read_config(config_path())
    assert (stored["url"], stored["email"]) == (stack.api_url, email)

    write_config(config_path(), stored | {"access_token": "not-a-valid-token"})  # as an expired one answers: 401
    with Client() as client:
        assert client.me()["email"] == email
    rotated = read_config(config_path())
    assert rotated["refresh_token"] != stored["refresh_token"]
    assert rotated["access_token"] != "not-a-valid-token"
    with Client() as client:
        client.logout()
    assert "refresh_token" not in read_config(config_path())


def test_the_event_stream_decoder_follows_the_format() -> None:
    decoder = SSEDecoder()
    lines = ["retry: 2500", "", ": keep-alive", "", "id: 1-0", "event: run.started", 'data: {"turn":', "data: 1}", ""]
    events = [event for line in lines if (event := decoder.feed(line)) is not None]
    assert [(e.id, e.event, e.data) for e in events] == [("1-0", "run.started", {"turn": 1})]
    assert decoder.retry_s == 2.5
    assert decoder.feed("data:plain") is None
    assert decoder.feed("") == events[0].__class__(id="1-0", event="message", data="plain")


def test_the_sync_client_is_generated_from_the_async_one() -> None:
    assert unasync(["--check"]) == 0, "run: python -m aimpact_client._unasync"
