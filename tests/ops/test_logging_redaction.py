"""Secrets never reach the log output, whichever logging path carries them."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from core.telemetry.logging import configure_logging, redact

CANARY = "c4n4ry5ecr3tZ9"
API_KEY = f"aim_{CANARY}0123456789abcdef0123456789abcdef"
JWT = f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ{CANARY}In0.sig{CANARY}"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """A buffer for configure_logging's handler (see :func:`_configure`); logging restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    yield io.StringIO()
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    structlog.reset_defaults()


def _configure(buffer: io.StringIO, fmt: str) -> None:
    """configure_logging with its stderr handler writing to ``buffer``."""
    with contextlib.redirect_stderr(buffer):
        configure_logging(fmt=fmt, level="info")


def _log_everything(name: str) -> None:
    log = structlog.get_logger(name)
    log.info("login", password=CANARY, api_key=API_KEY, authorization=f"Bearer {API_KEY}", token=CANARY)
    log.info("nested", headers={"Authorization": f"Basic {CANARY}", "X-Request": "ok"}, client_secret=CANARY)
    log.info(f"calling upstream with header Authorization: Bearer {CANARY}")
    log.warning("key in text", detail=f"the key {API_KEY} was rejected; jwt {JWT}")
    log.info("db", url=f"postgresql+psycopg://aimpact:{CANARY}@db:5432/aimpact", items=[f"Bearer {CANARY}"])
    try:
        raise RuntimeError(f"upstream refused Bearer {CANARY}")
    except RuntimeError:
        log.exception("structlog exception")
    std = logging.getLogger(f"{name}.stdlib")
    std.info("stdlib header Authorization: Bearer %s", CANARY)
    std.warning("stdlib api key %s", API_KEY)
    try:
        raise ValueError(f"bad key {API_KEY}")
    except ValueError:
        std.exception("stdlib exception")


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_canary_secret_never_reaches_the_output(log_output: io.StringIO, fmt: str) -> None:
    _configure(log_output, fmt)
    _log_everything(f"ops.redaction.{fmt}")
    output = log_output.getvalue()
    assert output.count("\n") >= 9  # every record was written
    assert CANARY not in output
    assert "[redacted]" in output
    assert "Bearer [redacted]" in output
    assert "stdlib exception" in output
    assert "upstream refused" in output  # messages survive, only the secret goes
    assert "X-Request" in output


def test_json_lines_keep_the_structure_and_redact_fields(log_output: io.StringIO) -> None:
    _configure(log_output, "json")
    _log_everything("ops.redaction.structure")
    records = [json.loads(line) for line in log_output.getvalue().splitlines()]
    login = next(r for r in records if r["event"] == "login")
    assert {login[k] for k in ("password", "api_key", "authorization", "token")} == {"[redacted]"}
    nested = next(r for r in records if r["event"] == "nested")
    assert nested["headers"] == {"Authorization": "[redacted]", "X-Request": "ok"}
    assert nested["client_secret"] == "[redacted]"
    db = next(r for r in records if r["event"] == "db")
    assert db["url"] == "postgresql+psycopg://aimpact:[redacted]@db:5432/aimpact"
    assert db["items"] == ["Bearer [redacted]"]
    assert all(r["level"] for r in records)


def test_redaction_keeps_what_is_not_secret() -> None:
    event = {
        "event": "usage",
        "input_tokens": 12,
        "key_prefix": "aim_1a2b3c4d",
        "url": "https://api.example.com/v1/runs?limit=2",
        "note": "bearer of good news",
    }
    assert redact(None, "info", dict(event)) == event
