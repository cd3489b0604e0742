"""pipeline runs started by a pipeline step of another run: parent_run_id, parent_step_id

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('pipeline_run', sa.Column('parent_run_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
    op.add_column('pipeline_run', sa.Column('parent_step_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))


def downgrade() -> None:
    op.drop_column('pipeline_run', 'parent_step_id')
    op.drop_column('pipeline_run', 'parent_run_id')
