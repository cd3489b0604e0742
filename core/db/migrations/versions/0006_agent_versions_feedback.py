"""agent versions record who created them; run feedback

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('agent_version', sa.Column('created_by_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default='user'))
    op.add_column('agent_version', sa.Column('created_by_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False, server_default=''))
    op.create_table('run_feedback',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('agent_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('agent_version', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('comment', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
    sa.Column('created_by_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_by_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['run.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_run_feedback_run_id'), 'run_feedback', ['run_id'], unique=False)
    op.create_index('ix_run_feedback_tenant_agent_version', 'run_feedback', ['tenant_id', 'agent_id', 'agent_version'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_run_feedback_tenant_agent_version', table_name='run_feedback')
    op.drop_index(op.f('ix_run_feedback_run_id'), table_name='run_feedback')
    op.drop_table('run_feedback')
    op.drop_column('agent_version', 'created_by_id')
    op.drop_column('agent_version', 'created_by_kind')
