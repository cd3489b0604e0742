"""pipeline runs: the steps a re-run reused, the schedule that started a run

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-07 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
    op.add_column('pipeline_run', sa.Column('reused_steps', json, nullable=True))
    op.add_column('pipeline_run', sa.Column('schedule_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
    op.create_index('ix_pipeline_run_schedule_created', 'pipeline_run', ['schedule_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_pipeline_run_schedule_created', table_name='pipeline_run')
    op.drop_column('pipeline_run', 'schedule_id')
    op.drop_column('pipeline_run', 'reused_steps')
