"""optimizer online experiments, and the experiment arm of each run

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('experiment',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('tenant_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('agent_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('control_version', sa.Integer(), nullable=False),
    sa.Column('candidate_version', sa.Integer(), nullable=False),
    sa.Column('traffic', sa.Float(), nullable=False),
    sa.Column('min_samples', sa.Integer(), nullable=False),
    sa.Column('auto_promote', sa.Boolean(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('state', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('created_by_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_by_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agent.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_experiment_tenant_agent_created', 'experiment', ['tenant_id', 'agent_id', 'created_at'], unique=False)
    op.create_index('ux_experiment_running_agent', 'experiment', ['agent_id'], unique=True, postgresql_where=sa.text("status = 'running'"))
    op.add_column('run', sa.Column('experiment_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
    op.add_column('run', sa.Column('experiment_arm', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
    op.create_index(op.f('ix_run_experiment_id'), 'run', ['experiment_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_run_experiment_id'), table_name='run')
    op.drop_column('run', 'experiment_arm')
    op.drop_column('run', 'experiment_id')
    op.drop_index('ux_experiment_running_agent', table_name='experiment', postgresql_where=sa.text("status = 'running'"))
    op.drop_index('ix_experiment_tenant_agent_created', table_name='experiment')
    op.drop_table('experiment')
