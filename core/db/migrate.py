"""Alembic migrations, run programmatically (``aimpact migrate``), and the schema check of
``aimpact migrate --check`` / ``--wait`` that app pods run before they start."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool
from sqlalchemy.exc import SQLAlchemyError

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config for the database at ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``."""
    command.upgrade(alembic_config(url), revision)


@dataclass(frozen=True)
class SchemaState:
    """Where the database's schema stands against this code's migrations."""

    current: tuple[str, ...]
    """Revisions stamped in the database (empty: never migrated)."""
    head: str
    """The newest revision this code knows."""
    known: bool
    """Whether every stamped revision is one of this code's migrations (else a newer release migrated it)."""

    @property
    def ready(self) -> bool:
        """The database is exactly at this code's head."""
        return self.current == (self.head,)

    def describe(self) -> str:
        """One line for people: where the database is and what that means."""
        at = ", ".join(self.current) or "no revision (never migrated)"
        if self.ready:
            return f"database schema is at {self.head}, the revision this release needs"
        if not self.known:
            return f"database schema is at {at}, which this release does not know (a newer release migrated it)"
        return f"database schema is at {at}; this release needs {self.head} (run `aimpact migrate`)"


def schema_state(url: str) -> SchemaState:
    """Read the database's revision; raises ``SQLAlchemyError`` when it cannot be reached."""
    scripts = ScriptDirectory.from_config(alembic_config(url))
    head = scripts.get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations under {MIGRATIONS}")
    engine = create_engine(url, poolclass=pool.NullPool, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            current = tuple(sorted(MigrationContext.configure(connection).get_current_heads()))
    finally:
        engine.dispose()
    known = all(_known(scripts, revision) for revision in current)
    return SchemaState(current=current, head=head, known=known)


def _known(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except Exception:  # alembic raises several types for an unknown revision
        return False


def wait_for_schema(
    url: str,
    *,
    timeout_s: float,
    poll_s: float = 2.0,
    report: Callable[[str], None] = lambda _line: None,
) -> SchemaState | None:
    """Poll until the database is at this code's head, at most ``timeout_s``; the last state read
    (``None`` when the database could not be reached at all).

    Unreachable databases are retried until the timeout. A revision this code does not know
    returns at once: waiting cannot change it.
    """
    deadline = time.monotonic() + timeout_s
    last = ""
    state: SchemaState | None = None
    while True:
        try:
            read = schema_state(url)
        except SQLAlchemyError as exc:
            line = f"database not reachable yet: {type(exc).__name__}"
        else:
            state = read
            if read.ready or not read.known:
                return read
            line = read.describe()
        if line != last:
            report(line)
            last = line
        if time.monotonic() + poll_s > deadline:
            return state
        time.sleep(poll_s)
