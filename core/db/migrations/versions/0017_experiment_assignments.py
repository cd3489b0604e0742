"""experiment assignments: the arm each subject got first, and the candidate's current share

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('experiment', sa.Column('candidate_share', sa.Float(), nullable=True))
    op.execute("UPDATE experiment SET candidate_share = traffic")
    op.alter_column('experiment', 'candidate_share', nullable=False)
    op.create_table('experiment_assignment',
    sa.Column('experiment_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('subject_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('arm', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiment.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('experiment_id', 'subject_key')
    )


def downgrade() -> None:
    op.drop_table('experiment_assignment')
    op.drop_column('experiment', 'candidate_share')
