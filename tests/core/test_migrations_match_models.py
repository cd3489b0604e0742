"""The schema the migrations build is the one the SQLModel tables declare (no drift either way)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

import core.db.models  # noqa: F401  (registers every table on SQLModel.metadata)


async def test_migrated_schema_matches_the_models(engine: AsyncEngine) -> None:
    def differences(conn: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), SQLModel.metadata))

    async with engine.connect() as conn:
        found = await conn.run_sync(differences)
    assert found == []
    assert {"pipeline_run", "pipeline_run_step"} <= set(SQLModel.metadata.tables)
