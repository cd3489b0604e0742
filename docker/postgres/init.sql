-- Runs once, when the app database volume is first initialised (docker-entrypoint-initdb.d).
-- pgvector for agent memory; Alembic migrations (`aimpact migrate`) create everything else.
CREATE EXTENSION IF NOT EXISTS vector;
