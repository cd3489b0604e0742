"""Persistence: SQLModel tables, engines, tenant-scoped repositories, migrations."""
