"""``aimpact migrate --check`` / ``--wait``: app pods start only on the schema their release needs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from core.db.migrate import schema_state, upgrade
from workers.embedded.stack import StackProcess


@pytest.fixture
def empty_database(stack: StackProcess) -> Iterator[str]:
    """URL of a new, never migrated database in the stack's PostgreSQL."""
    name = f"schema_{uuid.uuid4().hex[:10]}"
    url = make_url(stack.database_url)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield url.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _migrate(url: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMPACT_")} | {"AIMPACT_DATABASE_URL": url}
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "migrate", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _run(url: str, *args: str) -> tuple[int, str]:
    process = _migrate(url, *args)
    out, _ = process.communicate(timeout=120)
    return process.returncode, " ".join(out.split())


def test_check_passes_only_at_the_head(empty_database: str) -> None:
    code, out = _run(empty_database, "--check")
    assert code == 1
    assert "never migrated" in out
    assert "aimpact migrate" in out
    upgrade(empty_database)
    code, out = _run(empty_database, "--check")
    assert code == 0, out
    assert schema_state(empty_database).ready


def test_wait_returns_once_another_process_migrated(empty_database: str) -> None:
    waiter = _migrate(empty_database, "--wait", "--timeout", "90")
    time.sleep(3)
    assert waiter.poll() is None, "the waiter must not pass before the schema is there"
    upgrade(empty_database)
    out, _ = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, out
    assert "the revision this release needs" in out


def test_wait_gives_up_at_its_timeout(empty_database: str) -> None:
    started = time.monotonic()
    code, out = _run(empty_database, "--wait", "--timeout", "2")
    assert code == 1
    assert "never migrated" in out
    assert time.monotonic() - started < 60


def test_a_newer_schema_fails_check_and_lets_wait_start_at_once(empty_database: str) -> None:
    """A newer release migrated it: ``--check`` says so; ``--wait`` (old pods during a rollout) starts."""
    upgrade(empty_database)
    with psycopg.connect(make_url(empty_database).set(drivername="postgresql").render_as_string(False)) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_a_newer_release'")
    code, out = _run(empty_database, "--check")
    assert code == 1
    assert "9999_from_a_newer_release, which this release does not know" in out
    started = time.monotonic()
    code, out = _run(empty_database, "--wait", "--timeout", "60")
    assert code == 0, out
    assert "9999_from_a_newer_release, which this release does not know" in out
    assert "starting" in out
    assert time.monotonic() - started < 30  # no waiting: this release can never change it
