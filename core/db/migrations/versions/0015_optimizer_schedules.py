"""optimizer schedules: the schedule of a scheduled optimizer run; a run that failed before its dataset has none

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('optimizer_run', sa.Column('schedule_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
    op.create_index('ix_optimizer_run_schedule_created', 'optimizer_run', ['schedule_id', 'created_at'], unique=False)
    op.alter_column('optimizer_run', 'dataset_id', existing_type=sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True)


def downgrade() -> None:
    op.execute("delete from optimizer_run where dataset_id is null")
    op.alter_column('optimizer_run', 'dataset_id', existing_type=sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False)
    op.drop_index('ix_optimizer_run_schedule_created', table_name='optimizer_run')
    op.drop_column('optimizer_run', 'schedule_id')
